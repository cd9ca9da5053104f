// Checkpoint names, in one place, for both namings CLIP weights come in (transformers' CLIPModel and
// OpenCLIP), read through Layers' strict reader: every tensor is looked up with the shape the config
// implies, and anything left unused at the end is an error. OpenCLIP stores q, k, v
// fused as in_proj_weight [3W, W] (already the layout our fused GEMM wants) and its projections as
// matrices used as x @ proj [W, E]; those are transposed here once so both towers only ever see
// PyTorch Linear layout, y = x W^T + b, as Layers' Linear on Float panels (PackedGEMM).
import Layers
import ModelFiles
import Tensors

struct LayerNormWeights: Sendable {
    var weight: [Float]
    var bias: [Float]
}

/// One pre-LN residual block: x += g1 * out(attn(LN1 x)); x += g2 * fc2(act(fc1(LN2 x))), the LayerScale
/// gammas g1, g2 [W] only where the model has them (open_clip ls_init_value, timm init_values).
struct BlockWeights: Sendable {
    var norm1: LayerNormWeights
    /// q, k, v stacked: [3W, W] and [3W] (no bias in timm towers built with qkv_bias=False).
    var qkv: Linear
    var out: Linear
    var norm2: LayerNormWeights
    var fc1: Linear
    var fc2: Linear
    var scale1: [Float]? = nil
    var scale2: [Float]? = nil
    /// timm's GeGluMlp: its own LayerNorm; fc1 is then w0 and w1 stacked ([2M, W]) and fc2 is w2.
    var mlpNorm: LayerNormWeights? = nil
}

struct TextTowerWeights: Sendable {
    var tokenEmbedding: [Float]      // [V, W]
    var classEmbedding: [Float]? = nil  // [W]: CoCa's appended class token
    var positionEmbedding: [Float]   // [ctx, W]
    var blocks: [BlockWeights]
    var finalNorm: LayerNormWeights
    var projection: Linear?   // [E, W]; nil for OpenCLIP's proj_type "none"
}

/// The text tower's weights: open_clip's / transformers' CLIP text transformer, or a transformers encoder
/// (open_clip's HFTextEncoder).
enum TextWeights: Sendable {
    case clip(TextTowerWeights)
    case hf(HFTextTowerWeights)
}

/// What a CLIP-family checkpoint holds: both towers, the stored log logit scale and, for SigLIP-style
/// checkpoints (open_clip's SigLIP configs), the logit bias.
struct CLIPCheckpointWeights: Sendable {
    var text: TextWeights
    var vision: ImageTowerWeights
    var logLogitScale: Float?
    var logitBias: Float?
}

/// The image tower's weights: a ViT, or OpenAI's ModifiedResNet.
enum ImageTowerWeights: Sendable {
    case vit(VisionTowerWeights)
    case resnet(ModifiedResNetWeights)
    case convnext(ConvNeXtWeights)
    case mapViT(MAPViTWeights)
}

struct VisionTowerWeights: Sendable {
    var patchEmbedding: Linear // [W, 3 * p * p], conv kernel flattened in (c, ky, kx) order
    var classEmbedding: [Float]?     // [W]; nil for timm towers without a class token
    var positionEmbedding: [Float]?  // [tokens, W]; nil for timm's pos_embed='none'
    var preNorm: LayerNormWeights?
    var blocks: [BlockWeights]
    var postNorm: LayerNormWeights   // over W, or over the pooled vector
    var projection: Linear?   // [E, W]; nil for timm_proj "none"; [E, E] after CoCa's attentional pooler
    var attentionalPool: AttentionalPoolWeights? = nil
    /// ViTamin's convolutional backbone, in place of the patch convolution (then `patchEmbedding` is unused).
    var hybridStem: ViTaminStem? = nil
}

/// CoCa's AttentionalPooler: nn.MultiheadAttention(E, heads, kdim = vdim = W) of LayerNorm'd learned queries over
/// the LayerNorm'd tokens. Only the first query's output is pooled, so only it is kept here.
struct AttentionalPoolWeights: Sendable {
    var query: [Float]          // [E]: query 0
    var queryNorm: LayerNormWeights, keyNorm: LayerNormWeights
    var q: Linear               // [E, E]
    var kv: Linear              // [2E, W]: keys then values
    var out: Linear             // [E, E]

