// One PPO optimisation step as TRL 0.7.5's PPOTrainer.step performs it (the legacy trainer of TRL
// 0.11.4 is the same algorithm), on the engine's training forward/backward: score scaling, old log-probs
// and values of query ++ response with the adapters, reference log-probs with them off, per-token KL
// rewards, GAE, then ppo_epochs passes over shuffled backward batches of mini-batches with gradient
// accumulation, Adam and optional gradient clipping at each accumulation boundary, early stopping, the
// adaptive KL controller, and TRL's statistics under TRL's names.
//
// Dropout: TRL's batched_forward_pass calls model.eval() before every forward, the mini-batch forwards
// that carry gradients included (train_minibatch switches to train() only after its forward), so no
// dropout acts anywhere in a TRL PPO step; the forwards here run without dropout too. The old log-probs
// are recomputed by a forward pass, as TRL does, not taken from the sampler.
import Foundation
import Llama
import Tensors

/// The PPOConfig fields the step reads, named as TRL names them; defaults are TRL's.
public struct PPOConfig: Sendable, Codable, Equatable {
    public var learningRate: Double = 1e-5
    public var batchSize = 256
    public var miniBatchSize = 1
    public var gradientAccumulationSteps = 1
    public var ppoEpochs = 4
    public var initKLCoef: Double = 0.2
    public var adapKLCtrl = true
    public var klPenalty: KLPenalty = .kl
    public var target: Double = 6
    public var horizon: Double = 10000
    public var targetKL: Double = 1
    public var earlyStopping = false
    public var gamma: Float = 1
    public var lam: Float = 0.95
    public var cliprange: Float = 0.2
    public var cliprangeValue: Float = 0.2
    public var vfCoef: Float = 0.1
    public var ratioThreshold: Float = 10
    public var whitenRewards = false
    public var useScoreScaling = false
    public var useScoreNorm = false
    public var scoreClip: Float? = nil
    public var maxGradNorm: Double? = nil
    public var seed: UInt64 = 0

    public init() {}
    public var backwardBatchSize: Int { miniBatchSize * gradientAccumulationSteps }

    /// TRL's checks (batch a multiple of the backward batch), as errors a user can fix.
    public func validate() throws {
        func bad(_ m: String) -> PPOError { .badConfig(m) }
        guard batchSize > 0, miniBatchSize > 0, gradientAccumulationSteps > 0, ppoEpochs > 0 else {
            throw bad("batch size, mini-batch size, gradient accumulation steps and PPO epochs must be positive")
        }
        guard batchSize % backwardBatchSize == 0 else {
            throw bad("batch size \(batchSize) is not a multiple of mini-batch size x gradient accumulation steps = \(backwardBatchSize)")
        }
        guard learningRate > 0, learningRate.isFinite else { throw bad("learning rate must be positive") }
        guard horizon > 0, target > 0 else { throw bad("KL target and horizon must be positive") }
    }
}

public enum PPOError: Error, CustomStringConvertible {
    case badConfig(String)
    case badRollouts(String)
    case nonFinite(String)
    /// `shouldStop` said stop; the state is partly updated (restore a snapshot taken before the step).
    case cancelled
    public var description: String {
        switch self {
        case .badConfig(let m): return "PPO configuration: \(m)"
        case .badRollouts(let m): return "rollouts: \(m)"
        case .nonFinite(let m): return "non-finite value: \(m); the step was not applied"
        case .cancelled: return "the PPO step was interrupted"
        }
    }
}

public struct Rollout: Sendable, Codable, Equatable {
    public var query: [Int]
    public var response: [Int]
    public var score: Float
    /// The policy's log-probabilities and values of the response tokens as the sampler recorded them
    /// (Generator.recordsPolicyOutputs, with the adapters this step starts from): the step's own forward
    /// would recompute exactly these bits, so it takes them instead. Nil: the step runs that forward.
    public var policyLogProbs: [Float]?
    public var values: [Float]?
    public init(query: [Int], response: [Int], score: Float, policyLogProbs: [Float]? = nil, values: [Float]? = nil) {
        self.query = query; self.response = response; self.score = score
        self.policyLogProbs = policyLogProbs; self.values = values
    }
}

