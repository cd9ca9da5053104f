// SigLIP's image tower, one implementation for both places it comes from: transformers' SiglipVisionModel
// (SigLIPModel) and timm's vit_*_siglip_* trunks inside open_clip's SigLIP configs (CLIPModel). A ViT with
// patch embeddings (with bias) plus position embeddings, no class token and no pre-LayerNorm; the final
// LayerNorm on every token; then the attention-pooling (MAP) head: a learned probe attends over the tokens
// (one query, the trunk's heads), out projection, and LayerNorm + MLP with a residual. That vector is the
// image feature (transformers' pooler_output, timm's attn_pool output).
import Layers
import Tensors

public struct MAPViTConfig: Sendable, Equatable {
    public var transformer: CLIPTransformerConfig
    public var imageSize: Int
    public var patchSize: Int
    /// timm's model name when the tower came from an open_clip config (for messages).
    public var timmName: String?

    public var gridSize: Int { imageSize / patchSize }
    public var patches: Int { gridSize * gridSize }
}

struct MAPViTWeights: Sendable {
    var patchEmbedding: Linear       // [W, 3 p p] with bias
    var positionEmbedding: [Float]   // [patches, W]
    var blocks: [BlockWeights]
    var postNorm: LayerNormWeights
    var probe: [Float]               // [W]
    var headQuery: Linear            // [W, W]: the probe's query
    var headKeyValue: Linear         // [2W, W]: keys and values of the tokens
    var headOut: Linear              // [W, W]
    var headNorm: LayerNormWeights
    var headFC1: Linear, headFC2: Linear
}

struct MAPViTTower: Sendable {
    let config: MAPViTConfig
    let weights: MAPViTWeights
    let encoder: CLIPTransformer

    init(config: MAPViTConfig, weights: MAPViTWeights) {
        self.config = config
        self.weights = weights
        encoder = CLIPTransformer(config: config.transformer, blocks: weights.blocks)
    }

    /// Unnormalised image features of preprocessed CHW images (3 x S x S each), in batches of `batch`.
    func embed(_ images: [[Float]], batch: Int = 16) throws -> [[Float]] {
        try embedInPasses(images, imageSize: config.imageSize, perPass: batch, embedBatch)
    }

    private func embedBatch(_ images: [[Float]]) -> [[Float]] {
        if images.isEmpty { return [] }
        let c = config, w = c.transformer.width, t = c.patches, b = images.count, rows = b * t
        let unfolded = VisionTower.unfoldPatches(images, imageSize: c.imageSize, patch: c.patchSize)
        var x = [Float](repeating: 0, count: rows * w)
        x.withUnsafeMutableBufferPointer { xb in
            let xp = xb.baseAddress!
            unfolded.withUnsafeBufferPointer { u in weights.patchEmbedding.forward(xp, u.baseAddress!, rows: rows) }
            weights.positionEmbedding.withUnsafeBufferPointer { pos in
                for r in 0..<rows { Vec.add(xp + r * w, pos.baseAddress! + (r % t) * w, w) }
            }
        }
        return pool(&x, segments: (0..<b).map { ($0 * t)..<(($0 + 1) * t) })
    }

    /// The encoder, the final LayerNorm and the MAP head over embedded patch rows x [rows, W] (patch embedding
    /// plus position embedding), one feature per segment; segments may differ in length (SigLIP 2 NaFlex).
    func pool(_ x: inout [Float], segments: [Range<Int>]) -> [[Float]] {
        let tc = config.transformer, w = tc.width, rows = x.count / w, b = segments.count
        var kv = [Float](repeating: 0, count: rows * 2 * w)
        var pooled = [Float](repeating: 0, count: b * w)
        x.withUnsafeMutableBufferPointer { xb in
            let xp = xb.baseAddress!
            encoder.forward(xp, rows: rows, segments: segments, causal: false)
            layerNorm(xp, xp, weights.postNorm, rows: rows, dim: w, eps: tc.layerNormEps)
            kv.withUnsafeMutableBufferPointer { k in weights.headKeyValue.forward(k.baseAddress!, xp, rows: rows) }
        }
        // The probe's query is the same for every image.
        var q = [Float](repeating: 0, count: w)
        weights.probe.withUnsafeBufferPointer { p in q.withUnsafeMutableBufferPointer { qb in
            weights.headQuery.forward(qb.baseAddress!, p.baseAddress!, rows: 1)
        } }
        let attended = CLIPAttention.probe(query: q, kv: kv, segments: segments, width: w, heads: tc.heads)
        var normed = [Float](repeating: 0, count: b * w)
        var hidden = [Float](repeating: 0, count: b * tc.mlpWidth)
        pooled.withUnsafeMutableBufferPointer { pb in attended.withUnsafeBufferPointer { ab in
        normed.withUnsafeMutableBufferPointer { nb in hidden.withUnsafeMutableBufferPointer { hb in
            let pp = pb.baseAddress!, np = nb.baseAddress!, hp = hb.baseAddress!
            weights.headOut.forward(pp, ab.baseAddress!, rows: b)               // residual
            layerNorm(np, pp, weights.headNorm, rows: b, dim: w, eps: tc.layerNormEps)
            weights.headFC1.forward(hp, np, rows: b)
            CLIPActivation.apply(tc.activation, hp, count: b * tc.mlpWidth)
            weights.headFC2.forward(np, hp, rows: b)
            Vec.add(pp, np, b * w)
        } } } }
        return (0..<b).map { Array(pooled[($0 * w)..<(($0 + 1) * w)]) }
    }
}

