// A loaded CLIP model: both towers, the image preprocessing and the tokenizer it was trained with, and the
// batch entry points the EX2 reward uses (images and texts in, L2-normalised embeddings out). `load(spec:)`
// accepts what a user types: an HF model directory or hub id in the local HF cache (transformers naming),
// a directory with open_clip_config.json, `r-open-clip:MODEL:PRETRAINED` and `r-open-clip:hf-hub:ORG/NAME`.
import Foundation
import Imaging
import ModelFiles
import Tensors
import Tokenizers

/// Turns a text into token ids BOS ... EOS (unpadded, at most `contextLength` long, EOS kept last).
public protocol CLIPTextTokenizing: Sendable {
    func tokenIds(_ text: String, contextLength: Int) -> [Int]
}

extension CLIPTokenizer: CLIPTextTokenizing {
    public func tokenIds(_ text: String, contextLength: Int) -> [Int] {
        let padded = encode(text, contextLength: contextLength, padId: 0)
        guard let end = padded.firstIndex(of: endOfTextId) else { return padded }
        return Array(padded[...end])
    }
}

public final class CLIPModel: Sendable {
    public let architecture: CLIPArchitecture
    public let preprocessor: CLIPPreprocessor
    public let tokenizer: (any CLIPTextTokenizing)?
    /// The similarity scale of the EX2 reward: exp(stored logit_scale) for transformers checkpoints, a fixed
    /// 100 for OpenCLIP ones (as the reference implementation uses).
    public let logitScale: Float
    /// exp(logit_scale) as stored in the checkpoint, when it has one (what the library's own logits use).
    public let storedLogitScale: Float?
    /// Changes whenever the architecture or the weights change; keys the embedding cache.
    public let identity: String
    /// Things a user should know that are not errors (e.g. an activation that differs from the tag's).
    public let notes: [String]
    /// Images and texts per forward pass: bounds activation memory, keeps GEMMs large.
    public let imageBatch = 32, textBatch = 64

    let text: TextTower
    let vision: VisionTower

    public var embedDim: Int { architecture.embedDim }

    init(architecture: CLIPArchitecture, weights: (text: TextTowerWeights, vision: VisionTowerWeights, logLogitScale: Float?),
         preprocessor: CLIPPreprocessor, tokenizer: (any CLIPTextTokenizing)?, fixedScale: Float?, identity: String,
         notes: [String]) {
        self.architecture = architecture
        self.preprocessor = preprocessor
        self.tokenizer = tokenizer
        self.storedLogitScale = weights.logLogitScale.map { expf($0) }
        self.logitScale = fixedScale ?? storedLogitScale ?? 100
        self.identity = identity
        self.notes = notes
        text = TextTower(config: architecture.text, embedDim: architecture.embedDim, weights: weights.text)
        vision = VisionTower(config: architecture.vision, embedDim: architecture.embedDim, weights: weights.vision)
    }

    // MARK: embedding

    /// Embeddings of decoded images, L2-normalised unless `normalize` is false.
    public func embedImages(_ images: [RGBImage], normalize: Bool = true) throws -> [[Float]] {
        var pixels = [[Float]](repeating: [], count: images.count)
        pixels.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let o = out  // each index is written by exactly one iteration
            parallelFor(images.count) { i in o[i] = preprocessor(images[i]) }
        }
        return try embedPreprocessed(pixels, normalize: normalize)
    }

    /// Embeddings of already preprocessed images (CHW, 3 x S x S each).
    public func embedPreprocessed(_ pixels: [[Float]], normalize: Bool = true) throws -> [[Float]] {
        var out: [[Float]] = []
        out.reserveCapacity(pixels.count)
        for start in stride(from: 0, to: pixels.count, by: imageBatch) {
            out += try vision.embed(Array(pixels[start..<min(pixels.count, start + imageBatch)]))
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
    public func embedTexts(_ texts: [String], normalize: Bool = true) throws -> [[Float]] {
        guard let tokenizer else {
            throw CLIPError.badInput("this model was loaded without a tokenizer (no vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz next to the weights, or a non-CLIP tokenizer); set EX2_CLIP_BPE to open_clip's bpe_simple_vocab_16e6.txt.gz, or pass one to CLIPModel.load(spec:tokenizer:)")
        }
        let ctx = architecture.text.contextLength
        return try embedTokens(texts.map { tokenizer.tokenIds($0, contextLength: ctx) }, normalize: normalize)
    }

    /// Embeddings of image files, read through `cache` when given (computed and stored on a miss).
    public func embedImageFiles(_ urls: [URL], cache: ImageEmbeddingCache? = nil) throws -> [[Float]] {
        var result = [[Float]?](repeating: nil, count: urls.count)
        var missing: [(index: Int, key: String?, image: RGBImage)] = []
        for (i, url) in urls.enumerated() {
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw ImageError.unreadable(name: url.path, reason: error.localizedDescription)
            }
            var key: String?
            if let cache {
                key = ImageEmbeddingCache.contentKey(data)
                if let hit = cache.lookup(key!), hit.count == embedDim { result[i] = hit; continue }
            }
            missing.append((i, key, try ImageDecoder.decode(data: data, name: url.path)))
        }
        for start in stride(from: 0, to: missing.count, by: imageBatch) {
            let chunk = missing[start..<min(missing.count, start + imageBatch)]
            let embeddings = try embedImages(chunk.map(\.image))
            for (m, e) in zip(chunk, embeddings) {
                result[m.index] = e
                if let cache, let key = m.key { try cache.store(key, e) }
            }
        }
        return result.map { $0! }
    }

    /// A cache for this model's image embeddings under `directory`.
    public func embeddingCache(directory: URL) -> ImageEmbeddingCache {
        ImageEmbeddingCache(directory: directory, modelIdentity: identity, preprocessing: "\(preprocessor.mode)")
    }

    /// scale * <image_i, text_j> for normalised embeddings: logits_per_image [images][texts].
    public func logits(images: [[Float]], texts: [[Float]], scale: Float? = nil) -> [[Float]] {
        let s = scale ?? logitScale
        return images.map { im in texts.map { t in s * zip(im, t).reduce(0) { $0 + $1.0 * $1.1 } } }
    }
}

/// x / |x| (zero stays zero), as torch.nn.functional.normalize.
public func l2Normalized(_ x: [Float]) -> [Float] {
    var s: Double = 0
    for v in x { s += Double(v) * Double(v) }
    let n = Float(max(s.squareRoot(), 1e-12))
    return x.map { $0 / n }
}
