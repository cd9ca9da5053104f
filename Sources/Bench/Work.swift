// The arithmetic a decoder benchmark cannot avoid, counted from the model's shapes (2 FLOPs per multiply-add),
// so each speed figure can be set against the machine's measured GEMM peak: a time below work / peak is out of
// reach for any implementation on that machine. Only the projections and attention's two products are
// counted (norms, activations, softmax and LoRA's rank-16 side products are well under 2% for SmolLM2 at
// these shapes), and the vocabulary projection only on the rows a task needs: a forward that scores R
// positions needs R rows of it; a backward through frozen weights forms dX only (dY W, as many FLOPs as the
// forward), no weight gradients.
import Llama

enum DecoderWork {
    /// Projection FLOPs of one token through every layer. Every decoder the engine loads has a gated MLP
    /// (SwiGLU or GeGLU): gate, up and down.
    private static func projectionsPerToken(_ c: DecoderConfig) -> Double {
        let h = Double(c.hiddenSize), f = Double(c.intermediateSize)
        let q = Double(c.heads * c.headDim), kv = Double(c.kvHeads * c.headDim)
        return 2 * Double(c.layers) * (h * q + 2 * h * kv + q * h + 3 * h * f)
    }

    /// Attention FLOPs of one query position over one key in every layer: its score and its weighted value
    /// (per head, 2 x headDim multiply-adds).
    private static func attentionPerKey(_ c: DecoderConfig) -> Double { 2 * Double(c.layers) * 2 * Double(c.heads * c.headDim) }

    /// Vocabulary projection FLOPs of one row.
    private static func lmHeadRow(_ c: DecoderConfig) -> Double { 2 * Double(c.hiddenSize) * Double(c.vocabSize) }

    /// Forward FLOPs over sequences of the given lengths (causal: position p attends to p + 1 keys), with the
    /// vocabulary projection on `lmHeadRows` rows.
    static func forward(_ c: DecoderConfig, lengths: [Int], lmHeadRows: Int) -> Double {
        let tokens = Double(lengths.reduce(0, +))
        let pairs = lengths.reduce(0.0) { $0 + Double($1) * Double($1 + 1) / 2 }
        return projectionsPerToken(c) * tokens + attentionPerKey(c) * pairs + lmHeadRow(c) * Double(lmHeadRows)
    }

    /// One training step (forward + dX backward) of `batch` sequences of prompt + response tokens, scoring the response.
    static func trainingStep(_ c: DecoderConfig, batch: Int, prompt: Int, response: Int) -> Double {
        // The training forward drops each sequence's last row (it predicts nothing scored).
        2 * forward(c, lengths: Array(repeating: prompt + response - 1, count: batch), lmHeadRows: batch * response)
    }

    /// Sampling `new` tokens after a `prompt`-token prompt for `batch` sequences: one prefill (vocabulary projection on
    /// its last position), then new - 1 single-token steps over a growing cache.
    static func sampling(_ c: DecoderConfig, batch: Int, prompt: Int, new: Int) -> Double {
        let prefill = forward(c, lengths: Array(repeating: prompt, count: batch), lmHeadRows: batch)
        // Step s (1 ..< new) runs position prompt + s - 1, which attends to prompt + s keys.
        let keys = (1..<max(new, 1)).reduce(0.0) { $0 + Double(prompt + $1) }
        let steps = Double(max(new - 1, 0))
        return prefill + Double(batch) * (steps * (projectionsPerToken(c) + lmHeadRow(c)) + attentionPerKey(c) * keys)
    }

    /// One PPO step as TRL runs it: old log-probs and values (policy) and reference log-probs (adapters off), each a
    /// forward over the batch scoring the responses, then `epochs` training passes over the batch.
    /// The old-policy and reference forwards (or the reference's alone when the sampler recorded the old
    /// log-probs and values), then `epochs` forward + backward passes.
    static func ppoStep(_ c: DecoderConfig, batch: Int, prompt: Int, response: Int, epochs: Int, oldForward: Bool = true) -> Double {
        let step = trainingStep(c, batch: batch, prompt: prompt, response: response)  // = 2 forwards
        return (oldForward ? step : step / 2) + Double(epochs) * step
    }
}

/// "work=... GFLOP achieved=... GFLOP/s" for a bench line.
func workFields(_ flop: Double, seconds: Double) -> String {
    String(format: "work=%.1fGFLOP achieved=%.1fGFLOP/s", flop / 1e9, flop / seconds / 1e9)
}
