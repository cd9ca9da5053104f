// The training engine against PyTorch autograd + PEFT (fixtures from scripts/fixtures/train_fixtures.py):
// log-probs, entropies, values and the gradient of every LoRA and value-head parameter of a fixed loss,
// on tiny random Llama (GQA, untied) and Gemma 3 (sliding and full layers) checkpoints with LoRA on all
// seven module kinds and non-zero B; and SmolLM2-135M from its GGUF. Also: with adapters off the training
// forward gives the inference forward's bits, and whole-model finite differences with dropout on.
import Foundation
import Layers
import ModelFiles
import Tensors
import XCTest
@testable import Llama

/// A fixture case: base model, adapter, value head, sequences, loss coefficients, expected tensors.
struct TrainingCase {
    let model: DecoderModel
    let adapters: LoRAState
    let sequences: [TrainingSequence]
    let coefLogProb: [Float], coefEntropy: [Float], coefValue: [Float]
    let expected: SafetensorsFile

    init(_ name: String) throws {
        let dir = TestPaths.fixtures.appendingPathComponent("train/\(name)")
        let json = try loadJSON(dir.appendingPathComponent("case.json"))
        model = try DecoderModel.load(hfDirectory: dir.appendingPathComponent(json["base"] as! String).standardizedFileURL)
        adapters = try PEFTAdapter.load(dir.appendingPathComponent("adapter"), model: model.config,
                                        valueHead: dir.appendingPathComponent("value_head.safetensors"))
        let seqs = (json["sequences"] as! [Any]).map(ints), from = ints(json["scored_from"])
        sequences = zip(seqs, from).map { TrainingSequence(tokens: $0, scoredFrom: $1) }
        coefLogProb = (json["coef_logprob"] as! [Any]).flatMap(floats)
        coefEntropy = (json["coef_entropy"] as! [Any]).flatMap(floats)
        coefValue = (json["coef_value"] as! [Any]).flatMap(floats)
        expected = try SafetensorsFile(url: dir.appendingPathComponent("expected.safetensors"))
    }
}

/// max |a - b| / max(1, |b|) over two arrays, with a count check.
func worstRelative(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "sizes \(a.count) and \(b.count) differ")
    return zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
}

final class TrainingTests: XCTestCase {
    /// fp32 on both sides; the reductions run in different orders, so agreement is to a few ulps of O(1) values.
    let outputTolerance: Float = 2e-5
    let gradientTolerance: Float = 1e-4

    func checkAgainstPyTorch(_ name: String) throws {
        // Logits kept for the backward (the default at this size) and recomputed by it.
        for keep in [true, false] { try checkAgainstPyTorch(name, arena: TrainingArena(keptLogitFloats: keep ? 1 << 25 : 0)) }
        // The loss's derivative given to the forward (PPO's way): the lm head's gradient forms there.
        try checkAgainstPyTorch(name, arena: TrainingArena(), fused: true)
    }

