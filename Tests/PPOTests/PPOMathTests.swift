// PPO's arithmetic against TRL 0.11.4's own functions (legacy PPOTrainer, the algorithm of TRL 0.7.5) on
// fixed tensors (fixture from scripts/fixtures/ppo_fixtures.py), and the loss's derivatives against finite
// differences of the loss itself.
import Foundation
import XCTest
@testable import PPO

final class PPOLossGradientTests: XCTestCase {
    /// dLoss/dlogprob and dLoss/dvalue against central differences, with ratios on both sides of the clip
    /// range and value predictions inside and outside their clip band.
    func testLossDerivativesMatchFiniteDifferences() throws {
        var seed: UInt64 = 7
        func rnd() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(seed >> 40) / Float(1 << 24) * 2 - 1
        }
        let lengths = [5, 3, 1]
        let old: Ragged = lengths.map { n in (0..<n).map { _ in rnd() - 2 } }
        let lp: Ragged = old.map { $0.map { $0 + rnd() * 0.5 } }  // ratios from ~0.6 to ~1.6
        let oldV: Ragged = lengths.map { n in (0..<n).map { _ in rnd() } }
        let v: Ragged = oldV.map { $0.map { $0 + rnd() * 0.4 } }  // some beyond ±0.2
        let adv: Ragged = lengths.map { n in (0..<n).map { _ in rnd() } }
        let ret: Ragged = lengths.map { n in (0..<n).map { _ in rnd() } }
        let ent: Ragged = lengths.map { n in (0..<n).map { _ in 1 + rnd() } }
        let c = PPOMath.LossConfig(cliprange: 0.2, cliprangeValue: 0.2, vfCoef: 0.1, ratioThreshold: 10)
        let base = try PPOMath.loss(oldLogProbs: old, oldValues: oldV, logProbs: lp, values: v, entropies: ent,
                                    advantages: adv, returns: ret, config: c)
        XCTAssertFalse(base.skipped)
        XCTAssertGreaterThan(base.stats["policy/clipfrac"]!, 0, "some ratios must be clipped for the test to mean anything")
        XCTAssertGreaterThan(base.stats["val/clipfrac"]!, 0)
        let eps: Float = 1e-3
        var checked = 0
        for s in lp.indices {
            for t in lp[s].indices {
                var up = lp, down = lp
                up[s][t] += eps; down[s][t] -= eps
                let fu = try PPOMath.loss(oldLogProbs: old, oldValues: oldV, logProbs: up, values: v, entropies: ent, advantages: adv, returns: ret, config: c).total
                let fd = try PPOMath.loss(oldLogProbs: old, oldValues: oldV, logProbs: down, values: v, entropies: ent, advantages: adv, returns: ret, config: c).total
                XCTAssertEqual(base.dLogProbs[s][t], (fu - fd) / (2 * eps), accuracy: 2e-3, "dL/dlogprob[\(s)][\(t)]")
                var vu = v, vd = v
                vu[s][t] += eps; vd[s][t] -= eps
                let gu = try PPOMath.loss(oldLogProbs: old, oldValues: oldV, logProbs: lp, values: vu, entropies: ent, advantages: adv, returns: ret, config: c).total
                let gd = try PPOMath.loss(oldLogProbs: old, oldValues: oldV, logProbs: lp, values: vd, entropies: ent, advantages: adv, returns: ret, config: c).total
                XCTAssertEqual(base.dValues[s][t], (gu - gd) / (2 * eps), accuracy: 2e-3, "dL/dvalue[\(s)][\(t)]")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 9)
        // Over the ratio threshold the mini-batch is skipped: zero loss, zero gradient.
        let skipped = try PPOMath.loss(oldLogProbs: old, oldValues: oldV, logProbs: lp, values: v, entropies: ent, advantages: adv,
                                       returns: ret, config: PPOMath.LossConfig(ratioThreshold: 0.5))
        XCTAssertTrue(skipped.skipped)
        XCTAssertEqual(skipped.total, 0)
        XCTAssertTrue(skipped.dLogProbs.allSatisfy { $0.allSatisfy { $0 == 0 } })
    }
}

