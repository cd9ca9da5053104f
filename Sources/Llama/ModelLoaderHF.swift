// Builds a DecoderModel from an HF checkpoint directory (config.json + safetensors). Key names of the HF
// layout live here; loading is strict like the GGUF path.
import Foundation
import Layers
import ModelFiles
import Tensors

extension DecoderModel {
    // MARK: HF checkpoints

    /// Loads config.json and the weights of an HF model directory (safetensors, else pytorch_model.bin).
    public static func load(hfDirectory dir: URL) throws -> DecoderModel {
        let c = try DecoderConfig(configJSON: dir.appendingPathComponent("config.json"))
        let ckpt = try ModelWeights.open(directory: dir).source
        return try load(config: c, weights: ckpt, file: dir.path)
    }

    public static func load(config c: DecoderConfig, weights: any WeightSource, file: String) throws -> DecoderModel {
        var r = StrictWeightReader(weights, file: file)
        // Gemma's RMSNorm multiplies by (1 + w); fold the 1 in once so every family runs x * w.
        func norm(_ name: String, _ n: Int) throws -> [Float] {
            let w = try r.take(name, [n])
            return c.isGemma ? w.map { 1 + $0 } : w
        }
        func linear(_ name: String, out: Int, in n: Int, bias: Bool = false) throws -> Linear {
            try r.linear(name, out: out, in: n, bias: bias)
        }
        let H = c.hiddenSize, hd = c.headDim, I = c.intermediateSize
        let embedding = try linear("model.embed_tokens", out: c.vocabSize, in: H)
        var layers: [DecoderLayerWeights] = []
        for l in 0..<c.layers {
            let p = "model.layers.\(l)."
            let g = c.isGemma
            layers.append(DecoderLayerWeights(
                attnNorm: try norm(p + "input_layernorm.weight", H),
                q: try linear(p + "self_attn.q_proj", out: c.heads * hd, in: H, bias: c.attentionBias),
                k: try linear(p + "self_attn.k_proj", out: c.kvHeads * hd, in: H, bias: c.attentionBias),
                v: try linear(p + "self_attn.v_proj", out: c.kvHeads * hd, in: H, bias: c.attentionBias),
                o: try linear(p + "self_attn.o_proj", out: H, in: c.heads * hd),
                qNorm: g ? try norm(p + "self_attn.q_norm.weight", hd) : nil,
                kNorm: g ? try norm(p + "self_attn.k_norm.weight", hd) : nil,
                postAttnNorm: g ? try norm(p + "post_attention_layernorm.weight", H) : nil,
                ffnNorm: try norm(p + (g ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"), H),
                gate: try linear(p + "mlp.gate_proj", out: I, in: H),
                up: try linear(p + "mlp.up_proj", out: I, in: H),
                down: try linear(p + "mlp.down_proj", out: H, in: I),
                postFfnNorm: g ? try norm(p + "post_feedforward_layernorm.weight", H) : nil))
        }
        let finalNorm = try norm("model.norm.weight", H)
        var output: Linear? = nil
        if !c.tieEmbeddings { output = try linear("lm_head", out: c.vocabSize, in: H) }
        // A tied model's checkpoint may still hold lm_head.weight (a copy of the embedding).
        try r.finish(ignoring: { $0.hasSuffix("rotary_emb.inv_freq") || (c.tieEmbeddings && $0 == "lm_head.weight") }) {
            "is not used by the \(c.architecture.rawValue) engine (\($0.count) unused tensors)"
        }
        return DecoderModel(config: c, embedding: embedding, layers: layers, finalNorm: finalNorm, output: output)
    }
}