    func checkAgainstPyTorch(_ name: String, arena: TrainingArena, fused: Bool = false) throws {
        let c = try TrainingCase(name)
        let cl = c.coefLogProb, ce = c.coefEntropy
        let given: HeadGradient = { i, _, _ in (cl[i], ce[i]) }
        let out = try c.model.trainingForward(c.sequences, adapters: c.adapters, arena: arena, headGradient: fused ? given : nil)
        let lp = worstRelative(out.logProbs, try c.expected.floats("logprobs"))
        let en = worstRelative(out.entropies, try c.expected.floats("entropies"))
        let va = worstRelative(out.values, try c.expected.floats("values"))
        XCTAssertLessThan(lp, outputTolerance, "\(name): log-probs")
        XCTAssertLessThan(en, outputTolerance, "\(name): entropies")
        XCTAssertLessThan(va, outputTolerance, "\(name): values")

        c.adapters.zeroGradients()
        if fused {
            c.model.trainingBackward(arena: arena, adapters: c.adapters, dValues: c.coefValue)
        } else {
            c.model.trainingBackward(arena: arena, adapters: c.adapters, dLogProbs: cl, dEntropies: ce, dValues: c.coefValue)
        }
        var worst: Float = 0, worstName = "", checked = 0
        func check(_ key: String, _ offset: Int, _ count: Int) throws {
            let want = try c.expected.floats("grad." + key)
            let got = Array(UnsafeBufferPointer(start: c.adapters.gradients + offset, count: count))
            let scale = max(want.map(abs).max() ?? 0, 1e-3)
            // Relative to the tensor's largest entry: tiny entries carry only rounding.
            let e = zip(got, want).map { abs($0 - $1) }.max()! / scale
            XCTAssertGreaterThan(want.map(abs).max() ?? 0, 0, "\(key): the expected gradient is zero")
            if e > worst { worst = e; worstName = key }
            checked += 1
        }
        let r = c.adapters.config.rank
        for s in c.adapters.slots {
            try check(PEFTAdapter.tensorName(layer: s.layer, s.target, b: false), s.a, r * s.inFeatures)
            try check(PEFTAdapter.tensorName(layer: s.layer, s.target, b: true), s.b, r * s.outFeatures)
        }
        let H = c.model.config.hiddenSize, vo = c.adapters.valueHeadOffset!
        try check("summary.weight", vo, H)
        try check("summary.bias", vo + H, 1)
        XCTAssertEqual(checked, 2 * c.model.config.layers * 7 + 2)
        XCTAssertLessThan(worst, gradientTolerance, "\(name): worst gradient error \(worst) in \(worstName)")
        print("training parity \(name)\(fused ? " (head gradient in the forward)" : ""): log-probs \(lp), entropies \(en), values \(va), gradients \(worst) (\(worstName)), relative")

        // Full logits of sequence 0 with adapters on and off, through the inference forward.
        let s0 = c.sequences[0].tokens, V = c.model.config.vocabSize
        for (adapters, key) in [(c.adapters, "logits_adapter"), (nil, "logits_noadapter")] as [(LoRAState?, String)] {
            let cache = c.model.makeCache(slots: 1, capacity: s0.count)
            let got = c.model.forward([SequenceChunk(slot: 0, tokens: s0, startPosition: 0)], cache: cache, logits: .all, adapters: adapters)
            let want = try c.expected.floats(key)
            XCTAssertEqual(got.count, s0.count * V)
            XCTAssertLessThan(worstRelative(got, want), outputTolerance, "\(name): \(key)")
        }
    }

    func testLlamaGQAAgainstPyTorchAndPEFT() throws { try checkAgainstPyTorch("llama") }
    func testGemma3AgainstPyTorchAndPEFT() throws { try checkAgainstPyTorch("gemma3") }

    /// With no adapters, and with adapters, the training forward's log-probs and entropies are those of
    /// the inference forward's logits bit for bit: same kernels in the same order.
    func testTrainingForwardHasTheInferenceBits() throws {
        let c = try TrainingCase("gemma3")
        for adapters in [nil, c.adapters] as [LoRAState?] {
            let out = try c.model.trainingForward(c.sequences, adapters: adapters, arena: TrainingArena())
            var lp: [Float] = [], en: [Float] = []
            let V = c.model.config.vocabSize
            for s in c.sequences {
                let cache = c.model.makeCache(slots: 1, capacity: s.tokens.count)
                let logits = c.model.forward([SequenceChunk(slot: 0, tokens: s.tokens, startPosition: 0)], cache: cache, logits: .all, adapters: adapters)
                for t in s.scoredFrom..<(s.tokens.count - 1) {
                    let (a, b) = logits.withUnsafeBufferPointer { Softmax.logProbAndEntropy($0.baseAddress! + t * V, V, target: s.tokens[t + 1]) }
                    lp.append(a); en.append(b)
                }
            }
            XCTAssertEqual(out.logProbs, lp, adapters == nil ? "base" : "adapted")
            XCTAssertEqual(out.entropies, en)
        }
        // A fresh adapter (B = 0) is the base model exactly.
        let fresh = LoRAState(model: c.model.config, config: LoRAConfig(rank: 4, targets: LoRATarget.allCases), valueHead: true, seed: 3)
        let base = try c.model.trainingForward(c.sequences, adapters: nil, arena: TrainingArena())
        let adapted = try c.model.trainingForward(c.sequences, adapters: fresh, arena: TrainingArena())
        XCTAssertEqual(base.logProbs, adapted.logProbs)
        XCTAssertEqual(adapted.values.count, base.logProbs.count)
    }

