// Checkpoint names, in one place, for both namings CLIP weights come in (transformers' CLIPModel and
// OpenCLIP), and a strict reader: every tensor is looked up with the shape the config implies, and
// anything left unused at the end is an error, as nanoGPT's from_pretrained does. OpenCLIP stores q, k, v
// fused as in_proj_weight [3W, W] (already the layout our fused GEMM wants) and its projections as
// matrices used as x @ proj [W, E]; those are transposed here once so both towers only ever see
// PyTorch Linear layout, y = x W^T + b.
import ModelFiles
import Tensors

/// A PyTorch-layout linear layer, weight [out, in] and optional bias [out], held as the engine's Float
/// panels (PackedGEMM): the same kernels as the language model's, AVX-512 where the CPU has it.
struct LinearWeights: Sendable {
    let packed: PackedWeight
    var bias: [Float]?
    let outFeatures: Int
    let inFeatures: Int

    init(weight: [Float], bias: [Float]?, outFeatures: Int, inFeatures: Int) {
        precondition(weight.count == outFeatures * inFeatures, "linear weight size")
        packed = weight.withUnsafeBufferPointer { w in
            let base = w.baseAddress!
            nonisolated(unsafe) let src = base
            return PackedWeight(n: outFeatures, k: inFeatures) { r, dst in dst.update(from: src + r * inFeatures, count: inFeatures) }
        }
        self.bias = bias
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
    }

    /// Layers with the same input, outputs stacked (q, k, v into one qkv projection).
    init(stacking parts: [LinearWeights]) {
        let k = parts[0].inFeatures
        precondition(parts.allSatisfy { $0.inFeatures == k }, "stacked layers share their input")
        var rows: [(PackedWeight, Int)] = []
        for part in parts { for r in 0..<part.outFeatures { rows.append((part.packed, r)) } }
        nonisolated(unsafe) let table = rows
        packed = PackedWeight(n: rows.count, k: k) { r, dst in table[r].0.row(table[r].1, into: dst) }
        let biases = parts.compactMap(\.bias)
        bias = biases.count == parts.count ? biases.flatMap { $0 } : nil
        outFeatures = rows.count
        inFeatures = k
    }
}

struct LayerNormWeights: Sendable {
    var weight: [Float]
    var bias: [Float]
}

/// One pre-LN residual block: x += out(attn(LN1 x)); x += fc2(act(fc1(LN2 x))).
struct BlockWeights: Sendable {
    var norm1: LayerNormWeights
    /// q, k, v stacked: [3W, W] and [3W].
    var qkv: LinearWeights
    var out: LinearWeights
    var norm2: LayerNormWeights
    var fc1: LinearWeights
    var fc2: LinearWeights
}

struct TextTowerWeights: Sendable {
    var tokenEmbedding: [Float]      // [V, W]
    var positionEmbedding: [Float]   // [ctx, W]
    var blocks: [BlockWeights]
    var finalNorm: LayerNormWeights
    var projection: LinearWeights    // [E, W]
}

struct VisionTowerWeights: Sendable {
    var patchEmbedding: LinearWeights // [W, 3 * p * p], conv kernel flattened in (c, ky, kx) order
    var classEmbedding: [Float]      // [W]
    var positionEmbedding: [Float]   // [tokens, W]
    var preNorm: LayerNormWeights?
    var blocks: [BlockWeights]
    var postNorm: LayerNormWeights   // over W, or over the pooled vector
    var projection: LinearWeights    // [E, W]
}

/// Takes tensors out of a WeightSource by name, checking shapes and remembering what was used.
struct StrictWeightReader {
    let source: any WeightSource
    let file: String
    private(set) var used = Set<String>()

    init(_ source: any WeightSource, file: String) { self.source = source; self.file = file }

    mutating func take(_ name: String, _ shape: [Int]) throws -> [Float] {
        guard let s = source.shape(of: name) else {
            throw CLIPError.badWeights(file: file, detail: "missing tensor '\(name)' (expected shape \(shape))")
        }
        // A scalar may be stored as [] or [1].
        let same = s == shape || (shape.isEmpty && s == [1]) || (shape == [1] && s.isEmpty)
        guard same else {
            throw CLIPError.badWeights(file: file, detail: "tensor '\(name)' has shape \(s), the config implies \(shape)")
        }
        used.insert(name)
        do { return try source.floats(name) } catch {
            throw CLIPError.badWeights(file: file, detail: "cannot read tensor '\(name)': \(error)")
        }
    }