/// The fixture's padded [B, T] tensors with masks that are ones then zeros, as ragged response rows.
struct TRLCase {
    let inputs: [String: Any], outputs: [String: Any], config: [String: Any]
    init(_ name: String) throws {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("trl_pieces.json")
        let all = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let c = (all["cases"] as! [String: Any])[name] as! [String: Any]
        inputs = c["inputs"] as! [String: Any]; outputs = c["outputs"] as! [String: Any]; config = c["config"] as? [String: Any] ?? [:]
    }
    static func floats(_ v: Any?) -> [Float] { (v as! [Any]).map { Float(($0 as! NSNumber).doubleValue) } }
    static func matrix(_ v: Any?) -> [[Float]] { (v as! [Any]).map(floats) }
    func lengths(_ key: String = "mask") -> [Int] {
        (inputs[key] as! [[NSNumber]]).map { row in
            let n = row.filter { $0.intValue != 0 }.count
            precondition(row.prefix(n).allSatisfy { $0.intValue == 1 }, "masks must be ones then zeros")
            return n
        }
    }
    func ragged(_ m: [[Float]], _ lengths: [Int]) -> Ragged { zip(m, lengths).map { Array($0.prefix($1)) } }
    func input(_ k: String, _ l: [Int]) -> Ragged { ragged(Self.matrix(inputs[k]), l) }
    func output(_ k: String, _ l: [Int]) -> Ragged { ragged(Self.matrix(outputs[k]), l) }
    func scalar(_ k: String) -> Float { Float((outputs[k] as! NSNumber).doubleValue) }
}

func assertClose(_ a: Ragged, _ b: Ragged, _ tol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.map(\.count), b.map(\.count), what, file: file, line: line)
    let worst = zip(a.joined(), b.joined()).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst, tol, "\(what): worst relative difference \(worst)", file: file, line: line)
}

final class TRLPiecesTests: XCTestCase {
    let tol: Float = 2e-6

    func testMaskedStatistics() throws {
        let c = try TRLCase("core_masked_stats"), l = c.lengths()
        let v = c.input("values", l)
        XCTAssertEqual(PPOMath.maskedMean(v), c.scalar("masked_mean"), accuracy: 1e-6)
        XCTAssertEqual(try PPOMath.maskedVar(v), c.scalar("masked_var_unbiased"), accuracy: 1e-6)
        XCTAssertEqual(try PPOMath.maskedVar(v, unbiased: false), c.scalar("masked_var_biased"), accuracy: 1e-6)
        assertClose(try PPOMath.maskedWhiten(v), c.output("masked_whiten_shift_mean", l), tol, "whiten")
        assertClose(try PPOMath.maskedWhiten(v, shiftMean: false), c.output("masked_whiten_no_shift_mean", l), tol, "whiten, mean kept")
        XCTAssertThrowsError(try PPOMath.maskedVar([[]]))
    }