    /// Central differences of the whole Float model, with LoRA and value-head dropout on (the masks are
    /// fixed by the seed, so the loss is a smooth function of the parameters).
    func testWholeModelFiniteDifferencesWithDropout() throws {
        for name in ["llama", "gemma3"] {
            let c = try TrainingCase(name)
            let drop = DropoutSettings(seed: 42, lora: 0.2, valueHead: 0.3)
            func loss() throws -> Double {
                let o = try c.model.trainingForward(c.sequences, adapters: c.adapters, dropout: drop, arena: TrainingArena())
                var s = 0.0
                for i in o.logProbs.indices {
                    s += Double(c.coefLogProb[i]) * Double(o.logProbs[i]) + Double(c.coefEntropy[i]) * Double(o.entropies[i])
                        + Double(c.coefValue[i]) * Double(o.values[i])
                }
                return s
            }
            let arena = TrainingArena()
            _ = try c.model.trainingForward(c.sequences, adapters: c.adapters, dropout: drop, arena: arena)
            c.adapters.zeroGradients()
            c.model.trainingBackward(arena: arena, adapters: c.adapters, dLogProbs: c.coefLogProb, dEntropies: c.coefEntropy, dValues: c.coefValue)
            // A spread of parameters: entries of A and B of several modules and layers, and the value head.
            var rng = RandomStream(seed: 7)
            var indices: [Int] = []
            for s in c.adapters.slots where s.layer == c.model.config.layers - 1 || s.target == .q || s.target == .down {
                indices.append(s.a + Int(rng.next() % UInt64(c.adapters.config.rank * s.inFeatures)))
                indices.append(s.b + Int(rng.next() % UInt64(c.adapters.config.rank * s.outFeatures)))
            }
            indices.append(c.adapters.valueHeadOffset! + 5)
            indices.append(c.adapters.valueHeadOffset! + c.model.config.hiddenSize)
            var worst = 0.0
            for i in indices {
                // The loss (about 30) is summed from Float outputs, so each evaluation carries ~2e-6 of
                // rounding: small steps drown in it (at 2e-3 a Gemma parameter read -0.0194 against -0.0206
                // at 4e-3 ... 1.6e-2, analytic -0.0205), large ones in curvature (a Llama parameter with
                // analytic -2.3644 read -2.3638 at 1e-3, -2.3515 at 4e-3, -2.3159 at 8e-3). Richardson's
                // extrapolation of the central differences at 4e-3 and 8e-3 cancels the h^2 term.
                let p = c.adapters.parameters[i]
                func central(_ eps: Float) throws -> Double {
                    c.adapters.parameters[i] = p + eps; let up = try loss()
                    c.adapters.parameters[i] = p - eps; let down = try loss()
                    c.adapters.parameters[i] = p
                    return (up - down) / Double(2 * eps)
                }
                let numeric = (4 * (try central(4e-3)) - (try central(8e-3))) / 3
                let analytic = Double(c.adapters.gradients[i])
                let e = abs(numeric - analytic) / (0.02 + abs(numeric))
                worst = max(worst, e)
                XCTAssertLessThan(e, 0.02, "\(name): parameter \(i): analytic \(analytic), numeric \(numeric)")
            }
            print("finite differences \(name) with dropout: \(indices.count) parameters, worst relative error \(worst)")
            // Dropout changes the result: the masks are live.
            let plain = try c.model.trainingForward(c.sequences, adapters: c.adapters, arena: TrainingArena())
            let dropped = try c.model.trainingForward(c.sequences, adapters: c.adapters, dropout: drop, arena: TrainingArena())
            XCTAssertNotEqual(plain.values, dropped.values)
            XCTAssertNotEqual(plain.logProbs, dropped.logProbs)
        }
    }