    mutating func has(_ name: String) -> Bool { source.shape(of: name) != nil }

    mutating func norm(_ prefix: String, _ n: Int) throws -> LayerNormWeights {
        LayerNormWeights(weight: try take(prefix + ".weight", [n]), bias: try take(prefix + ".bias", [n]))
    }

    mutating func linear(_ prefix: String, out: Int, in k: Int, bias: Bool = true) throws -> LinearWeights {
        LinearWeights(weight: try take(prefix + ".weight", [out, k]), bias: bias ? try take(prefix + ".bias", [out]) : nil,
                      outFeatures: out, inFeatures: k)
    }

    /// An x @ P matrix [k, out] turned into Linear layout [out, k].
    mutating func projectionMatrix(_ name: String, in k: Int, out: Int) throws -> LinearWeights {
        let p = try take(name, [k, out])
        var w = [Float](repeating: 0, count: out * k)
        for i in 0..<k { for j in 0..<out { w[j * k + i] = p[i * out + j] } }
        return LinearWeights(weight: w, bias: nil, outFeatures: out, inFeatures: k)
    }

    /// Fails naming the tensors nobody asked for; buffers that carry no weights are skipped.
    func finish(ignoring ignored: (String) -> Bool) throws {
        let left = source.tensorNames.filter { !used.contains($0) && !ignored($0) }.sorted()
        guard left.isEmpty else {
            let shown = left.prefix(8).joined(separator: ", ") + (left.count > 8 ? ", ... (\(left.count) in all)" : "")
            throw CLIPError.badWeights(file: file, detail: "unused tensors: \(shown); the checkpoint holds parts this CLIP architecture does not have")
        }
    }
}

enum CLIPWeightNames {
    /// Reads both towers and the stored log logit scale (nil when the checkpoint has none).
    static func load(_ arch: CLIPArchitecture, from source: any WeightSource, file: String) throws
        -> (text: TextTowerWeights, vision: VisionTowerWeights, logLogitScale: Float?) {
        var r = StrictWeightReader(source, file: file)
        let result: (TextTowerWeights, VisionTowerWeights)
        switch arch.naming {
        case .huggingFace: result = try huggingFace(arch, &r)
        case .openCLIP: result = try openCLIP(arch, &r, textPrefix: "")
        case .openCLIPCustomText: result = try openCLIP(arch, &r, textPrefix: "text.")
        }
        var scale: Float?
        if r.has("logit_scale") { scale = try r.take("logit_scale", [])[0] }
        if r.has("logit_bias") {
            throw CLIPError.badWeights(file: file, detail: "the checkpoint has a logit_bias (a SigLIP-style model), which this CLIP engine does not implement")
        }
        try r.finish { $0.hasSuffix("position_ids") || $0.hasSuffix("attn_mask") }
        return (result.0, result.1, scale)
    }

    // MARK: transformers

