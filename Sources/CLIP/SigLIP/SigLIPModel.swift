// transformers' SiglipModel (google/siglip-*, and SigLIP 2's fixed-resolution checkpoints, which keep
// model_type "siglip" and bring Gemma's tokenizer): pre-LN ViT encoders like CLIP's, but
// - vision: MAPViTTower (no class token, no pre-LayerNorm, attention-pooling head; the pooled vector is the
//   image embedding, no projection), its weights named here as transformers names them;
// - text: the padded context (SiglipProcessor pads to max_length 64 with </s> and passes no attention
//   mask, so the padding is attended), bidirectional, final LayerNorm at the last position, then `head`;
// - logits = exp(logit_scale) cos + logit_bias (a sigmoid loss), so the EX2 reward is the mean of the model's
//   own logits: scale exp(logit_scale), bias logit_bias.
import Foundation
import Imaging
import Layers
import ModelFiles
import Tensors
import Tokenizers

public struct SigLIPConfig: Sendable, Equatable {
    public var text = CLIPTransformerConfig(width: 768, layers: 12, heads: 12, mlpWidth: 3072, activation: .geluTanh, layerNormEps: 1e-6)
    public var vision = CLIPTransformerConfig(width: 768, layers: 12, heads: 12, mlpWidth: 3072, activation: .geluTanh, layerNormEps: 1e-6)
    public var vocabSize = 32000, contextLength = 64
    /// What texts are padded with: the tokenizer's pad token (</s> for SigLIP), else text_config.pad_token_id.
    public var padTokenId = 1
    public var projectionSize = 768
    public var imageSize = 224, patchSize = 16
    public var visionUseHead = true
    /// SigLIP 2 NaFlex (model_type "siglip2"): vision_config.num_patches, the learned g x g position grid that
    /// each image's own patch grid resizes; images keep their aspect ratio (NaFlex.swift).
    public var naflexPositions: Int? = nil
    /// Texts pad on the left (the tokenizer's padding_side, else its class default: Gemma's is left).
    public var padsLeft = false

    /// Patches per side (a remainder is dropped, as the stride-p convolution does); NaFlex: the position grid.
    public var gridSize: Int { naflexPositions.map { Int(Double($0).squareRoot()) } ?? imageSize / patchSize }
    public var patches: Int { gridSize * gridSize }

    struct Raw: Decodable {
        struct T: Decodable {
            var vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads: Int?
            var max_position_embeddings, pad_token_id, projection_size: Int?
            var hidden_act: String?
            var layer_norm_eps: Double?
        }
        struct V: Decodable {
            var hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_channels, image_size, patch_size: Int?
            var num_patches: Int?
            var hidden_act: String?
            var layer_norm_eps: Double?
            var vision_use_head: Bool?
        }
        var model_type: String?
        var text_config: T?
        var vision_config: V?
    }

