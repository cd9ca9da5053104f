// The CLIP image tower (ViT): the patch convolution as one GEMM over unfolded patches, the class token,
// position embeddings, the optional pre-LayerNorm, a bidirectional transformer, pooling (class token or
// the mean of the patch tokens), the post-LayerNorm and the projection. Images go through in batches so
// every projection of every layer is one GEMM over all tokens of the batch.
import Layers
import Tensors

struct VisionTower: Sendable {
    let config: CLIPVisionConfig
    let embedDim: Int
    let weights: VisionTowerWeights
    let transformer: CLIPTransformer

    init(config: CLIPVisionConfig, embedDim: Int, weights: VisionTowerWeights) {
        self.config = config
        self.embedDim = embedDim
        self.weights = weights
        self.transformer = CLIPTransformer(config: config.transformer, blocks: weights.blocks)
    }

    /// Unnormalised embeddings for preprocessed images, each CHW 3 x S x S (S = image size).
    func embed(_ images: [[Float]]) throws -> [[Float]] {
        let s = config.imageSize
        for (i, im) in images.enumerated() where im.count != 3 * s * s {
            throw CLIPError.badInput("image \(i) has \(im.count) values; the model takes 3 x \(s) x \(s) = \(3 * s * s) (check the preprocessing size)")
        }
        if images.isEmpty { return [] }
        let b = images.count, w = config.transformer.width, p = config.patchSize, g = config.gridSize
        let t = config.tokens, patches = g * g, rows = b * t
        var x = [Float](repeating: 0, count: rows * w)

        var embedded = [Float](repeating: 0, count: b * patches * w)
        if let stem = weights.hybridStem {
            embedded.withUnsafeMutableBufferPointer { e in stem.forward(e.baseAddress!, images: images, size: s) }
        } else {
            let unfolded = Self.unfoldPatches(images, imageSize: s, patch: p)
            unfolded.withUnsafeBufferPointer { u in embedded.withUnsafeMutableBufferPointer { e in
                linear(e.baseAddress!, u.baseAddress!, weights.patchEmbedding, rows: b * patches)
            } }
        }

        x.withUnsafeMutableBufferPointer { xb in
            let xp = xb.baseAddress!
            let prefix = t - patches  // the class token, when there is one
            embedded.withUnsafeBufferPointer { e in
                for bi in 0..<b {
                    let img = xp + bi * t * w
                    if let cls = weights.classEmbedding { img.update(from: cls, count: w) }
                    (img + prefix * w).update(from: e.baseAddress! + bi * patches * w, count: patches * w)
                    weights.positionEmbedding?.withUnsafeBufferPointer { pos in Vec.add(img, pos.baseAddress!, t * w) }
                }
            }
            if let pre = weights.preNorm {
                layerNorm(xp, xp, pre, rows: rows, dim: w, eps: config.transformer.layerNormEps)
            }
            let segments = (0..<b).map { ($0 * t)..<(($0 + 1) * t) }
            transformer.forward(xp, rows: rows, segments: segments, causal: false)
        }
        return pool(x, count: b)
    }

    /// One row per patch in (c, ky, kx) order, the layout of a [W, 3, p, p] patch convolution's kernel:
    /// [images * (S / p)^2, 3 p p] from CHW images; pixels past the last whole patch are left out, as a stride-p
    /// convolution leaves them.
    static func unfoldPatches(_ images: [[Float]], imageSize s: Int, patch p: Int) -> [Float] {
        let g = s / p, patches = g * g, k = 3 * p * p
        var unfolded = [Float](repeating: 0, count: images.count * patches * k)
        unfolded.withUnsafeMutableBufferPointer { u in
            let up = u.baseAddress!
            for (bi, im) in images.enumerated() {
                im.withUnsafeBufferPointer { src in
                    for gy in 0..<g { for gx in 0..<g {
                        let row = up + ((bi * patches) + gy * g + gx) * k
                        for c in 0..<3 { for ky in 0..<p {
                            let from = src.baseAddress! + c * s * s + (gy * p + ky) * s + gx * p
                            (row + (c * p + ky) * p).update(from: from, count: p)
                        } }
                    } }
                }
            }
        }
        return unfolded
    }

