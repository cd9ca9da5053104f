// ex2-bench train MODEL.gguf [--batch N] [--prompt-tokens P] [--response-tokens R] [--runs K]: forward +
// backward of a PPO mini-batch (LoRA r 16 on q and v, dropout 0.05, value head with dropout 0.1) over N
// sequences of P + R tokens, scoring the R response positions; the loss mixes log-probs, entropies and
// values as PPO's does (its derivative given to the forward, as PPO gives it; --unfused: to the backward). Prints tokens/s (N (P + R) / seconds, best of K), the forward/backward split, the
// arena's size and the process's peak resident memory. scripts/bench/torch_train.py measures PyTorch +
// PEFT on the same shapes.
import Foundation
import Llama
import ModelFiles
import Tensors

func peakRSSMegabytes() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_maxrss) / 1024  // KiB on Linux
}

func benchTrain(_ path: String) throws {
    let batch = arg("--batch", 4), promptTokens = arg("--prompt-tokens", 12), responseTokens = arg("--response-tokens", 32)
    let runs = arg("--runs", 3)
    // As PPO runs it, the lm head's gradient forms in the forward (its loss is per position); --unfused
    // gives the backward the derivatives after the forward (logits kept or recomputed).
    let unfused = CommandLine.arguments.contains("--unfused")
    let model = try DecoderModel.load(gguf: GGUFFile(url: URL(fileURLWithPath: path)))
    let loadedRSS = peakRSSMegabytes()
    let adapters = LoRAState(model: model.config, config: LoRAConfig(rank: 16, alpha: 32, dropout: 0.05, targets: [.q, .v]),
                             valueHead: true, seed: 1)
    var rng = RandomStream(seed: 5)
    // B non-zero, as after some training (zero B would skip nothing, but keeps the numbers honest).
    for s in adapters.slots { for j in 0..<(16 * s.outFeatures) { adapters.parameters[s.b + j] = rng.nextGaussian() * 0.01 } }
    let L = promptTokens + responseTokens
    let seqs = (0..<batch).map { _ in
        TrainingSequence(tokens: (0..<L).map { _ in 100 + Int(rng.next() % 39_900) }, scoredFrom: promptTokens - 1)
    }
    let S = batch * responseTokens
    let c1 = (0..<S).map { _ in rng.nextGaussian() / Float(S) }, c2 = (0..<S).map { _ in rng.nextGaussian() / Float(S) }
    let c3 = (0..<S).map { _ in rng.nextGaussian() / Float(S) }
    let arena = TrainingArena()
    var best = Double.infinity, bestForward = 0.0, bestBackward = 0.0
    for r in 0...runs {  // run 0 warms up
        let drop = DropoutSettings(seed: UInt64(r), lora: 0.05, valueHead: 0.1)
        adapters.zeroGradients()
        let t0 = now()
        let t1: Double
        if unfused {
            _ = try model.trainingForward(seqs, adapters: adapters, dropout: drop, arena: arena)
            t1 = now()
            model.trainingBackward(arena: arena, adapters: adapters, dLogProbs: c1, dEntropies: c2, dValues: c3)
        } else {
            _ = try model.trainingForward(seqs, adapters: adapters, dropout: drop, arena: arena, headGradient: { i, _, _ in (c1[i], c2[i]) })
            t1 = now()
            model.trainingBackward(arena: arena, adapters: adapters, dValues: c3)
        }
        let t2 = now()
        if r > 0 && t2 - t0 < best { best = t2 - t0; bestForward = t1 - t0; bestBackward = t2 - t1 }
    }
    if CommandLine.arguments.contains("--profile") { profileLinears(model, rows: batch * L) }
    let tps = Double(batch * L) / best
    let work = workFields(DecoderWork.trainingStep(model.config, batch: batch, prompt: promptTokens, response: responseTokens), seconds: best)
    print(String(format: "train model=%@ batch=%d tokens=%d+%d isa=%@ head=%@ best=%.3fs (forward %.3fs, backward %.3fs) tokens/s=%.1f %@ arena=%.0fMB kept_transposes=%@ peak_rss=%.0fMB loaded_rss=%.0fMB",
                 (path as NSString).lastPathComponent, batch, promptTokens, responseTokens, KernelISA.name, unfused ? "unfused" : "fused", best, bestForward,
                 bestBackward, tps, work, Double(arena.reservedBytes) / 1e6, arena.keepsTransposes ? "yes" : "no", peakRSSMegabytes(), loadedRSS))
}

/// GFLOP/s of the forward x W^T and of dX = dY W for each linear of layer 0 at `rows` rows (best of 3).
func profileLinears(_ model: DecoderModel, rows: Int) {
    let w = model.layers[0]
    for (name, lin) in [("q", w.q), ("k", w.k), ("o", w.o), ("gate", w.gate), ("down", w.down), ("lm_head", model.output)] {
        let n = lin.outFeatures, k = lin.inFeatures, m = name == "lm_head" ? min(rows, 1024) : rows
        let x = UnsafeMutablePointer<Float>.allocate(capacity: m * max(n, k)); defer { x.deallocate() }
        let y = UnsafeMutablePointer<Float>.allocate(capacity: m * max(n, k)); defer { y.deallocate() }
        x.initialize(repeating: 0.01, count: m * max(n, k)); y.initialize(repeating: 0.02, count: m * max(n, k))
        var fwd = Double.infinity, bwd = Double.infinity
        for _ in 0..<3 {
            var t = now(); lin.forward(y, x, rows: m); fwd = min(fwd, now() - t)
            t = now(); lin.inputGradient(x, y, rows: m); bwd = min(bwd, now() - t)
        }
        let flop = 2 * Double(m) * Double(n) * Double(k)
        print(String(format: "  %@ [%d x %d] rows %d: forward %.1f GFLOP/s, dX %.1f GFLOP/s", name, n, k, m, flop / fwd / 1e9, flop / bwd / 1e9))
    }
}