    private static func huggingFace(_ a: CLIPArchitecture, _ r: inout StrictWeightReader) throws
        -> (TextTowerWeights, VisionTowerWeights) {
        func block(_ p: String, _ t: CLIPTransformerConfig) throws -> BlockWeights {
            let w = t.width
            let q = try r.linear(p + ".self_attn.q_proj", out: w, in: w)
            let k = try r.linear(p + ".self_attn.k_proj", out: w, in: w)
            let v = try r.linear(p + ".self_attn.v_proj", out: w, in: w)
            let qkv = LinearWeights(stacking: [q, k, v])
            return BlockWeights(norm1: try r.norm(p + ".layer_norm1", w), qkv: qkv,
                                out: try r.linear(p + ".self_attn.out_proj", out: w, in: w),
                                norm2: try r.norm(p + ".layer_norm2", w),
                                fc1: try r.linear(p + ".mlp.fc1", out: t.mlpWidth, in: w),
                                fc2: try r.linear(p + ".mlp.fc2", out: w, in: t.mlpWidth))
        }
        let t = a.text.transformer, v = a.vision.transformer, p = a.vision.patchSize
        let text = TextTowerWeights(
            tokenEmbedding: try r.take("text_model.embeddings.token_embedding.weight", [a.text.vocabSize, t.width]),
            positionEmbedding: try r.take("text_model.embeddings.position_embedding.weight", [a.text.contextLength, t.width]),
            blocks: try (0..<t.layers).map { try block("text_model.encoder.layers.\($0)", t) },
            finalNorm: try r.norm("text_model.final_layer_norm", t.width),
            projection: try r.linear("text_projection", out: a.embedDim, in: t.width, bias: false))
        let vision = VisionTowerWeights(
            patchEmbedding: LinearWeights(weight: try r.take("vision_model.embeddings.patch_embedding.weight", [v.width, 3, p, p]), bias: nil,
                                          outFeatures: v.width, inFeatures: 3 * p * p),
            classEmbedding: try r.take("vision_model.embeddings.class_embedding", [v.width]),
            positionEmbedding: try r.take("vision_model.embeddings.position_embedding.weight", [a.vision.tokens, v.width]),
            preNorm: try r.norm("vision_model.pre_layrnorm", v.width),
            blocks: try (0..<v.layers).map { try block("vision_model.encoder.layers.\($0)", v) },
            postNorm: try r.norm("vision_model.post_layernorm", v.width),
            projection: try r.linear("visual_projection", out: a.embedDim, in: v.width, bias: false))
        return (text, vision)
    }

    // MARK: OpenCLIP

    private static func openCLIP(_ a: CLIPArchitecture, _ r: inout StrictWeightReader, textPrefix tp: String) throws
        -> (TextTowerWeights, VisionTowerWeights) {
        func block(_ p: String, _ t: CLIPTransformerConfig) throws -> BlockWeights {
            let w = t.width
            return BlockWeights(norm1: try r.norm(p + ".ln_1", w),
                                qkv: LinearWeights(weight: try r.take(p + ".attn.in_proj_weight", [3 * w, w]),
                                                   bias: try r.take(p + ".attn.in_proj_bias", [3 * w]),
                                                   outFeatures: 3 * w, inFeatures: w),
                                out: try r.linear(p + ".attn.out_proj", out: w, in: w),
                                norm2: try r.norm(p + ".ln_2", w),
                                fc1: try r.linear(p + ".mlp.c_fc", out: t.mlpWidth, in: w),
                                fc2: try r.linear(p + ".mlp.c_proj", out: w, in: t.mlpWidth))
        }
        let t = a.text.transformer, v = a.vision.transformer, p = a.vision.patchSize
        let textProjection: LinearWeights
        if a.text.projectionBias {
            textProjection = try r.linear(tp + "text_projection", out: a.embedDim, in: t.width)
        } else {
            textProjection = try r.projectionMatrix(tp + "text_projection", in: t.width, out: a.embedDim)
        }
        let text = TextTowerWeights(
            tokenEmbedding: try r.take(tp + "token_embedding.weight", [a.text.vocabSize, t.width]),
            positionEmbedding: try r.take(tp + "positional_embedding", [a.text.contextLength, t.width]),
            blocks: try (0..<t.layers).map { try block(tp + "transformer.resblocks.\($0)", t) },
            finalNorm: try r.norm(tp + "ln_final", t.width),
            projection: textProjection)
        let vision = VisionTowerWeights(
            patchEmbedding: LinearWeights(weight: try r.take("visual.conv1.weight", [v.width, 3, p, p]), bias: nil,
                                          outFeatures: v.width, inFeatures: 3 * p * p),
            classEmbedding: try r.take("visual.class_embedding", [v.width]),
            positionEmbedding: try r.take("visual.positional_embedding", [a.vision.tokens, v.width]),
            preNorm: a.vision.preNorm ? try r.norm("visual.ln_pre", v.width) : nil,
            blocks: try (0..<v.layers).map { try block("visual.transformer.resblocks.\($0)", v) },
            postNorm: try r.norm("visual.ln_post", v.width),
            projection: try r.projectionMatrix("visual.proj", in: v.width, out: a.embedDim))
        return (text, vision)
    }
}