extension MAPViTTower {
    /// timm's VisionTransformer names under `p` (open_clip: "visual.trunk."): patch_embed.proj, pos_embed
    /// [1, N, W], blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, and
    /// attn_pool.{latent, q, kv (keys then values), proj, norm, mlp.fc1, mlp.fc2}.
    static func readTimm(_ c: MAPViTConfig, _ r: inout StrictWeightReader, prefix p: String) throws -> MAPViTWeights {
        let t = c.transformer, w = t.width, ps = c.patchSize
        let a = p + "attn_pool."
        return MAPViTWeights(
            patchEmbedding: Linear(dense: try r.take(p + "patch_embed.proj.weight", [w, 3, ps, ps]), out: w, in: 3 * ps * ps,
                                   bias: try r.take(p + "patch_embed.proj.bias", [w])),
            positionEmbedding: try r.take(p + "pos_embed", [1, c.patches, w]),
            blocks: try (0..<t.layers).map { try r.timmBlock(p + "blocks.\($0).", t) },
            postNorm: try r.norm(p + "norm", w),
            probe: try r.take(a + "latent", [1, 1, w]),
            headQuery: try r.linear(a + "q", out: w, in: w),
            headKeyValue: try r.linear(a + "kv", out: 2 * w, in: w),
            headOut: try r.linear(a + "proj", out: w, in: w),
            headNorm: try r.norm(a + "norm", w),
            headFC1: try r.linear(a + "mlp.fc1", out: t.mlpWidth, in: w),
            headFC2: try r.linear(a + "mlp.fc2", out: w, in: t.mlpWidth))
    }
}

extension MAPViTConfig {
    /// timm's vit_*_siglip_* models that open_clip configs name (timm 1.0: width, depth, heads, MLP width,
    /// activation; patch and image size come from the name). The first SigLIP trunks use exact GELU; the later
    /// ones (patch 32, large 512, so400m patch 16, giant-opt) tanh GELU, as timm registers them.
    static let timmSigLIPVariants: [String: MAPViTConfig] = {
        let base = (768, 12, 12, 3072), large = (1024, 24, 16, 4096), so400m = (1152, 27, 16, 4304), gopt = (1536, 40, 16, 6144)
        let table: [(String, (Int, Int, Int, Int), Int, Int, Activation)] = [
            ("vit_base_patch16_siglip_224", base, 16, 224, .gelu), ("vit_base_patch16_siglip_256", base, 16, 256, .gelu),
            ("vit_base_patch16_siglip_384", base, 16, 384, .gelu), ("vit_base_patch16_siglip_512", base, 16, 512, .gelu),
            ("vit_base_patch32_siglip_256", base, 32, 256, .geluTanh),
            ("vit_large_patch16_siglip_256", large, 16, 256, .gelu), ("vit_large_patch16_siglip_384", large, 16, 384, .gelu),
            ("vit_large_patch16_siglip_512", large, 16, 512, .geluTanh),
            ("vit_so400m_patch14_siglip_224", so400m, 14, 224, .gelu), ("vit_so400m_patch14_siglip_378", so400m, 14, 378, .gelu),
            ("vit_so400m_patch14_siglip_384", so400m, 14, 384, .gelu),
            ("vit_so400m_patch16_siglip_256", so400m, 16, 256, .geluTanh), ("vit_so400m_patch16_siglip_384", so400m, 16, 384, .geluTanh),
            ("vit_so400m_patch16_siglip_512", so400m, 16, 512, .geluTanh),
            ("vit_giantopt_patch16_siglip_256", gopt, 16, 256, .geluTanh), ("vit_giantopt_patch16_siglip_384", gopt, 16, 384, .geluTanh),
        ]
        var out: [String: MAPViTConfig] = [:]
        for (name, d, patch, size, act) in table {
            out[name] = MAPViTConfig(transformer: CLIPTransformerConfig(width: d.0, layers: d.1, heads: d.2, mlpWidth: d.3,
                                                                        activation: act, layerNormEps: 1e-6),
                                     imageSize: size, patchSize: patch, timmName: name)
        }
        return out
    }()
}