    static func read(_ r: inout StrictWeightReader, prefix p: String, width w: Int, embed e: Int, queries: Int) throws -> Self {
        let bias = try r.take(p + "attn.in_proj_bias", [3 * e])
        let q: Linear, kv: Linear
        if r.has(p + "attn.in_proj_weight") {  // kdim == embed_dim: one fused matrix
            guard w == e else { throw WeightError(file: r.file, tensor: p + "attn.in_proj_weight", message: "a fused projection needs the tower width \(w) to equal embed_dim \(e)") }
            let all = try r.take(p + "attn.in_proj_weight", [3 * e, e])
            q = Linear(dense: Array(all[0..<(e * e)]), out: e, in: e, bias: Array(bias[0..<e]))
            kv = Linear(dense: Array(all[(e * e)...]), out: 2 * e, in: e, bias: Array(bias[e...]))
        } else {
            q = Linear(dense: try r.take(p + "attn.q_proj_weight", [e, e]), out: e, in: e, bias: Array(bias[0..<e]))
            kv = Linear(dense: try r.take(p + "attn.k_proj_weight", [e, w]) + r.take(p + "attn.v_proj_weight", [e, w]),
                        out: 2 * e, in: w, bias: Array(bias[e...]))
        }
        let queries = try r.take(p + "query", [queries, e])
        return AttentionalPoolWeights(query: Array(queries[0..<e]), queryNorm: try r.norm(p + "ln_q", e), keyNorm: try r.norm(p + "ln_k", w),
                                      q: q, kv: kv, out: try r.linear(p + "attn.out_proj", out: e, in: e))
    }
}

extension StrictWeightReader {
    /// One transformers CLIP/SigLIP encoder layer under `p`: layer_norm1, self_attn.{q,k,v,out}_proj,
    /// layer_norm2, mlp.fc1/fc2.
    mutating func huggingFaceBlock(_ p: String, _ t: CLIPTransformerConfig) throws -> BlockWeights {
        let w = t.width
        let q = try linear(p + ".self_attn.q_proj", out: w, in: w)
        let k = try linear(p + ".self_attn.k_proj", out: w, in: w)
        let v = try linear(p + ".self_attn.v_proj", out: w, in: w)
        return BlockWeights(norm1: try norm(p + ".layer_norm1", w), qkv: Linear(stacking: [q, k, v]),
                            out: try linear(p + ".self_attn.out_proj", out: w, in: w),
                            norm2: try norm(p + ".layer_norm2", w),
                            fc1: try linear(p + ".mlp.fc1", out: t.mlpWidth, in: w),
                            fc2: try linear(p + ".mlp.fc2", out: w, in: t.mlpWidth))
    }

    /// One timm VisionTransformer block under `p` ("...blocks.3."): norm1, attn.qkv (bias unless the model was
    /// built with qkv_bias=False), attn.proj, norm2, mlp.fc1/fc2, and ls1/ls2.gamma when it has LayerScale.
    mutating func timmBlock(_ p: String, _ t: CLIPTransformerConfig, qkvBias: Bool = true) throws -> BlockWeights {
        let w = t.width, m = t.mlpWidth
        let norm1 = try norm(p + "norm1", w), qkv = try linear(p + "attn.qkv", out: 3 * w, in: w, bias: qkvBias)
        let out = try linear(p + "attn.proj", out: w, in: w), norm2 = try norm(p + "norm2", w)
        let fc1: Linear, fc2: Linear, mlpNorm: LayerNormWeights?
        if t.gatedMLP {
            mlpNorm = try norm(p + "mlp.norm", w)
            fc1 = Linear(stacking: [try linear(p + "mlp.w0", out: m, in: w), try linear(p + "mlp.w1", out: m, in: w)])
            fc2 = try linear(p + "mlp.w2", out: w, in: m)
        } else {
            mlpNorm = nil
            fc1 = try linear(p + "mlp.fc1", out: m, in: w)
            fc2 = try linear(p + "mlp.fc2", out: w, in: m)
        }
        return BlockWeights(norm1: norm1, qkv: qkv, out: out, norm2: norm2, fc1: fc1, fc2: fc2,
                            scale1: t.layerScale ? try take(p + "ls1.gamma", [w]) : nil,
                            scale2: t.layerScale ? try take(p + "ls2.gamma", [w]) : nil,
                            mlpNorm: mlpNorm)
    }