    /// SmolLM2-135M from the GGUF the setup fetches, LoRA r 4 on q and v saved by PEFT, against PyTorch on
    /// transformers' dequantization of the same file: outputs, and every gradient's norm and two slices.
    func testSmolLM2GradientsMatchPyTorch() throws {
        let modelURL = try TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf")
        let fx = TestPaths.fixtures.appendingPathComponent("train")
        let json = try loadJSON(fx.appendingPathComponent("smollm2.json"))
        let model = try DecoderModel.load(gguf: GGUFFile(url: modelURL))
        // The value head's numbers live in the JSON; hand them to the loader as TRL's file.
        let head = json["value_head"] as! [String: Any]
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-vh-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let w = floats(head["summary.weight"]), b = floats(head["summary.bias"])
        try writeSafetensors(to: tmp, tensors: [("summary.weight", .f32, [1, w.count], w.withUnsafeBytes { Data($0) }),
                                               ("summary.bias", .f32, [1], b.withUnsafeBytes { Data($0) })], metadata: [:])
        let adapters = try PEFTAdapter.load(fx.appendingPathComponent("smollm2_adapter"), model: model.config, valueHead: tmp)
        let seqs = zip((json["sequences"] as! [Any]).map(ints), ints(json["scored_from"])).map { TrainingSequence(tokens: $0, scoredFrom: $1) }
        let cl = (json["coef_logprob"] as! [Any]).flatMap(floats), ce = (json["coef_entropy"] as! [Any]).flatMap(floats)
        let cv = (json["coef_value"] as! [Any]).flatMap(floats)
        let arena = TrainingArena()
        let out = try model.trainingForward(seqs, adapters: adapters, arena: arena)
        // Log-probs of unlikely tokens are large negative numbers: compare relative to max(1, |x|).
        let lp = worstRelative(out.logProbs, floats(json["logprobs"]))
        let en = worstRelative(out.entropies, floats(json["entropies"]))
        let va = worstRelative(out.values, floats(json["values"]))
        XCTAssertLessThan(lp, 2e-4, "log-probs"); XCTAssertLessThan(en, 2e-4, "entropies"); XCTAssertLessThan(va, 2e-4, "values")
        adapters.zeroGradients()
        model.trainingBackward(arena: arena, adapters: adapters, dLogProbs: cl, dEntropies: ce, dValues: cv)
        let grads = json["grads"] as! [String: Any]
        var worstNorm = 0.0, worstSlice: Float = 0, checked = 0
        func check(_ key: String, _ offset: Int, rows: Int, cols: Int) {
            guard let g = grads[key] as? [String: Any] else { XCTFail("fixture lacks \(key)"); return }
            let p = adapters.gradients + offset
            let norm = GradientClipping.norm(p, count: rows * cols), want = (g["l2"] as! NSNumber).doubleValue
            worstNorm = max(worstNorm, abs(norm - want) / want)
            let first = floats(g["row0_first8"]), last = floats(g["last_row_first8"])
            for (j, x) in first.enumerated() { worstSlice = max(worstSlice, abs(p[j] - x) / Float(want)) }
            for (j, x) in last.enumerated() { worstSlice = max(worstSlice, abs(p[(rows - 1) * cols + j] - x) / Float(want)) }
            checked += 1
        }
        let r = adapters.config.rank
        for s in adapters.slots {
            check(PEFTAdapter.tensorName(layer: s.layer, s.target, b: false), s.a, rows: r, cols: s.inFeatures)
            check(PEFTAdapter.tensorName(layer: s.layer, s.target, b: true), s.b, rows: s.outFeatures, cols: r)
        }
        let vo = adapters.valueHeadOffset!
        check("summary.weight", vo, rows: 1, cols: model.config.hiddenSize)
        XCTAssertEqual(checked, 121)
        print("SmolLM2 training parity: log-probs \(lp), entropies \(en), values \(va); gradient norms \(worstNorm), slices \(worstSlice) (relative to the tensor norm)")
        XCTAssertLessThan(worstNorm, 1e-3, "gradient norms")
        XCTAssertLessThan(worstSlice, 1e-3, "gradient slices")
    }

