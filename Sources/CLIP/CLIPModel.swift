// A loaded CLIP model: both towers, the image preprocessing and the tokenizer it was trained with, and the
// batch entry points the EX2 reward uses (images and texts in, L2-normalised embeddings out). `load(spec:)`
// accepts what a user types: an HF model directory or hub id in the local HF cache (transformers naming),
// a directory with open_clip_config.json, `r-open-clip:MODEL:PRETRAINED` and `r-open-clip:hf-hub:ORG/NAME`.
import Foundation
import Imaging
import ModelFiles
import Tensors
import Tokenizers

/// Turns a text into token ids BOS ... EOS (at most `contextLength` long, EOS kept last): unpadded for open_clip's
/// and transformers' CLIP BPE, padded to the context as open_clip's HFTokenizer gives them for HF tokenizers.
public protocol CLIPTextTokenizing: Sendable {
    func tokenIds(_ text: String, contextLength: Int) -> [Int]
    /// What a text tower that runs the whole padded context pads with, when the tokenizer decides it
    /// (open_clip's HFTokenizer pads with its tokenizer's pad token); nil: the config's pad id.
    var padTokenId: Int? { get }
}

extension CLIPTextTokenizing {
    public var padTokenId: Int? { nil }
}

extension CLIPTokenizer: CLIPTextTokenizing {
    public func tokenIds(_ text: String, contextLength: Int) -> [Int] {
        let padded = encode(text, contextLength: contextLength, padId: 0)
        guard let end = padded.firstIndex(of: endOfTextId) else { return padded }
        return Array(padded[...end])
    }
}

public final class CLIPModel: VisionLanguageModel {
    public let architecture: CLIPArchitecture
    public let preprocessor: CLIPPreprocessor
    public let tokenizer: (any CLIPTextTokenizing)?
    /// The similarity scale of the EX2 reward: exp(stored logit_scale) for transformers checkpoints, a fixed
    /// 100 for OpenCLIP ones (as the reference implementation uses).
    public let logitScale: Float
    /// exp(logit_scale) as stored in the checkpoint, when it has one (what the library's own logits use).
    public let storedLogitScale: Float?
    /// The stored logit_bias of a SigLIP-style checkpoint (open_clip's SigLIP configs), else 0.
    public let logitBias: Float
    /// Changes whenever the architecture or the weights change; keys the embedding cache.
    public let identity: String
    /// Things a user should know that are not errors (e.g. an activation that differs from the tag's).
    public let notes: [String]
    /// Images and texts per forward pass: bounds activation memory, keeps GEMMs large.
    public let imageBatch = 32, textBatch = 64
    /// Why there is no tokenizer, when the config names one ex2 cannot load (open_clip's hf_tokenizer_name).
    let missingTokenizer: String?

    let text: TextEncoder
    let image: ImageTower

    public var embedDim: Int { architecture.embedDim }

    init(architecture: CLIPArchitecture, weights: CLIPCheckpointWeights,
         preprocessor: CLIPPreprocessor, tokenizer: (any CLIPTextTokenizing)?, fixedScale: Float?, identity: String,
         notes: [String], missingTokenizer: String? = nil) {
        self.missingTokenizer = missingTokenizer
        var architecture = architecture
        if let pad = tokenizer?.padTokenId, pad >= 0, pad < architecture.text.vocabSize { architecture.text.padTokenId = pad }
        self.architecture = architecture
        self.preprocessor = preprocessor
        self.tokenizer = tokenizer
        self.storedLogitScale = weights.logLogitScale.map { expf($0) }
        self.logitScale = fixedScale ?? storedLogitScale ?? 100
        self.logitBias = weights.logitBias ?? 0
        self.identity = identity
        self.notes = notes
        switch weights.text {
        case .clip(let w): text = .clip(TextTower(config: architecture.text, embedDim: architecture.embedDim, weights: w))
        case .hf(let w): text = .hf(HFTextTower(config: architecture.hfText!, weights: w))
        }
        switch weights.vision {
        case .vit(let w): image = .vit(VisionTower(config: architecture.vision, embedDim: architecture.embedDim, weights: w))
        case .resnet(let w): image = .resnet(ModifiedResNetTower(config: architecture.resnet!, weights: w))
        case .convnext(let w): image = .convnext(ConvNeXtTower(config: architecture.convnext!, weights: w))
        case .mapViT(let w): image = .mapViT(MAPViTTower(config: architecture.mapViT!, weights: w))
        }
    }

    // MARK: embedding