    public init() {}

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CLIPError.badConfig(file: url.path, detail: "cannot read the file (\(error.localizedDescription))")
        }
        let raw: Raw
        do { raw = try JSONDecoder().decode(Raw.self, from: data) } catch {
            throw CLIPError.badConfig(file: url.path, detail: "not a valid SigLIP config.json: \(describe(error))")
        }
        func bad(_ d: String) -> CLIPError { CLIPError.unsupportedArchitecture(model: url.path, detail: d) }
        func act(_ name: String?, _ section: String) throws -> Activation {
            guard let name else { return .geluTanh }
            guard let a = Activation(configName: name) else { throw bad("\(section).hidden_act '\(name)' is not implemented") }
            return a
        }
        let t = raw.text_config, v = raw.vision_config
        text = CLIPTransformerConfig(width: t?.hidden_size ?? 768, layers: t?.num_hidden_layers ?? 12,
                                     heads: t?.num_attention_heads ?? 12, mlpWidth: t?.intermediate_size ?? 3072,
                                     activation: try act(t?.hidden_act, "text_config"), layerNormEps: Float(t?.layer_norm_eps ?? 1e-6))
        vision = CLIPTransformerConfig(width: v?.hidden_size ?? 768, layers: v?.num_hidden_layers ?? 12,
                                       heads: v?.num_attention_heads ?? 12, mlpWidth: v?.intermediate_size ?? 3072,
                                       activation: try act(v?.hidden_act, "vision_config"), layerNormEps: Float(v?.layer_norm_eps ?? 1e-6))
        vocabSize = t?.vocab_size ?? 32000
        contextLength = t?.max_position_embeddings ?? 64
        padTokenId = t?.pad_token_id ?? 1
        projectionSize = t?.projection_size ?? text.width
        imageSize = v?.image_size ?? 224
        patchSize = v?.patch_size ?? 16
        visionUseHead = v?.vision_use_head ?? true
        if raw.model_type == "siglip2" {
            let n = v?.num_patches ?? 256, g = Int(Double(n).squareRoot())
            guard n > 0, g * g == n else { throw bad("vision_config.num_patches \(n) is not a square (the position grid is g x g)") }
            naflexPositions = n
        }
        if let c = v?.num_channels, c != 3 { throw bad("vision_config.num_channels \(c) (RGB only)") }
        guard visionUseHead else { throw bad("vision_config.vision_use_head false: the image embedding would be undefined (SiglipModel pools through the head)") }
        for (tower, c) in [("text", text), ("vision", vision)] {
            guard c.width > 0, c.layers > 0, c.heads > 0, c.mlpWidth > 0, c.width % c.heads == 0 else {
                throw bad("\(tower) tower: width \(c.width), \(c.layers) layers, \(c.heads) heads (width must be a positive multiple of heads)")
            }
        }
        // The patch convolution drops a remainder, as in SiglipVisionEmbeddings (so400m-patch14-384: 27 x 27).
        guard patchSize > 0, imageSize >= patchSize else {
            throw bad("image size \(imageSize) is smaller than the patch size \(patchSize)")
        }
        guard vocabSize > 0, contextLength > 0, padTokenId >= 0, padTokenId < vocabSize else {
            throw bad("text_config: vocab \(vocabSize), context \(contextLength), pad id \(padTokenId)")
        }
        guard projectionSize == vision.width else {
            throw bad("text_config.projection_size \(projectionSize) differs from the image width \(vision.width); SiglipModel compares them directly")
        }
    }
}

struct SigLIPTextWeights: Sendable {
    var tokenEmbedding: [Float]      // [V, W]
    var positionEmbedding: [Float]   // [ctx, W]
    var blocks: [BlockWeights]
    var finalNorm: LayerNormWeights
    var head: Linear                 // [P, W]
}

public final class SigLIPModel: VisionLanguageModel {
    public let config: SigLIPConfig
    public let preprocessor: CLIPPreprocessor
    /// SigLIP 2 NaFlex's processor; then `preprocess` returns [patch rows, patch columns, patches...].
    public let naflex: NaFlexConfig?
    let tokenize: (@Sendable (String) -> [Int])?
    public let logitScale: Float
    public let logitBias: Float
    public let identity: String
    public let notes: [String]
    public let imageBatch = 16, textBatch = 32

    let vision: MAPViTTower
    let text: SigLIPTextWeights
    let textEncoder: CLIPTransformer

    public var embedDim: Int { config.vision.width }
    public var summary: String {
        if let n = naflex {
            return "SigLIP 2 NaFlex ViT (\(config.vision.layers) layers, width \(config.vision.width), patch \(n.patchSize), up to \(n.maxPatches) patches, \(n.positionGrid)x\(n.positionGrid) position grid; text \(config.text.layers) layers, width \(config.text.width), context \(config.contextLength); embed \(embedDim))"
        }
        return "SigLIP ViT (\(config.vision.layers) layers, width \(config.vision.width), patch \(config.patchSize), \(config.imageSize) px; text \(config.text.layers) layers, width \(config.text.width), context \(config.contextLength); embed \(embedDim))"
    }
    public var preprocessingKey: String {
        if let n = naflex { return "siglip2-naflex|\(n)" }
        return "siglip|\(preprocessor.mode)"
    }

    init(config: SigLIPConfig, vision: MAPViTWeights, text: SigLIPTextWeights, logitScale: Float, logitBias: Float,
         preprocessor: CLIPPreprocessor, naflex: NaFlexConfig? = nil, tokenize: (@Sendable (String) -> [Int])?, identity: String,
         notes: [String]) {
        self.config = config; self.text = text; self.naflex = naflex
        self.vision = MAPViTTower(config: MAPViTConfig(transformer: config.vision, imageSize: config.imageSize, patchSize: config.patchSize),
                                  weights: vision)
        self.logitScale = logitScale; self.logitBias = logitBias
        self.preprocessor = preprocessor; self.tokenize = tokenize
        self.identity = identity; self.notes = notes
        textEncoder = CLIPTransformer(config: config.text, blocks: text.blocks)
    }

