// ex2-bench: speed figures for the engine, printed as ratios to a reference measured in the same run
// (scripts/bench.sh adds the PyTorch figures when torch is installed).
//   ex2-bench generate MODEL.gguf [--batch B] [--new N] [--prompt-tokens P] [--runs R] [--lora RANK]
//   ex2-bench train MODEL.gguf [--batch N] [--prompt-tokens P] [--response-tokens R] [--runs K]
//   ex2-bench ppo MODEL.gguf [--batch B] [--mini-batch M] [--accumulation A] [--epochs E]
//   ex2-bench gemm
//   ex2-bench clip
//   ex2-bench vlm DIR
import Foundation
import Llama
import ModelFiles
import Tensors

func arg(_ name: String, _ def: Int) -> Int {
    let a = CommandLine.arguments
    if let i = a.firstIndex(of: name), i + 1 < a.count, let v = Int(a[i + 1]) { return v }
    return def
}

func now() -> Double { Date().timeIntervalSince1970 }

func benchGenerate(_ path: String) throws {
    let batch = arg("--batch", 1), new = arg("--new", 32), promptTokens = arg("--prompt-tokens", 12), runs = arg("--runs", 3)
    let t0 = now()
    let gguf = try GGUFFile(url: URL(fileURLWithPath: path))
    let model = try DecoderModel.load(gguf: gguf)
    let load = now() - t0
    var rng = RandomStream(seed: 7)
    // Prompts of ~promptTokens ordinary token ids (ids 300..<5000 are plain word pieces in both vocabularies).
    let prompts = (0..<batch).map { _ in (0..<promptTokens).map { _ in 300 + Int(rng.next() % 4700) } }
    // --lora R: sample through a LoRA adapter of rank R on q_proj and v_proj (B non-zero), as
    // `ex2 describe --adapter` does after training.
    let rank = arg("--lora", 0)
    var adapters: LoRAState? = nil
    if rank > 0 {
        let a = LoRAState(model: model.config, config: LoRAConfig(rank: rank, alpha: Float(2 * rank), dropout: 0, targets: [.q, .v]),
                          valueHead: false, seed: 3)
        for s in a.slots { for j in 0..<(rank * s.outFeatures) { a.parameters[s.b + j] = rng.nextGaussian() * 0.01 } }
        adapters = a
    }
    let gen = Generator(model: model, stopTokens: [], adapters: adapters)
    let params = SamplingParameters(temperature: 1, maxNewTokens: new, stopAtEOS: false)
    _ = gen.generate(prompts: Array(prompts.prefix(1)), seeds: [1], params: SamplingParameters(temperature: 1, maxNewTokens: 2))
    var best = Double.infinity
    for r in 0..<runs {
        let t = now()
        let out = gen.generate(prompts: prompts, seeds: prompts.indices.map { UInt64($0 + r) }, params: params, batchSize: batch)
        precondition(out.allSatisfy { $0.tokens.count == new })
        best = min(best, now() - t)
    }
    // Split: one prefill of the whole batch, then single-token decode steps.
    let cache = model.makeCache(slots: batch, capacity: promptTokens + 8)
    let ws = Workspace()
    var t = now()
    _ = model.forward(prompts.enumerated().map { SequenceChunk(slot: $0.offset, tokens: $0.element, startPosition: 0) }, cache: cache, workspace: ws)
    let prefill = now() - t
    t = now()
    for s in 0..<4 {
        _ = model.forward((0..<batch).map { SequenceChunk(slot: $0, tokens: [400 + s], startPosition: promptTokens + s) }, cache: cache, workspace: ws)
    }
    let step = (now() - t) / 4
    print(String(format: "  prefill %.1f ms, decode step %.1f ms (forward only, no sampling)", prefill * 1e3, step * 1e3))
    let tps = Double(batch * new) / best
    let work = workFields(DecoderWork.sampling(model.config, batch: batch, prompt: promptTokens, new: new), seconds: best)
    print(String(format: "generate model=%@ batch=%d new=%d prompt=%d lora=%d isa=%@ load=%.2fs best=%.3fs tokens/s=%.1f %@",
                 (path as NSString).lastPathComponent, batch, new, promptTokens, rank, KernelISA.name, load, best, tps, work))
}