    public var summary: String {
        let v = architecture.vision, t = architecture.text
        if let c = architecture.convnext {
            return "CLIP ConvNeXt (\(c.timmName): depths \(c.depths), dims \(c.dims), \(c.imageSize) px; text \(t.transformer.layers) layers, width \(t.transformer.width); embed \(embedDim))"
        }
        if let m = architecture.mapViT {
            return "SigLIP ViT (\(m.timmName ?? "timm"): \(m.transformer.layers) layers, width \(m.transformer.width), patch \(m.patchSize), \(m.imageSize) px; text \(t.transformer.layers) layers, width \(t.transformer.width); embed \(embedDim))"
        }
        if let tv = architecture.timmViT, let stem = tv.hybridStem {
            return "ViTamin (timm \(tv.timmName): MBConv backbone \(stem.stemWidth)-\(stem.stageWidths.map(String.init).joined(separator: "-")), \(v.transformer.layers) GeGLU layers, width \(v.transformer.width), \(v.gridSize)x\(v.gridSize) tokens, \(v.imageSize) px; text \(t.transformer.layers) layers, width \(t.transformer.width); embed \(embedDim))"
        }
        if let tv = architecture.timmViT {
            return "CLIP ViT (timm \(tv.timmName): \(v.transformer.layers) layers, width \(v.transformer.width), patch \(v.patchSize), \(v.imageSize) px; text \(t.transformer.layers) layers, width \(t.transformer.width); embed \(embedDim))"
        }
        if let r = architecture.resnet {
            return "CLIP ModifiedResNet (layers \(r.layers), width \(r.width), \(r.imageSize) px; text \(t.transformer.layers) layers, width \(t.transformer.width); embed \(embedDim))"
        }
        return "CLIP ViT (\(v.transformer.layers) layers, width \(v.transformer.width), patch \(v.patchSize), \(v.imageSize) px; text \(t.transformer.layers) layers, width \(t.transformer.width); embed \(embedDim))"
    }

    public var preprocessingKey: String { "\(preprocessor.mode)" }

    public func preprocess(_ image: RGBImage) -> [Float] { preprocessor(image) }

    /// Embeddings of already preprocessed images (CHW, 3 x S x S each).
    public func embedPreprocessed(_ pixels: [[Float]], normalize: Bool) throws -> [[Float]] {
        var out: [[Float]] = []
        out.reserveCapacity(pixels.count)
        for start in stride(from: 0, to: pixels.count, by: imageBatch) {
            let chunk = Array(pixels[start..<min(pixels.count, start + imageBatch)])
            out += try image.embed(chunk)
        }
        return normalize ? out.map(l2Normalized) : out
    }

    /// Embeddings of token id sequences (BOS ... EOS, unpadded).
    public func embedTokens(_ ids: [[Int]], normalize: Bool = true) throws -> [[Float]] {
        var out: [[Float]] = []
        out.reserveCapacity(ids.count)
        for start in stride(from: 0, to: ids.count, by: textBatch) {
            out += try text.embed(Array(ids[start..<min(ids.count, start + textBatch)]))
        }
        return normalize ? out.map(l2Normalized) : out
    }

    /// Embeddings of texts through the model's tokenizer.
    public func embedTexts(_ texts: [String], normalize: Bool) throws -> [[Float]] {
        guard let tokenizer else {
            if let missingTokenizer { throw CLIPError.badInput(missingTokenizer) }
            throw CLIPError.badInput("this model was loaded without a tokenizer (no vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz next to the weights, or a non-CLIP tokenizer); set EX2_CLIP_BPE to open_clip's bpe_simple_vocab_16e6.txt.gz, or pass one to CLIPModel.load(spec:tokenizer:)")
        }
        let ctx = architecture.text.contextLength
        return try embedTokens(texts.map { tokenizer.tokenIds($0, contextLength: ctx) }, normalize: normalize)
    }
}

/// The text tower a CLIP-family checkpoint brings.
enum TextEncoder: Sendable {
    case clip(TextTower)
    case hf(HFTextTower)

    /// Unnormalised embeddings of token id sequences (the HF encoder takes them padded, as its tokenizer gives them).
    func embed(_ ids: [[Int]]) throws -> [[Float]] {
        switch self {
        case .clip(let t): return try t.embed(ids)
        case .hf(let t): return try t.embed(ids)
        }
    }
}

/// The image tower a CLIP-family checkpoint brings.
enum ImageTower: Sendable {
    case vit(VisionTower)
    case resnet(ModifiedResNetTower)
    case convnext(ConvNeXtTower)
    case mapViT(MAPViTTower)

    /// Unnormalised embeddings of preprocessed CHW images.
    func embed(_ images: [[Float]]) throws -> [[Float]] {
        switch self {
        case .vit(let t): return try t.embed(images)
        case .resnet(let t): return try t.embed(images)
        case .convnext(let t): return try t.embed(images)
        case .mapViT(let t): return try t.embed(images)
        }
    }
}