    mutating func norm(_ prefix: String, _ n: Int) throws -> LayerNormWeights {
        LayerNormWeights(weight: try take(prefix + ".weight", [n]), bias: try take(prefix + ".bias", [n]))
    }

    /// An x @ P matrix [k, out] turned into Linear layout [out, k].
    mutating func projectionMatrix(_ name: String, in k: Int, out: Int) throws -> Linear {
        let p = try take(name, [k, out])
        var w = [Float](repeating: 0, count: out * k)
        for i in 0..<k { for j in 0..<out { w[j * k + i] = p[i * out + j] } }
        return Linear(dense: w, out: out, in: k)
    }
}

enum CLIPWeightNames {
    /// Reads both towers and the stored log logit scale (nil when the checkpoint has none).
    /// A tensor at fault comes out as CLIPError.badWeights, naming the file and the tensor.
    static func load(_ arch: CLIPArchitecture, from source: any WeightSource, file: String) throws -> CLIPCheckpointWeights {
        do { return try read(arch, from: source, file: file) } catch let e as WeightError {
            throw CLIPError.badWeights(file: e.file, detail: "tensor '\(e.tensor)': \(e.message)")
        }
    }

    private static func read(_ arch: CLIPArchitecture, from source: any WeightSource, file: String) throws -> CLIPCheckpointWeights {
        var r = StrictWeightReader(source, file: file)
        let result: (TextWeights, ImageTowerWeights)
        switch arch.naming {
        case .huggingFace: result = try huggingFace(arch, &r)
        case .openCLIP: result = try openCLIP(arch, &r, textPrefix: "")
        case .openCLIPCustomText: result = try openCLIP(arch, &r, textPrefix: "text.")
        }
        var scale: Float?, bias: Float?
        if r.has("logit_scale") { scale = try r.take("logit_scale", [])[0] }
        if r.has("logit_bias") {
            guard arch.naming != .huggingFace else {
                throw CLIPError.badWeights(file: file, detail: "the checkpoint has a logit_bias, which transformers' CLIPModel does not; a SiglipModel checkpoint needs model_type \"siglip\" in config.json")
            }
            bias = try r.take("logit_bias", [])[0]
        }
        // Buffers that carry no weights are skipped.
        let unused = arch.unusedPrefixes
        try r.finish(ignoring: { name in
            name.hasSuffix("position_ids") || name.hasSuffix("attn_mask") || name.hasSuffix("num_batches_tracked")
                || unused.contains { name.hasPrefix($0) }
        }) { left in
            let shown = left.prefix(8).joined(separator: ", ") + (left.count > 8 ? ", ... (\(left.count) in all)" : "")
            return "is not used by this CLIP architecture (unused tensors: \(shown)); the checkpoint holds parts it does not have"
        }
        return CLIPCheckpointWeights(text: result.0, vision: result.1, logLogitScale: scale, logitBias: bias)
    }

    // MARK: transformers

    private static func huggingFace(_ a: CLIPArchitecture, _ r: inout StrictWeightReader) throws
        -> (TextWeights, ImageTowerWeights) {
        func block(_ p: String, _ t: CLIPTransformerConfig) throws -> BlockWeights { try r.huggingFaceBlock(p, t) }
        let t = a.text.transformer, v = a.vision.transformer, p = a.vision.patchSize
        let text = TextTowerWeights(
            tokenEmbedding: try r.take("text_model.embeddings.token_embedding.weight", [a.text.vocabSize, t.width]),
            positionEmbedding: try r.take("text_model.embeddings.position_embedding.weight", [a.text.contextLength, t.width]),
            blocks: try (0..<t.layers).map { try block("text_model.encoder.layers.\($0)", t) },
            finalNorm: try r.norm("text_model.final_layer_norm", t.width),
            projection: try r.linear("text_projection", out: a.embedDim, in: t.width, bias: false))
        let vision = VisionTowerWeights(
            patchEmbedding: Linear(dense: try r.take("vision_model.embeddings.patch_embedding.weight", [v.width, 3, p, p]),
                                  out: v.width, in: 3 * p * p),
            classEmbedding: try r.take("vision_model.embeddings.class_embedding", [v.width]),
            positionEmbedding: try r.take("vision_model.embeddings.position_embedding.weight", [a.vision.tokens, v.width]),
            preNorm: try r.norm("vision_model.pre_layrnorm", v.width),
            blocks: try (0..<v.layers).map { try block("vision_model.encoder.layers.\($0)", v) },
            postNorm: try r.norm("vision_model.post_layernorm", v.width),
            projection: try r.linear("visual_projection", out: a.embedDim, in: v.width, bias: false))
        return (.clip(text), .vit(vision))
    }