/// What persists from step to step: the adapters and value head, Adam's moments, the KL coefficient, the
/// score statistics and the number of mini-batches seen (for the accumulation boundary).
public final class PPOState: @unchecked Sendable {  // reason: owned by one trainer loop
    public let adapters: LoRAState
    public let optimizer: Adam
    public var kl: KLController
    public var scores: ScoreScaling
    public var miniBatchesSeen = 0
    public var steps = 0
    /// Mini-batches of the last step whose loss was zeroed for a mean ratio over ratio_threshold (TRL warns).
    public var lastSkippedMiniBatches = 0
    /// The training buffers (and the frozen layers' kept W^T), reused by every step instead of rebuilt.
    let arena = TrainingArena()

    public init(adapters: LoRAState, config: PPOConfig) {
        self.adapters = adapters
        optimizer = Adam(count: adapters.count, learningRate: config.learningRate)
        kl = KLController(initial: config.initKLCoef, adaptive: config.adapKLCtrl, target: config.target, horizon: config.horizon)
        scores = ScoreScaling(scale: config.useScoreScaling, normalise: config.useScoreNorm, clip: config.scoreClip)
    }

    /// Everything a step changes, by value: what a trainer keeps to undo an interrupted or failed step,
    /// and what a checkpoint holds.
    public struct Snapshot: Sendable {
        public var parameters: [Float]
        public var adamStep: Int
        public var m: [Float], v: [Float]
        public var kl: KLController
        public var scores: ScoreScaling
        public var miniBatchesSeen: Int
        public var steps: Int
        public init(parameters: [Float], adamStep: Int, m: [Float], v: [Float], kl: KLController, scores: ScoreScaling,
                    miniBatchesSeen: Int, steps: Int) {
            self.parameters = parameters; self.adamStep = adamStep; self.m = m; self.v = v; self.kl = kl; self.scores = scores
            self.miniBatchesSeen = miniBatchesSeen; self.steps = steps
        }
    }

    public func snapshot() -> Snapshot {
        let n = adapters.count
        return Snapshot(parameters: Array(UnsafeBufferPointer(start: adapters.parameters, count: n)), adamStep: optimizer.step,
                        m: Array(UnsafeBufferPointer(start: optimizer.m, count: n)),
                        v: Array(UnsafeBufferPointer(start: optimizer.v, count: n)),
                        kl: kl, scores: scores, miniBatchesSeen: miniBatchesSeen, steps: steps)
    }

    /// Puts a snapshot back (gradients cleared). Sizes must match this state's.
    public func restore(_ s: Snapshot) {
        precondition(s.parameters.count == adapters.count, "snapshot of another adapter layout")
        adapters.parameters.update(from: s.parameters, count: adapters.count)
        adapters.zeroGradients()
        optimizer.restore(step: s.adamStep, m: s.m, v: s.v)
        kl = s.kl; scores = s.scores; miniBatchesSeen = s.miniBatchesSeen; steps = s.steps
    }
}