    /// On a quantized model and a batch of more than `Linear.expandRows` rows (Int8 panels expanded to
    /// Float panels, W^T rebuilt or kept for dX), the training forward still has the inference bits, the
    /// gradient is the same with kept and rebuilt transposes, and it equals the one computed sequence by
    /// sequence (small batches: the other kernels).
    func testLongBatchesOnAQuantizedModel() throws {
        let model = try DecoderModel.load(gguf: GGUFFile(url: TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf")))
        var rng = RandomStream(seed: 31)
        let seqs = (0..<7).map { _ in TrainingSequence(tokens: (0..<40).map { _ in 300 + Int(rng.next() % 4000) }, scoredFrom: 11) }
        XCTAssertGreaterThan(seqs.count * 40, Linear.expandRows)
        let adapters = LoRAState(model: model.config, config: LoRAConfig(rank: 4, alpha: 8, dropout: 0, targets: [.q, .v, .down]),
                                 valueHead: true, seed: 2)
        for s in adapters.slots { for j in 0..<(4 * s.outFeatures) { adapters.parameters[s.b + j] = rng.nextGaussian() * 0.02 } }
        let arena = TrainingArena(keptLogitFloats: 0)  // the long batch recomputes its logits, the short ones keep them
        let out = try model.trainingForward(seqs, adapters: adapters, arena: arena)
        let V = model.config.vocabSize
        var lp: [Float] = []
        for s in seqs {
            let cache = model.makeCache(slots: 1, capacity: s.tokens.count)
            let logits = model.forward([SequenceChunk(slot: 0, tokens: s.tokens, startPosition: 0)], cache: cache, logits: .all, adapters: adapters)
            for t in s.scoredFrom..<(s.tokens.count - 1) {
                lp.append(logits.withUnsafeBufferPointer { Softmax.logProbAndEntropy($0.baseAddress! + t * V, V, target: s.tokens[t + 1]).logProb })
            }
        }
        XCTAssertEqual(out.logProbs, lp, "training forward on 280 rows vs inference one sequence at a time")
        let n = out.logProbs.count
        let c1 = (0..<n).map { _ in rng.nextGaussian() }, c2 = (0..<n).map { _ in rng.nextGaussian() }, c3 = (0..<n).map { _ in rng.nextGaussian() }
        adapters.zeroGradients()
        model.trainingBackward(arena: arena, adapters: adapters, dLogProbs: c1, dEntropies: c2, dValues: c3)
        let whole = Array(UnsafeBufferPointer(start: adapters.gradients, count: adapters.count))
        // The arena kept every W^T (they fit its budget); one that may not rebuilds them: same bits.
        XCTAssertFalse(arena.residentT.isEmpty, "the default budget keeps SmolLM2's transposes beside 280 rows")
        let rebuilding = TrainingArena(keptLogitFloats: 0, memoryBudget: 0)
        adapters.zeroGradients()
        _ = try model.trainingForward(seqs, adapters: adapters, arena: rebuilding)
        model.trainingBackward(arena: rebuilding, adapters: adapters, dLogProbs: c1, dEntropies: c2, dValues: c3)
        XCTAssertTrue(rebuilding.residentT.isEmpty)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: adapters.gradients, count: adapters.count)), whole,
                       "kept W^T vs rebuilt at each backward")
        // The loss's derivative given to the forward instead: the same products on the same chunks.
        for fusedArena in [TrainingArena(), TrainingArena(memoryBudget: 0)] {
            adapters.zeroGradients()
            let fusedOut = try model.trainingForward(seqs, adapters: adapters, arena: fusedArena, headGradient: { i, _, _ in (c1[i], c2[i]) })
            XCTAssertEqual(fusedOut, out)
            model.trainingBackward(arena: fusedArena, adapters: adapters, dValues: c3)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: adapters.gradients, count: adapters.count)), whole,
                           "head gradient in the forward vs in the backward (budget \(fusedArena.memoryBudget))")
        }
        adapters.zeroGradients()
        var at = 0
        for s in seqs {
            let small = TrainingArena(), k = s.scoredCount
            _ = try model.trainingForward([s], adapters: adapters, arena: small)
            model.trainingBackward(arena: small, adapters: adapters, dLogProbs: Array(c1[at..<at + k]), dEntropies: Array(c2[at..<at + k]),
                                   dValues: Array(c3[at..<at + k]))
            at += k
        }
        let summed = Array(UnsafeBufferPointer(start: adapters.gradients, count: adapters.count))
        let scale = summed.map(abs).max()!
        XCTAssertGreaterThan(scale, 0)
        let worst = zip(whole, summed).map { abs($0 - $1) }.max()! / scale
        XCTAssertLessThan(worst, 1e-4, "gradient of the long batch vs the sum over sequences")
    }

    func testBadSequencesAreRefused() throws {
        let c = try TrainingCase("llama")
        let arena = TrainingArena()
        XCTAssertThrowsError(try c.model.trainingForward([TrainingSequence(tokens: [], scoredFrom: 0)], adapters: nil, arena: arena))
        XCTAssertThrowsError(try c.model.trainingForward([TrainingSequence(tokens: [1, 2], scoredFrom: 2)], adapters: nil, arena: arena))
        XCTAssertThrowsError(try c.model.trainingForward([TrainingSequence(tokens: [1, 100_000], scoredFrom: 0)], adapters: nil, arena: arena)) {
            XCTAssertTrue("\($0)".contains("100000"), "\($0)")
        }
    }
}