    // MARK: OpenCLIP

    private static func openCLIP(_ a: CLIPArchitecture, _ r: inout StrictWeightReader, textPrefix tp: String) throws
        -> (TextWeights, ImageTowerWeights) {
        func block(_ p: String, _ t: CLIPTransformerConfig) throws -> BlockWeights {
            let w = t.width
            return BlockWeights(norm1: try r.norm(p + ".ln_1", w),
                                qkv: Linear(dense: try r.take(p + ".attn.in_proj_weight", [3 * w, w]), out: 3 * w, in: w,
                                            bias: try r.take(p + ".attn.in_proj_bias", [3 * w])),
                                out: try r.linear(p + ".attn.out_proj", out: w, in: w),
                                norm2: try r.norm(p + ".ln_2", w),
                                fc1: try r.linear(p + ".mlp.c_fc", out: t.mlpWidth, in: w),
                                fc2: try r.linear(p + ".mlp.c_proj", out: w, in: t.mlpWidth),
                                scale1: t.layerScale ? try r.take(p + ".ls_1.gamma", [w]) : nil,
                                scale2: t.layerScale ? try r.take(p + ".ls_2.gamma", [w]) : nil)
        }
        let t = a.text.transformer, v = a.vision.transformer, p = a.vision.patchSize
        let text: TextWeights
        if let hf = a.hfText {
            text = .hf(try HFTextTower.read(hf, embedDim: a.embedDim, &r))
        } else {
            let textProjection: Linear?
            if !a.text.projected {
                textProjection = nil
            } else if a.text.projectionBias {
                textProjection = try r.linear(tp + "text_projection", out: a.embedDim, in: t.width)
            } else {
                textProjection = try r.projectionMatrix(tp + "text_projection", in: t.width, out: a.embedDim)
            }
            let cls = a.text.appendedClassToken
            text = .clip(TextTowerWeights(
                tokenEmbedding: try r.take(tp + "token_embedding.weight", [a.text.vocabSize, t.width]),
                classEmbedding: cls ? try r.take(tp + "cls_emb", [t.width]) : nil,
                positionEmbedding: try r.take(tp + "positional_embedding", [a.text.contextLength + (cls ? 1 : 0), t.width]),
                blocks: try (0..<t.layers).map { try block(tp + "transformer.resblocks.\($0)", t) },
                finalNorm: try r.norm(tp + "ln_final", t.width),
                projection: textProjection))
        }
        if let rc = a.resnet { return (text, .resnet(try ModifiedResNetTower.read(rc, &r))) }
        if let cc = a.convnext { return (text, .convnext(try ConvNeXtTower.read(cc, &r))) }
        if let m = a.mapViT { return (text, .mapViT(try MAPViTTower.readTimm(m, &r, prefix: "visual.trunk."))) }
        if let tv = a.timmViT { return (text, .vit(try VisionTower.readTimm(a.vision, tv, embedDim: a.embedDim, &r))) }
        var attentional: AttentionalPoolWeights?
        if case .attentional(_, let queries) = a.vision.pooling {
            attentional = try AttentionalPoolWeights.read(&r, prefix: "visual.attn_pool.", width: v.width, embed: a.embedDim, queries: queries)
        }
        let pooledWidth = attentional == nil ? v.width : a.embedDim
        let vision = VisionTowerWeights(
            patchEmbedding: Linear(dense: try r.take("visual.conv1.weight", [v.width, 3, p, p]), out: v.width, in: 3 * p * p),
            classEmbedding: try r.take("visual.class_embedding", [v.width]),
            positionEmbedding: try r.take("visual.positional_embedding", [a.vision.tokens, v.width]),
            preNorm: a.vision.preNorm ? try r.norm("visual.ln_pre", v.width) : nil,
            blocks: try (0..<v.layers).map { try block("visual.transformer.resblocks.\($0)", v) },
            postNorm: try r.norm("visual.ln_post", pooledWidth),
            projection: try r.projectionMatrix("visual.proj", in: pooledWidth, out: a.embedDim),
            attentionalPool: attentional)
        return (text, .vit(vision))
    }
}