    public func preprocess(_ image: RGBImage) -> [Float] { naflex?.preprocess(image) ?? preprocessor(image) }

    // MARK: images

    public func embedPreprocessed(_ pixels: [[Float]], normalize: Bool) throws -> [[Float]] {
        let out: [[Float]]
        if let naflex {
            out = try stride(from: 0, to: pixels.count, by: imageBatch).flatMap {
                try embedNaFlex(Array(pixels[$0..<min(pixels.count, $0 + imageBatch)]), naflex)
            }
        } else {
            out = try vision.embed(pixels, batch: imageBatch)
        }
        return normalize ? out.map(l2Normalized) : out
    }

    /// NaFlex images ([rows, columns, patches...] each): patch embeddings plus the position grid resized to each
    /// image's patch grid, then the encoder and head over sequences of each image's own length.
    private func embedNaFlex(_ images: [[Float]], _ n: NaFlexConfig) throws -> [[Float]] {
        let w = config.vision.width, k = 3 * n.patchSize * n.patchSize
        var segments: [Range<Int>] = [], shapes: [(Int, Int)] = []
        for (i, im) in images.enumerated() {
            let gh = im.first.map { Int($0) } ?? 0, gw = im.count > 1 ? Int(im[1]) : 0
            guard gh > 0, gw > 0, gh * gw <= n.maxPatches, im.count == 2 + gh * gw * k else {
                throw CLIPError.badInput("image \(i) is not a NaFlex patch list of this model (\(im.count) values; expected [rows, columns] then rows x columns x \(k) values, at most \(n.maxPatches) patches)")
            }
            let start = segments.last?.upperBound ?? 0
            segments.append(start..<(start + gh * gw))
            shapes.append((gh, gw))
        }
        if images.isEmpty { return [] }
        let rows = segments.last!.upperBound
        var patches = [Float](repeating: 0, count: rows * k)
        for (im, seg) in zip(images, segments) { patches.replaceSubrange((seg.lowerBound * k)..<(seg.upperBound * k), with: im[2...]) }
        var x = [Float](repeating: 0, count: rows * w)
        x.withUnsafeMutableBufferPointer { xb in patches.withUnsafeBufferPointer { pb in
            vision.weights.patchEmbedding.forward(xb.baseAddress!, pb.baseAddress!, rows: rows)
        } }
        for (seg, shape) in zip(segments, shapes) {
            let pos = NaFlexConfig.resizePositions(vision.weights.positionEmbedding, side: n.positionGrid, width: w, to: shape.0, shape.1)
            x.withUnsafeMutableBufferPointer { xb in pos.withUnsafeBufferPointer { p in
                Vec.add(xb.baseAddress! + seg.lowerBound * w, p.baseAddress!, seg.count * w)
            } }
        }
        return vision.pool(&x, segments: segments)
    }

    // MARK: texts