    private func pool(_ x: [Float], count b: Int) -> [[Float]] {
        if case .attentional(let heads, _) = config.pooling, let ap = weights.attentionalPool {
            return project(attentionalPool(x, count: b, heads: heads, ap), count: b, width: embedDim)
        }
        let w = config.transformer.width, t = config.tokens, eps = config.transformer.layerNormEps
        var pooled = [Float](repeating: 0, count: b * w)
        x.withUnsafeBufferPointer { xb in pooled.withUnsafeMutableBufferPointer { pb in
            let xp = xb.baseAddress!, pp = pb.baseAddress!
            switch config.pooling {
            case .classToken:
                // LayerNorm is per token, so norm-then-pool and pool-then-norm agree for the class token.
                for bi in 0..<b { (pp + bi * w).update(from: xp + bi * t * w, count: w) }
                layerNorm(pp, pp, weights.postNorm, rows: b, dim: w, eps: eps)
            case .attentional:
                preconditionFailure("CoCa's pooler without its weights")
            case .average:
                var tokens = [Float](repeating: 0, count: config.normAfterPool ? 0 : t * w)
                for bi in 0..<b {
                    let src = xp + bi * t * w
                    if config.normAfterPool {
                        averagePatches(pp + bi * w, src, tokens: t, width: w)
                    } else {
                        tokens.withUnsafeMutableBufferPointer { tb in
                            layerNorm(tb.baseAddress!, src, weights.postNorm, rows: t, dim: w, eps: eps)
                            averagePatches(pp + bi * w, tb.baseAddress!, tokens: t, width: w)
                        }
                    }
                }
                if config.normAfterPool { layerNorm(pp, pp, weights.postNorm, rows: b, dim: w, eps: eps) }
            }
        } }
        return project(pooled, count: b, width: w)
    }

    /// The projection of pooled rows [b, width] (none for timm_proj "none").
    private func project(_ pooled: [Float], count b: Int, width w: Int) -> [[Float]] {
        guard let projection = weights.projection else { return (0..<b).map { Array(pooled[$0 * w..<($0 + 1) * w]) } }
        var out = [Float](repeating: 0, count: b * embedDim)
        pooled.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { o in
            linear(o.baseAddress!, p.baseAddress!, projection, rows: b)
        } }
        return (0..<b).map { Array(out[$0 * embedDim..<($0 + 1) * embedDim]) }
    }

    /// CoCa: the first learned query's attention output over each image's LayerNorm'd tokens, then ln_post
    /// (over embed_dim): [b, E].
    private func attentionalPool(_ x: [Float], count b: Int, heads: Int, _ ap: AttentionalPoolWeights) -> [Float] {
        let w = config.transformer.width, t = config.tokens, e = embedDim, eps = config.transformer.layerNormEps
        var keys = [Float](repeating: 0, count: b * t * w), kv = [Float](repeating: 0, count: b * t * 2 * e)
        var qn = [Float](repeating: 0, count: e), q = [Float](repeating: 0, count: e)
        x.withUnsafeBufferPointer { xb in keys.withUnsafeMutableBufferPointer { kb in kv.withUnsafeMutableBufferPointer { kvb in
            layerNorm(kb.baseAddress!, xb.baseAddress!, ap.keyNorm, rows: b * t, dim: w, eps: eps)
            ap.kv.forward(kvb.baseAddress!, kb.baseAddress!, rows: b * t)
        } } }
        ap.query.withUnsafeBufferPointer { qb in qn.withUnsafeMutableBufferPointer { nb in q.withUnsafeMutableBufferPointer { out in
            layerNorm(nb.baseAddress!, qb.baseAddress!, ap.queryNorm, rows: 1, dim: e, eps: eps)
            ap.q.forward(out.baseAddress!, nb.baseAddress!, rows: 1)
        } } }
        let attended = CLIPAttention.probe(query: q, kv: kv, images: b, tokens: t, width: e, heads: heads)
        var pooled = [Float](repeating: 0, count: b * e)
        attended.withUnsafeBufferPointer { ab in pooled.withUnsafeMutableBufferPointer { pb in
            ap.out.forward(pb.baseAddress!, ab.baseAddress!, rows: b)
            layerNorm(pb.baseAddress!, pb.baseAddress!, weights.postNorm, rows: b, dim: e, eps: eps)
        } }
        return pooled
    }

    /// out = mean of the patch rows (a class token is left out, as OpenCLIP's and timm's "avg" pools do).
    private func averagePatches(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, tokens t: Int, width w: Int) {
        let first = config.classToken ? 1 : 0
        // Accumulate in Double: a mean over hundreds of tokens in Float drifts from torch's result.
        var acc = [Double](repeating: 0, count: w)
        for r in first..<t { for i in 0..<w { acc[i] += Double(x[r * w + i]) } }
        for i in 0..<w { out[i] = Float(acc[i] / Double(t - first)) }
    }
}