    func testKLPenalties() throws {
        let c = try TRLCase("kl_penalty")
        let lp = TRLCase.matrix(c.inputs["logprob"]), ref = TRLCase.matrix(c.inputs["ref_logprob"])
        for kind in [KLPenalty.kl, .abs, .mse] {
            let got = zip(lp, ref).map { zip($0, $1).map { PPOMath.klPenalty(kind, logprob: $0, refLogprob: $1) } }
            assertClose(got, TRLCase.matrix(c.outputs[kind.rawValue]), tol, kind.rawValue)
        }
        let full = (c.inputs["full_logprob"] as! [Any]).map(TRLCase.matrix), fullRef = (c.inputs["full_ref_logprob"] as! [Any]).map(TRLCase.matrix)
        let got = zip(full, fullRef).map { seq, seqRef in
            zip(seq, seqRef).map { a, b in a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { PPOMath.fullKL(ap.baseAddress!, $0.baseAddress!, vocab: a.count) } } }
        }
        assertClose(got, TRLCase.matrix(c.outputs["full"]), 1e-5, "full")
    }

    func testRewards() throws {
        for kind in [KLPenalty.kl, .abs, .mse] {
            let c = try TRLCase("compute_rewards_\(kind.rawValue)"), l = c.lengths("masks")
            let lp = c.input("logprobs", l), ref = c.input("ref_logprobs", l)
            let kls = zip(lp, ref).map { zip($0, $1).map { PPOMath.klPenalty(kind, logprob: $0, refLogprob: $1) } }
            let (r, ns) = PPOMath.rewards(scores: TRLCase.floats(c.inputs["scores"]), kls: kls, klCoef: 0.2)
            assertClose(kls, c.output("kls", l), tol, "\(kind) kls")
            assertClose(r, c.output("rewards", l), tol, "\(kind) rewards")
            assertClose(ns, c.output("non_score_rewards", l), tol, "\(kind) non-score rewards")
        }
    }

    func testAdvantagesAndReturns() throws {
        for (g, lam) in [("1", "0.95"), ("0.9", "0.8")] {
            let c = try TRLCase("compute_advantages_g\(g)_l\(lam)_nowhiten"), l = c.lengths()
            let (a, r) = try PPOMath.advantages(values: c.input("values", l), rewards: c.input("rewards", l),
                                                gamma: Float(g)!, lam: Float(lam)!, whitenRewards: false)
            assertClose(a, c.output("advantages", l), 1e-5, "advantages gamma \(g) lambda \(lam)")
            assertClose(r, c.output("returns", l), tol, "returns gamma \(g) lambda \(lam)")
            // With whitened rewards TRL's padded tail leaks into the shorter sequences (see PPOMath); the
            // full-length sequence 0 has no tail, so its returns agree.
            let w = try TRLCase("compute_advantages_g\(g)_l\(lam)_whiten")
            let (_, rw) = try PPOMath.advantages(values: w.input("values", l), rewards: w.input("rewards", l),
                                                 gamma: Float(g)!, lam: Float(lam)!, whitenRewards: true)
            assertClose([rw[0]], [w.output("returns", l)[0]], 1e-5, "whitened rewards, sequence 0 returns")
        }
    }

    func testLossesAndStats() throws {
        for name in ["loss_normal", "loss_skip_batch"] {
            let c = try TRLCase(name), l = c.lengths()
            let logits = (c.inputs["logits"] as! [Any]).map(TRLCase.matrix)
            // Entropies of the new distribution in Double (TRL's logsumexp - sum softmax * logits).
            let ent: Ragged = zip(logits, l).map { seq, n in
                seq.prefix(n).map { row in
                    let m = Double(row.max()!), z = row.reduce(0.0) { $0 + exp(Double($1) - m) }
                    let lse = m + log(z)
                    return Float(lse - row.reduce(0.0) { $0 + exp(Double($1) - lse) * Double($1) })
                }
            }
            let cfg = PPOMath.LossConfig(cliprange: 0.2, cliprangeValue: 0.2, vfCoef: 0.1,
                                         ratioThreshold: Float((c.config["ratio_threshold"] as! NSNumber).doubleValue))
            let got = try PPOMath.loss(oldLogProbs: c.input("old_logprobs", l), oldValues: c.input("values", l),
                                       logProbs: c.input("logprobs", l), values: c.input("vpreds", l), entropies: ent,
                                       advantages: c.input("advantages", l), returns: c.input("returns", l), config: cfg)
            XCTAssertEqual(got.skipped, c.outputs["skipped"] as! Bool, name)
            XCTAssertEqual(got.policy, c.scalar("pg_loss"), accuracy: 1e-6, name)
            XCTAssertEqual(got.value, c.scalar("vf_loss_scaled"), accuracy: 1e-6, name)
            XCTAssertEqual(got.averageRatio, c.scalar("masked_mean_ratio"), accuracy: 1e-6, name)
            let stats = c.outputs["stats"] as! [String: Any]
            var compared = 0
            for (k, v) in stats {
                guard let want = v as? NSNumber else { continue }  // per-position tensors (advantages, ratio)
                let mine = try XCTUnwrap(got.stats[k], "\(name): no stat \(k)")
                XCTAssertEqual(mine, Float(want.doubleValue), accuracy: 2e-6 * max(1, abs(Float(want.doubleValue))), "\(name): \(k)")
                compared += 1
            }
            XCTAssertEqual(compared, 15, "\(name): scalar stats compared")
            assertClose(got.ratios, c.ragged(TRLCase.matrix(stats["policy/ratio"]), l), tol, "\(name): ratios")
        }
    }

    func testKLControllers() throws {
        let c = try TRLCase("adaptive_kl")
        var ctl = KLController(initial: 0.2, adaptive: true, target: 6, horizon: 10000)
        for (u, want) in zip(c.inputs["updates"] as! [[NSNumber]], TRLCase.floats(c.outputs["values"])) {
            ctl.update(currentKL: u[0].doubleValue, steps: u[1].intValue)
            XCTAssertEqual(Float(ctl.value), want, accuracy: 1e-7 * want)
        }
        var fixed = KLController(initial: 0.2, adaptive: false, target: 6, horizon: 10000)
        for u in (try TRLCase("fixed_kl")).inputs["updates"] as! [[NSNumber]] { fixed.update(currentKL: u[0].doubleValue, steps: u[1].intValue) }
        XCTAssertEqual(fixed.value, 0.2)
    }

    func testRunningMomentsAndScoreScaling() throws {
        let c = try TRLCase("running_moments")
        var rm = RunningMoments()
        for (b, want) in zip(c.inputs["batches"] as! [Any], c.outputs["after_each"] as! [[String: NSNumber]]) {
            let (m, s) = rm.update(TRLCase.floats(b))
            XCTAssertEqual(m, want["returned_mean"]!.floatValue, accuracy: 1e-6)
            XCTAssertEqual(s, want["returned_std"]!.floatValue, accuracy: 1e-6)
            XCTAssertEqual(rm.mean, want["mean"]!.doubleValue, accuracy: 1e-6)
            XCTAssertEqual(rm.std, want["std"]!.doubleValue, accuracy: 1e-6)
            XCTAssertEqual(rm.variance, want["var"]!.doubleValue, accuracy: 1e-6)
            XCTAssertEqual(rm.count, want["count"]!.doubleValue, accuracy: 1e-9)
        }
        for name in ["score_scaling_scale", "score_scaling_norm", "score_scaling_norm_clip", "score_scaling_scale_clip", "score_clip_only"] {
            let s = try TRLCase(name)
            let clip = (s.config["score_clip"] as? NSNumber).map { Float($0.doubleValue) }
            var scaling = ScoreScaling(scale: s.config["use_score_scaling"] as! Bool, normalise: s.config["use_score_norm"] as! Bool, clip: clip)
            for (b, want) in zip(s.inputs["batches"] as! [Any], s.outputs["after_each"] as! [[String: Any]]) {
                let got = scaling.apply(TRLCase.floats(b))
                assertClose([got], [TRLCase.floats(want["scores"])], 2e-6, name)
            }
        }
    }

    func testEarlyStopping() throws {
        let c = try TRLCase("early_stop")
        let kls = TRLCase.floats(c.inputs["policykl"]), on = c.inputs["early_stopping"] as! [Bool], want = c.outputs["early_stop"] as! [Bool]
        for i in kls.indices {
            XCTAssertEqual(PPOMath.earlyStop(policyKL: kls[i], targetKL: 0.1, enabled: on[i]), want[i], "policykl \(kls[i]) enabled \(on[i])")
        }
    }
}