    /// Embeddings of token id sequences (..., </s>; unpadded: they are padded to the context here, as
    /// SiglipProcessor pads them).
    public func embedTokens(_ ids: [[Int]], normalize: Bool = true) throws -> [[Float]] {
        let c = config
        for seq in ids {
            guard seq.count <= c.contextLength else {
                throw CLIPError.badInput("\(seq.count) tokens, more than the context length \(c.contextLength); truncate with the tokenizer")
            }
            if let bad = seq.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
                throw CLIPError.badInput("token id \(bad) outside the vocabulary of \(c.vocabSize)")
            }
        }
        var out: [[Float]] = []
        out.reserveCapacity(ids.count)
        for start in stride(from: 0, to: ids.count, by: textBatch) {
            out += embedTextBatch(Array(ids[start..<min(ids.count, start + textBatch)]))
        }
        return normalize ? out.map(l2Normalized) : out
    }

    private func embedTextBatch(_ batch: [[Int]]) -> [[Float]] {
        if batch.isEmpty { return [] }
        let c = config, w = c.text.width, ctx = c.contextLength, b = batch.count, rows = b * ctx
        var x = [Float](repeating: 0, count: rows * w)
        var last = [Float](repeating: 0, count: b * w)
        var out = [Float](repeating: 0, count: b * c.projectionSize)
        x.withUnsafeMutableBufferPointer { xb in
            let xp = xb.baseAddress!
            text.tokenEmbedding.withUnsafeBufferPointer { tok in text.positionEmbedding.withUnsafeBufferPointer { pos in
                for (i, seq) in batch.enumerated() {
                    let lead = c.padsLeft ? ctx - seq.count : 0
                    for j in 0..<ctx {
                        let id = j >= lead && j - lead < seq.count ? seq[j - lead] : c.padTokenId
                        let row = xp + (i * ctx + j) * w
                        row.update(from: tok.baseAddress! + id * w, count: w)
                        Vec.add(row, pos.baseAddress! + j * w, w)
                    }
                }
            } }
            textEncoder.forward(xp, rows: rows, segments: (0..<b).map { ($0 * ctx)..<(($0 + 1) * ctx) }, causal: false)
            last.withUnsafeMutableBufferPointer { lb in
                for i in 0..<b { (lb.baseAddress! + i * w).update(from: xp + (i * ctx + ctx - 1) * w, count: w) }
                layerNorm(lb.baseAddress!, lb.baseAddress!, text.finalNorm, rows: b, dim: w, eps: c.text.layerNormEps)
                out.withUnsafeMutableBufferPointer { ob in text.head.forward(ob.baseAddress!, lb.baseAddress!, rows: b) }
            }
        }
        let p = c.projectionSize
        return (0..<b).map { Array(out[($0 * p)..<(($0 + 1) * p)]) }
    }

    public func embedTexts(_ texts: [String], normalize: Bool) throws -> [[Float]] {
        guard let tokenize else {
            throw CLIPError.badInput("this SigLIP model was loaded without a tokenizer (no spiece.model or tokenizer.json next to the weights)")
        }
        return try embedTokens(texts.map(tokenize), normalize: normalize)
    }
}