extension VisionTower {
    /// timm's VisionTransformer names under visual.trunk. (open_clip's TimmModel): cls_token [1, 1, W],
    /// pos_embed [1, tokens, W], patch_embed.proj, norm_pre, blocks.i.{norm1, attn.qkv, attn.proj, norm2,
    /// mlp.fc1, mlp.fc2, ls1.gamma, ls2.gamma}, norm; the projection is timm's head or open_clip's head.proj.
    static func readTimm(_ v: CLIPVisionConfig, _ tv: TimmViTConfig, embedDim: Int, _ r: inout StrictWeightReader) throws -> VisionTowerWeights {
        let t = v.transformer, w = t.width, p = v.patchSize, pre = "visual.trunk."
        let projection: Linear?
        switch tv.projection {
        case .trunkHead: projection = try r.linear(pre + "head", out: embedDim, in: w)
        case .linear(let bias): projection = try r.linear("visual.head.proj", out: embedDim, in: w, bias: bias)
        case .none: projection = nil
        }
        let patchEmbedding: Linear, hybrid: ViTaminStem?
        if let stem = tv.hybridStem {
            hybrid = ViTaminStem(config: stem, weights: try ViTaminStem.read(stem, prefix: pre + "patch_embed.backbone.", &r))
            patchEmbedding = Linear(dense: [Float](repeating: 0, count: w), out: w, in: 1)
        } else {
            hybrid = nil
            patchEmbedding = Linear(dense: try r.take(pre + "patch_embed.proj.weight", [w, 3, p, p]), out: w, in: 3 * p * p,
                                    bias: tv.patchBias ? try r.take(pre + "patch_embed.proj.bias", [w]) : nil)
        }
        return VisionTowerWeights(
            patchEmbedding: patchEmbedding,
            classEmbedding: v.classToken ? try r.take(pre + "cls_token", [1, 1, w]) : nil,
            positionEmbedding: tv.positionEmbedding ? try r.take(pre + "pos_embed", [1, v.tokens, w]) : nil,
            preNorm: v.preNorm ? try r.norm(pre + "norm_pre", w) : nil,
            blocks: try (0..<t.layers).map { try r.timmBlock(pre + "blocks.\($0).", t, qkvBias: tv.qkvBias) },
            // timm's fc_norm (global_pool 'avg' with the default fc_norm) replaces the final norm after the pool.
            postNorm: try r.norm(pre + (v.normAfterPool ? "fc_norm" : "norm"), w),
            projection: projection,
            hybridStem: hybrid)
    }
}
