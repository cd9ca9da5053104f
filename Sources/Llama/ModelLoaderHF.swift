// Builds a DecoderModel from an HF checkpoint directory (config.json + safetensors). Key names of the HF
// layout live here; loading is strict like the GGUF path.
import Foundation
import ModelFiles
import Tensors

extension DecoderModel {
    // MARK: HF checkpoints

    /// Loads config.json and the safetensors weights of an HF model directory.
    public static func load(hfDirectory dir: URL) throws -> DecoderModel {
        let c = try DecoderConfig(configJSON: dir.appendingPathComponent("config.json"))
        let ckpt = try SafetensorsCheckpoint(url: dir)
        return try load(config: c, weights: ckpt, file: dir.path)
    }

    public static func load(config c: DecoderConfig, weights: any WeightSource, file: String) throws -> DecoderModel {
        var used = Set<String>()
        func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let s = weights.shape(of: name) else { throw WeightError(file: file, tensor: name, message: "missing from the checkpoint") }
            guard s == shape else { throw WeightError(file: file, tensor: name, message: "has shape \(s), expected \(shape)") }
            used.insert(name)
            return try weights.floats(name)
        }
        // Gemma's RMSNorm multiplies by (1 + w); fold the 1 in once so every family runs x * w.
        func norm(_ name: String, _ n: Int) throws -> [Float] {
            let w = try tensor(name, [n])
            return c.isGemma ? w.map { 1 + $0 } : w
        }
        func linear(_ name: String, out: Int, in n: Int, bias: Bool = false) throws -> Linear {
            let w = try tensor(name + ".weight", [out, n])
            let b = bias ? try tensor(name + ".bias", [out]) : nil
            return Linear(dense: w, out: out, in: n, bias: b)
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
        if c.tieEmbeddings, weights.shape(of: "lm_head.weight") != nil { used.insert("lm_head.weight") }
        let unused = weights.tensorNames.filter { !used.contains($0) && !$0.hasSuffix("rotary_emb.inv_freq") }
        if let first = unused.first {
            throw WeightError(file: file, tensor: first, message: "is not used by the \(c.architecture.rawValue) engine (\(unused.count) unused tensors)")
        }
        return DecoderModel(config: c, embedding: embedding, layers: layers, finalNorm: finalNorm, output: output)
    }
}