extension SigLIPModel {
    static func load(_ dir: URL) throws -> SigLIPModel {
        let configURL = dir.appendingPathComponent("config.json")
        let c = try SigLIPConfig(contentsOf: configURL)
        let checkpoint = try VLMLoader.openCheckpoint(dir)
        var r = StrictWeightReader(checkpoint.source, file: dir.path)
        let vision: MAPViTWeights, text: SigLIPTextWeights, scale: Float, bias: Float
        do {
            let w = c.vision.width, p = c.patchSize
            // SigLIP 2 NaFlex embeds flattened (y, x, channel) patches with a Linear; SigLIP a 3 x p x p convolution.
            let patchShape = c.naflexPositions == nil ? [w, 3, p, p] : [w, 3 * p * p]
            let inProj = try r.take("vision_model.head.attention.in_proj_weight", [3 * w, w])
            let inBias = try r.take("vision_model.head.attention.in_proj_bias", [3 * w])
            vision = MAPViTWeights(
                patchEmbedding: Linear(dense: try r.take("vision_model.embeddings.patch_embedding.weight", patchShape),
                                       out: w, in: 3 * p * p, bias: try r.take("vision_model.embeddings.patch_embedding.bias", [w])),
                positionEmbedding: try r.take("vision_model.embeddings.position_embedding.weight", [c.patches, w]),
                blocks: try (0..<c.vision.layers).map { try r.huggingFaceBlock("vision_model.encoder.layers.\($0)", c.vision) },
                postNorm: try r.norm("vision_model.post_layernorm", w),
                probe: try r.take("vision_model.head.probe", [1, 1, w]),
                headQuery: Linear(dense: Array(inProj[0..<(w * w)]), out: w, in: w, bias: Array(inBias[0..<w])),
                headKeyValue: Linear(dense: Array(inProj[(w * w)...]), out: 2 * w, in: w, bias: Array(inBias[w...])),
                headOut: try r.linear("vision_model.head.attention.out_proj", out: w, in: w),
                headNorm: try r.norm("vision_model.head.layernorm", w),
                headFC1: try r.linear("vision_model.head.mlp.fc1", out: c.vision.mlpWidth, in: w),
                headFC2: try r.linear("vision_model.head.mlp.fc2", out: w, in: c.vision.mlpWidth))
            let tw = c.text.width
            text = SigLIPTextWeights(
                tokenEmbedding: try r.take("text_model.embeddings.token_embedding.weight", [c.vocabSize, tw]),
                positionEmbedding: try r.take("text_model.embeddings.position_embedding.weight", [c.contextLength, tw]),
                blocks: try (0..<c.text.layers).map { try r.huggingFaceBlock("text_model.encoder.layers.\($0)", c.text) },
                finalNorm: try r.norm("text_model.final_layer_norm", tw),
                head: try r.linear("text_model.head", out: c.projectionSize, in: tw))
            scale = expf(try r.take("logit_scale", [1])[0])
            bias = try r.take("logit_bias", [1])[0]
            try r.finish(ignoring: { $0.hasSuffix("position_ids") }) { left in
                let shown = left.prefix(8).joined(separator: ", ") + (left.count > 8 ? ", ... (\(left.count) in all)" : "")
                return "is not used by this SigLIP architecture (unused tensors: \(shown)); the checkpoint does not match its config.json"
            }
        } catch let e as WeightError {
            throw CLIPError.badWeights(file: e.file, detail: "tensor '\(e.tensor)': \(e.message)")
        }
        guard scale.isFinite, scale > 0, bias.isFinite else {
            throw CLIPError.badWeights(file: dir.path, detail: "logit_scale/logit_bias are not finite (\(scale), \(bias))")
        }
        let ppURL = dir.appendingPathComponent("preprocessor_config.json")
        var c2 = c
        let found = try SigLIPTokenizers.find(dir, contextLength: c.contextLength, vocabSize: c.vocabSize)
        if let pad = found?.padId, pad >= 0, pad < c.vocabSize { c2.padTokenId = pad }
        c2.padsLeft = found?.padsLeft ?? false
        let configText = (try? String(contentsOf: configURL, encoding: .utf8)) ?? "\(c)"
        if c.naflexPositions != nil {
            var n = try NaFlexConfig.read(ppURL, positionGrid: c.gridSize)
            if n.patchSize != c.patchSize {
                guard !FileManager.default.fileExists(atPath: ppURL.path) else {
                    throw CLIPError.badConfig(file: ppURL.path, detail: "patch_size \(n.patchSize) differs from vision_config.patch_size \(c.patchSize)")
                }
                n.patchSize = c.patchSize
            }
            return SigLIPModel(config: c2, vision: vision, text: text, logitScale: scale, logitBias: bias,
                               preprocessor: try CLIPPreprocessor.huggingFace(.siglip(size: 224)), naflex: n, tokenize: found?.tokenize,
                               identity: VLMLoader.identity(configText: configText, files: checkpoint.files), notes: [])
        }
        var pp = CLIPImageProcessorConfig.siglip(size: c.imageSize)
        if FileManager.default.fileExists(atPath: ppURL.path) {
            pp = try CLIPImageProcessorConfig(contentsOf: ppURL, defaults: pp)
        }
        let preprocessor: CLIPPreprocessor
        do { preprocessor = try CLIPPreprocessor.huggingFace(pp) } catch {
            throw CLIPError.badConfig(file: ppURL.path, detail: "\(error)")
        }
        let out = preprocessor.outputSize(width: 1000, height: 1000)
        guard out.height == c.imageSize, out.width == c.imageSize else {
            throw CLIPError.badConfig(file: ppURL.path, detail: "preprocessing makes \(out.height)x\(out.width) images but the vision tower takes \(c.imageSize)x\(c.imageSize)")
        }
        return SigLIPModel(config: c2, vision: vision, text: text, logitScale: scale, logitBias: bias, preprocessor: preprocessor,
                           tokenize: found?.tokenize, identity: VLMLoader.identity(configText: configText, files: checkpoint.files), notes: [])
    }
}

extension CLIPImageProcessorConfig {
    /// SiglipImageProcessor's defaults: an exact square resize (bicubic), no crop, 1/255, mean and std 0.5.
    public static func siglip(size: Int) -> CLIPImageProcessorConfig {
        CLIPImageProcessorConfig(doResize: true, size: .exact(height: size, width: size), resample: .bicubic, doCenterCrop: false,
                                 cropHeight: size, cropWidth: size, doRescale: true, rescaleFactor: 1.0 / 255.0, doNormalize: true,
                                 imageMean: [0.5, 0.5, 0.5], imageStd: [0.5, 0.5, 0.5])
    }
}