public enum PPOStep {
    /// Runs one step over `rollouts` (batchSize of them). `order[e]` is the permutation of epoch e (TRL
    /// draws it with np.random.permutation); nil draws it from the seed. Returns TRL's scalar stats.
    /// `shouldStop` is asked between forward passes; when it says stop, the step throws
    /// `PPOError.cancelled` with the state partly updated (the caller restores a snapshot).
    public static func run(model: DecoderModel, state: PPOState, rollouts: [Rollout], config c: PPOConfig,
                           order: [[Int]]? = nil, shouldStop: (() -> Bool)? = nil) throws -> [String: Double] {
        try c.validate()
        let bs = c.batchSize
        guard rollouts.count == bs else { throw PPOError.badRollouts("\(rollouts.count) rollouts for a batch size of \(bs)") }
        for (i, r) in rollouts.enumerated() {
            if r.query.isEmpty || r.response.isEmpty { throw PPOError.badRollouts("rollout \(i) has an empty query or response") }
            if !r.score.isFinite { throw PPOError.badRollouts("rollout \(i) has score \(r.score)") }
        }
        if let order {
            guard order.count >= c.ppoEpochs, order.prefix(c.ppoEpochs).allSatisfy({ $0.sorted() == Array(0..<bs) }) else {
                throw PPOError.badRollouts("the mini-batch order needs \(c.ppoEpochs) permutations of 0..<\(bs)")
            }
        }
        let t0 = Date()
        var timing: [String: Double] = [:]
        let scores = state.scores.apply(rollouts.map(\.score))
        let seqs = rollouts.map { TrainingSequence(tokens: $0.query + $0.response, scoredFrom: $0.query.count - 1) }

        // Old log-probs and values with the adapters, reference log-probs without (no dropout, as TRL).
        var t = Date()
        let arena = state.arena
        var oldLp: Ragged = [], oldV: Ragged = [], refLp: Ragged = [], fullKLs: Ragged = []
        let V = model.config.vocabSize
        // Rows are computed independently of their batch-mates, so the chunk size changes no number; 8
        // sequences keep the GEMMs long without a large arena.
        let chunk = max(8, c.miniBatchSize)
        // TRL recomputes the old log-probs and values with a forward in eval mode. The sampler recorded the
        // same numbers when it ran with these adapters and no dropout (Generator.recordsPolicyOutputs: same
        // kernels, rows independent of their batch, the training forward's reductions; GenerationTests pins
        // the bits), so rollouts that carry them skip that forward. "full" KL needs whole distributions.
        let sampled = c.klPenalty != .full && rollouts.allSatisfy {
            $0.policyLogProbs?.count == $0.response.count && $0.values?.count == $0.response.count
        }
        var start = 0
        while start < bs {
            if shouldStop?() == true { throw PPOError.cancelled }
            let part = Array(seqs[start..<min(bs, start + chunk)])
            let pol: TrainingOutputs, ref: TrainingOutputs
            var kl: [Float] = []
            if sampled {
                let rs = rollouts[start..<min(bs, start + chunk)]
                pol = TrainingOutputs(logProbs: rs.flatMap { $0.policyLogProbs! }, entropies: [], values: rs.flatMap { $0.values! })
                ref = try model.trainingForward(part, adapters: nil, arena: arena)
            } else if c.klPenalty == .full {
                // TRL's "full": sum over the vocabulary of p (log p - log p_ref) at each response position,
                // from the whole log-softmax rows of both forwards (the policy's kept until the reference's).
                let rows = part.reduce(0) { $0 + $1.scoredCount }
                let policyRows = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * V))
                let klRows = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows))
                defer { policyRows.deallocate(); klRows.deallocate() }
                nonisolated(unsafe) let pr = policyRows, kr = klRows
                pol = try model.trainingForward(part, adapters: state.adapters, arena: arena) { i, z in
                    let lse = Softmax.logSumExp(z, V), dst = pr + i * V
                    for v in 0..<V { dst[v] = z[v] - lse }
                }
                ref = try model.trainingForward(part, adapters: nil, arena: arena) { i, z in
                    let lse = Softmax.logSumExp(z, V), lp = pr + i * V
                    var sum = 0.0
                    for v in 0..<V { sum += Double(expf(lp[v]) * (lp[v] - (z[v] - lse))) }
                    kr[i] = Float(sum)
                }
                kl = Array(UnsafeBufferPointer(start: klRows, count: rows))
            } else {
                pol = try model.trainingForward(part, adapters: state.adapters, arena: arena)
                ref = try model.trainingForward(part, adapters: nil, arena: arena)
            }
            var o = 0
            for s in part {
                let n = s.scoredCount
                oldLp.append(Array(pol.logProbs[o..<o + n])); oldV.append(Array(pol.values[o..<o + n]))
                refLp.append(Array(ref.logProbs[o..<o + n]))
                if !kl.isEmpty { fullKLs.append(Array(kl[o..<o + n])) }
                o += n
            }
            start += chunk
        }
        timing["time/ppo/forward_pass"] = Date().timeIntervalSince(t)

        t = Date()
        let kls = c.klPenalty == .full ? fullKLs
            : zip(oldLp, refLp).map { zip($0, $1).map { PPOMath.klPenalty(c.klPenalty, logprob: $0, refLogprob: $1) } }
        for (i, (lp, v)) in zip(oldLp, oldV).enumerated() {
            if let bad = lp.first(where: { !$0.isFinite }) { throw PPOError.nonFinite("policy log-probability \(bad) in rollout \(i)") }
            if let bad = v.first(where: { !$0.isFinite }) { throw PPOError.nonFinite("value \(bad) in rollout \(i)") }
        }
        for (i, kl) in kls.enumerated() {
            if let bad = kl.first(where: { !$0.isFinite }) { throw PPOError.nonFinite("KL \(bad) in rollout \(i)") }
        }
        let klCoef = Float(state.kl.value)
        let (rewards, nonScore) = PPOMath.rewards(scores: scores, kls: kls, klCoef: klCoef)
        timing["time/ppo/compute_rewards"] = Date().timeIntervalSince(t)
        t = Date()
        let (advantages, returns) = try PPOMath.advantages(values: oldV, rewards: rewards, gamma: c.gamma, lam: c.lam,
                                                           whitenRewards: c.whitenRewards)
        timing["time/ppo/compute_advantages"] = Date().timeIntervalSince(t)

        // Epochs over shuffled backward batches of mini-batches.
        t = Date()
        var rng = RandomStream(seed: Generator.sequenceSeed(c.seed, state.steps))
        var trainStats: [[String: Float]] = []
        let lossConfig = PPOMath.LossConfig(cliprange: c.cliprange, cliprangeValue: c.cliprangeValue, vfCoef: c.vfCoef,
                                            ratioThreshold: c.ratioThreshold)
        let params = state.adapters.parameters, grads = state.adapters.gradients, count = state.adapters.count
        let accum = Float(c.gradientAccumulationSteps)
        state.lastSkippedMiniBatches = 0
        epochs: for e in 0..<c.ppoEpochs {
            let perm = order?[e] ?? permutation(bs, &rng)
            var lastPolicyKL: Float = 0
            for b0 in stride(from: 0, to: bs, by: c.backwardBatchSize) {
                let backward = Array(perm[b0..<b0 + c.backwardBatchSize])
                for m0 in stride(from: 0, to: c.backwardBatchSize, by: c.miniBatchSize) {
                    if shouldStop?() == true { throw PPOError.cancelled }
                    let idx = Array(backward[m0..<m0 + c.miniBatchSize])
                    // The policy term's derivative needs only each position's own log-prob, so the forward forms
                    // the lm head's gradient as the logits come (the same numbers `loss` gives: its dLogProbs
                    // over the same n, then accelerate's division by the accumulation steps).
                    let flatOld = idx.flatMap { oldLp[$0] }, flatAdv = idx.flatMap { advantages[$0] }
                    let n = Float(flatOld.count), cliprange = c.cliprange
                    let out = try model.trainingForward(idx.map { seqs[$0] }, adapters: state.adapters, arena: arena,
                                                        headGradient: { i, lp, _ in
                        (PPOMath.policyGradient(logProb: lp, oldLogProb: flatOld[i], advantage: flatAdv[i], cliprange: cliprange) / n / accum, 0)
                    })
                    let lp = split(out.logProbs, idx.map { seqs[$0].scoredCount })
                    let v = split(out.values, idx.map { seqs[$0].scoredCount })
                    let en = split(out.entropies, idx.map { seqs[$0].scoredCount })
                    let loss = try PPOMath.loss(oldLogProbs: idx.map { oldLp[$0] }, oldValues: idx.map { oldV[$0] }, logProbs: lp,
                                                values: v, entropies: en, advantages: idx.map { advantages[$0] },
                                                returns: idx.map { returns[$0] }, config: lossConfig)
                    guard loss.total.isFinite else {
                        throw PPOError.nonFinite("PPO loss \(loss.total) in epoch \(e) (policy \(loss.policy), value \(loss.value))")
                    }
                    // accelerate divides the loss by the accumulation steps before backward. A mini-batch over
                    // ratio_threshold has TRL's loss times 0: a zero gradient, so no backward (the optimizer
                    // still steps on what accumulated, as TRL's does).
                    if !loss.skipped {
                        model.trainingBackward(arena: arena, adapters: state.adapters, dValues: loss.dValues.joined().map { $0 / accum })
                    }
                    state.miniBatchesSeen += 1
                    if state.miniBatchesSeen % c.gradientAccumulationSteps == 0 {
                        let norm = GradientClipping.norm(grads, count: count)
                        if !norm.isFinite { throw PPOError.nonFinite("gradient norm \(norm) in epoch \(e)") }
                        if let maxNorm = c.maxGradNorm { GradientClipping.clip(grads, count: count, maxNorm: maxNorm) }
                        state.optimizer.update(params, gradients: grads)
                        state.adapters.zeroGradients()
                    }
                    trainStats.append(loss.stats)
                    if loss.skipped { state.lastSkippedMiniBatches += 1 }
                    lastPolicyKL = loss.stats["policy/policykl"] ?? 0
                }
            }
            if PPOMath.earlyStop(policyKL: lastPolicyKL, targetKL: c.targetKL, enabled: c.earlyStopping) {
                // TRL zeroes the gradients and stops the epochs.
                state.adapters.zeroGradients()
                break epochs
            }
        }
        timing["time/ppo/optimize_step"] = Date().timeIntervalSince(t)

        // TRL's record_step_stats.
        var stats: [String: Double] = [:]
        let klSums = kls.map { $0.reduce(0.0) { $0 + Double($1) } }
        let meanKL = klSums.reduce(0, +) / Double(bs)
        stats["objective/kl"] = meanKL
        stats["objective/kl_coef"] = state.kl.value
        stats["objective/entropy"] = oldLp.map { -$0.reduce(0.0) { $0 + Double($1) } }.reduce(0, +) / Double(bs)
        stats["ppo/mean_non_score_reward"] = Double(PPOMath.maskedMean(nonScore))
        (stats["ppo/mean_scores"], stats["ppo/std_scores"]) = PPOMath.meanAndStd(scores.map { Double($0) })
        (stats["tokens/queries_len_mean"], stats["tokens/queries_len_std"]) = PPOMath.meanAndStd(rollouts.map { Double($0.query.count) })
        (stats["tokens/responses_len_mean"], stats["tokens/responses_len_std"]) = PPOMath.meanAndStd(rollouts.map { Double($0.response.count) })
        for key in trainStats.first?.keys.sorted() ?? [] {
            stats["ppo/" + key] = trainStats.reduce(0.0) { $0 + Double($1[key] ?? 0) } / Double(trainStats.count)
        }
        if let err = stats["ppo/val/error"], let rv = stats["ppo/returns/var"] { stats["ppo/val/var_explained"] = 1 - err / rv }
        stats["ppo/learning_rate"] = state.optimizer.learningRate
        state.kl.update(currentKL: meanKL, steps: bs)
        state.steps += 1
        timing["time/ppo/total"] = Date().timeIntervalSince(t0)
        stats.merge(timing) { a, _ in a }
        return stats
    }

    /// Uniform permutation of 0..<n (Fisher-Yates) from the step's stream.
    public static func permutation(_ n: Int, _ rng: inout RandomStream) -> [Int] {
        var p = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, Int(rng.next() % UInt64(i + 1))) } }
        return p
    }

    static func split(_ flat: [Float], _ counts: [Int]) -> Ragged {
        var out: Ragged = [], o = 0
        for n in counts { out.append(Array(flat[o..<o + n])); o += n }
        return out
    }
}