func benchGEMM(_ custom: [String]) {
    enum Kernel: String {
        case openBLAS = "OpenBLAS", packed = "Float panels", int8 = "Int8 panels (engine)", smallBatch = "small-batch"
        case int8Backward = "dX = dY W, Int8 panels"
    }
    /// GFLOP/s of y[m, n] = x[m, k] W^T with one kernel, best of five.
    func gflops(_ kernel: Kernel, m: Int, n: Int, k: Int) -> Double {
        let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: n * k)
        var c = [Float](repeating: 0, count: m * n)
        let packed = kernel == .packed ? PackedWeight(n: n, k: k) { _, dst in for j in 0..<k { dst[j] = 0.25 } } : nil
        let int8 = kernel == .int8 || kernel == .int8Backward ? QuantPanelWeight(n: n, k: k) { _, q, s, o in
            for j in 0..<k { q[j] = Int8(j % 7) - 3 }
            for g in 0..<(k / 16) { s[g] = 0.01; o[g] = 0.002 }
        } : nil
        var best = Double.infinity
        for _ in 0..<5 {
            let t = now()
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                switch kernel {
                case .openBLAS: BLAS.linear(cp.baseAddress!, ap.baseAddress!, bp.baseAddress!, bias: nil, m: m, n: n, k: k)
                case .packed: PackedGEMM.linear(cp.baseAddress!, ap.baseAddress!, packed!, bias: nil, m: m)
                case .int8: QuantPanelGEMM.linear(cp.baseAddress!, ap.baseAddress!, int8!, bias: nil, m: m)
                case .smallBatch: SmallBatchGEMM.linear(cp.baseAddress!, ap.baseAddress!, bp.baseAddress!, bias: nil, m: m, n: n, k: k)
                case .int8Backward:  // dY [m, n] is c's storage, dX [m, k] is a's (contents do not matter here)
                    PanelBackward.inputGradient(UnsafeMutablePointer(mutating: ap.baseAddress!), cp.baseAddress!, int8!, m: m)
                }
            } } }
            best = min(best, now() - t)
        }
        return 2 * Double(m * n * k) / best / 1e9
    }
    // SmolLM2 shapes at a batch-32 x 12-token prefill (384 rows), at batch-32 decoding (32 rows) and at
    // batch 1, and CLIP ViT-B/32's MLP. The machine's speed drifts (shared hosts), so both sides are
    // measured in three alternating rounds and each keeps its best. Within a round our kernels run first
    // and OpenBLAS after a pause: its idle threads spin for a while after each call and would slow
    // whatever runs next.
    let given: [(Int, Int, Int, String)] = custom.compactMap { arg in
        let v = arg.split(separator: ",").compactMap { Int($0) }
        return v.count == 3 ? (v[0], v[1], v[2], "given") : nil
    }
    let shapes = !given.isEmpty ? given : [(384, 576, 576, "q/o proj prefill"), (384, 1536, 576, "gate/up prefill"), (384, 576, 1536, "down prefill"),
                  (32, 1536, 576, "gate/up decode b32"), (32, 49152, 576, "lm head decode b32"),
                  (1, 1536, 576, "gate/up decode b1"), (1600, 3072, 768, "CLIP B/32 mlp b32")]
    let kernels = shapes.map { (m, _, _, _) in
        [Kernel.int8, .packed, .smallBatch, .int8Backward].filter { ($0 != .smallBatch || m <= 64) && ($0 != .int8Backward || m >= 64) }
    }
    var ours = kernels.map { $0.map { _ in 0.0 } }, theirs = shapes.map { _ in 0.0 }, peak = 0.0
    for _ in 0..<3 {
        for (i, (m, n, k, _)) in shapes.enumerated() {
            for (j, kernel) in kernels[i].enumerated() { ours[i][j] = max(ours[i][j], gflops(kernel, m: m, n: n, k: k)) }
        }
        Thread.sleep(forTimeInterval: 0.3)
        peak = max(peak, gflops(.openBLAS, m: 2048, n: 2048, k: 2048))
        for (i, (m, n, k, _)) in shapes.enumerated() { theirs[i] = max(theirs[i], gflops(.openBLAS, m: m, n: n, k: k)) }
        Thread.sleep(forTimeInterval: 0.3)
    }
    print(String(format: "gemm peak (OpenBLAS 2048^3, best of 3 rounds, core %@): %.1f GFLOP/s; engine kernels on %@",
                 BLAS.coreName, peak, KernelISA.name))
    for (i, (m, n, k, what)) in shapes.enumerated() {
        print(String(format: "gemm %-20@ m=%5d n=%5d k=%5d: OpenBLAS %6.1f GFLOP/s = %3.0f%% of peak", what, m, n, k,
                     theirs[i], 100 * theirs[i] / peak))
        for (kernel, v) in zip(kernels[i], ours[i]) {
            print(String(format: "     %-22@ %6.1f GFLOP/s = %3.0f%% of peak", kernel.rawValue, v, 100 * v / peak))
        }
    }
}

func benchMatvec(_ path: String) throws {
    let gguf = try GGUFFile(url: URL(fileURLWithPath: path))
    let model = try DecoderModel.load(gguf: gguf)
    for (name, lin) in [("ffn_up", model.layers[0].up), ("ffn_down", model.layers[0].down), ("output", model.output)] {
        let x = [Float](repeating: 0.01, count: lin.inFeatures)
        var y = [Float](repeating: 0, count: lin.outFeatures * 4)
        for rows in [1, 2] {
            var best = Double.infinity
            for _ in 0..<20 {
                let t = now()
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                    let xx = UnsafeMutablePointer<Float>.allocate(capacity: lin.inFeatures * rows)
                    for r in 0..<rows { (xx + r * lin.inFeatures).update(from: xp.baseAddress!, count: lin.inFeatures) }
                    lin.forward(yp.baseAddress!, xx, rows: rows)
                    xx.deallocate()
                } }
                best = min(best, now() - t)
            }
            let elems = Double(lin.inFeatures * lin.outFeatures)
            print(String(format: "matvec %-8@ %@ rows=%d %.3f ms  %.2f Gweights/s", name, lin.quantized?.type.name ?? "-", rows, best * 1e3, elems / best / 1e9))
        }
    }
}

let args = CommandLine.arguments
switch args.count > 1 ? args[1] : "" {
case "generate" where args.count > 2: try benchGenerate(args[2])
case "train" where args.count > 2: try benchTrain(args[2])
case "ppo" where args.count > 2: try benchPPO(args[2])
case "gemm": benchGEMM(Array(args.dropFirst(2)))
case "clip": try benchCLIP()
case "vlm" where args.count > 2: try benchVLM(args[2])
case "matvec" where args.count > 2: try benchMatvec(args[2])
default:
    print("usage: ex2-bench generate MODEL.gguf [--batch B] [--new N] [--prompt-tokens P] [--runs R] [--lora RANK] | ex2-bench train MODEL.gguf [--batch N] [--profile] | ex2-bench gemm [M,N,K ...] | ex2-bench clip | ex2-bench vlm DIR [--batch B] [--text-batch T] [--length L]")
    exit(2)
}
