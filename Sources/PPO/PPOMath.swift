// The arithmetic of TRL 0.7.5's PPOTrainer.step (unchanged in the legacy trainer of 0.11.4), on ragged
// batches: each sequence contributes only its response positions (TRL's mask region: from the last query
// token, which predicts the first response token, to the end), so masked means and variances, GAE and the
// losses see exactly the positions TRL's masks keep. Float arithmetic, sums in Double.
//
// One place differs by construction: TRL whitens rewards (whiten_rewards) over a padded [batch, length]
// tensor, and with right padding the whitened padding (no longer zero) leaks into the last response
// position's advantage through GAE. Ragged batches have no padding, which is what left padding gives in
// TRL too.
import Foundation

/// Per-sequence values over the response positions.
public typealias Ragged = [[Float]]

public enum KLPenalty: String, Sendable, Codable, CaseIterable {
    case kl, abs, mse, full
}

public enum PPOMathError: Error, CustomStringConvertible {
    case emptyMask(String)
    public var description: String {
        switch self {
        case .emptyMask(let what):
            return "\(what): no response positions to average over (a mini-batch of one sequence with a one-token response cannot have an unbiased variance; raise the mini-batch size or gradient accumulation)"
        }
    }
}

public enum PPOMath {
    // MARK: masked statistics (trl.core)

    static func count(_ x: Ragged) -> Int { x.reduce(0) { $0 + $1.count } }

    /// Mean over every position of every sequence (TRL's masked_mean).
    public static func maskedMean(_ x: Ragged) -> Float {
        var s = 0.0
        for row in x { for v in row { s += Double(v) } }
        return Float(s / Double(count(x)))
    }

    /// Variance over every position, with Bessel's correction when `unbiased` (TRL's masked_var).
    public static func maskedVar(_ x: Ragged, unbiased: Bool = true) throws -> Float {
        let n = count(x)
        if n == 0 { throw PPOMathError.emptyMask("masked variance") }
        let m = Double(maskedMean(x))
        var s = 0.0
        for row in x { for v in row { let d = Double(v) - m; s += d * d } }
        var variance = s / Double(n)
        if unbiased { variance *= Double(n) / Double(n - 1) }
        return Float(variance)
    }

    /// (x - mean) / sqrt(var + 1e-8), plus the mean back when not `shiftMean` (TRL's masked_whiten).
    public static func maskedWhiten(_ x: Ragged, shiftMean: Bool = true) throws -> Ragged {
        let m = maskedMean(x), v = try maskedVar(x)
        let r = 1 / (v + 1e-8).squareRoot()
        return x.map { row in row.map { shiftMean ? ($0 - m) * r : ($0 - m) * r + m } }
    }

    /// Mean and sample standard deviation (Bessel-corrected, as torch.std) of a list, in Double.
    public static func meanAndStd(_ xs: [Double]) -> (mean: Double, std: Double) {
        let m = xs.reduce(0, +) / Double(xs.count)
        return (m, (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(max(1, xs.count - 1))).squareRoot())
    }

    // MARK: rewards

    /// Per-position KL estimate between policy and reference. For `.full`, pass the full log-softmax rows
    /// through `fullPolicy`/`fullReference` (sum over the vocabulary of p (log p - log p_ref)).
    public static func klPenalty(_ kind: KLPenalty, logprob: Float, refLogprob: Float) -> Float {
        switch kind {
        case .kl: return logprob - refLogprob
        case .abs: return Swift.abs(logprob - refLogprob)
        case .mse: return 0.5 * (logprob - refLogprob) * (logprob - refLogprob)
        case .full: preconditionFailure("the full KL needs whole distributions: use fullKL")
        }
    }

    /// sum_v exp(lp[v]) (lp[v] - lpRef[v]) over one position's log-softmax rows (F.kl_div(ref, lp, log_target)).
    public static func fullKL(_ lp: UnsafePointer<Float>, _ lpRef: UnsafePointer<Float>, vocab: Int) -> Float {
        var s = 0.0
        for i in 0..<vocab { s += Double(expf(lp[i]) * (lp[i] - lpRef[i])) }
        return Float(s)
    }

    /// TRL's compute_rewards: r_t = -beta kl_t, and the score added on the last response position.
    public static func rewards(scores: [Float], kls: Ragged, klCoef: Float) -> (rewards: Ragged, nonScore: Ragged) {
        precondition(scores.count == kls.count, "one score per sequence")
        var rewards: Ragged = [], nonScore: Ragged = []
        for (s, kl) in zip(scores, kls) {
            let ns = kl.map { -klCoef * $0 }
            var r = ns
            if !r.isEmpty { r[r.count - 1] += s }
            nonScore.append(ns); rewards.append(r)
        }
        return (rewards, nonScore)
    }

    // MARK: advantages

    /// TRL's compute_advantages: GAE backwards over each sequence (the value past the end is 0), returns
    /// = advantages + values, then the advantages whitened over the whole batch.
    public static func advantages(values: Ragged, rewards rIn: Ragged, gamma: Float, lam: Float,
                                  whitenRewards: Bool) throws -> (advantages: Ragged, returns: Ragged) {
        let rewards = whitenRewards ? try maskedWhiten(rIn, shiftMean: false) : rIn
        var adv: Ragged = [], ret: Ragged = []
        for (v, r) in zip(values, rewards) {
            var a = [Float](repeating: 0, count: v.count)
            var last: Float = 0
            for t in stride(from: v.count - 1, through: 0, by: -1) {
                let next: Float = t + 1 < v.count ? v[t + 1] : 0
                let delta = r[t] + gamma * next - v[t]
                last = delta + gamma * lam * last
                a[t] = last
            }
            adv.append(a)
            ret.append(zip(a, v).map { $0 + $1 })
        }
        return (try maskedWhiten(adv), ret)
    }

    // MARK: losses

    public struct LossConfig: Sendable {
        public var cliprange: Float = 0.2
        public var cliprangeValue: Float = 0.2
        public var vfCoef: Float = 0.1
        public var ratioThreshold: Float = 10
        public init(cliprange: Float = 0.2, cliprangeValue: Float = 0.2, vfCoef: Float = 0.1, ratioThreshold: Float = 10) {
            self.cliprange = cliprange; self.cliprangeValue = cliprangeValue; self.vfCoef = vfCoef; self.ratioThreshold = ratioThreshold
        }
    }

    /// A mini-batch's losses, TRL's stats under TRL's names, and the loss's derivatives with respect to
    /// the new log-probs and value predictions (what the backward pass takes).
    public struct Loss: Sendable {
        public var policy: Float
        /// vf_coef * value loss, as TRL returns it.
        public var value: Float
        public var total: Float { policy + value }
        public var skipped: Bool
        public var averageRatio: Float
        public var stats: [String: Float]
        public var ratios: Ragged
        public var dLogProbs: Ragged
        public var dValues: Ragged
    }

    /// d max(a, b) as torch's maximum distributes it: all to the larger, half each on a tie.
    @inline(__always) static func dMax(_ a: Float, _ b: Float, _ da: Float, _ db: Float) -> Float {
        a > b ? da : a < b ? db : 0.5 * (da + db)
    }

    /// d/d log-prob of one position's policy term max(-A rho, -A clamp(rho, 1 - eps, 1 + eps)), rho =
    /// exp(log-prob - old log-prob), before the masked mean's 1 / n: what `loss` takes for its dLogProbs, and
    /// what a forward that forms the lm head's gradient on the fly takes before the loss exists.
    @inline(__always) public static func policyGradient(logProb: Float, oldLogProb: Float, advantage A: Float, cliprange: Float) -> Float {
        let rho = expf(logProb - oldLogProb)
        let clamped = min(max(rho, 1 - cliprange), 1 + cliprange)
        let inside: Float = rho >= 1 - cliprange && rho <= 1 + cliprange ? 1 : 0
        return dMax(-A * rho, -A * clamped, -A * rho, -A * rho * inside)
    }

    /// TRL's PPOTrainer.loss on one mini-batch. `entropies` are the per-position entropies of the new
    /// distribution (logged only; TRL adds no entropy bonus).
    public static func loss(oldLogProbs: Ragged, oldValues: Ragged, logProbs: Ragged, values vpreds: Ragged,
                            entropies: Ragged, advantages: Ragged, returns: Ragged, config c: LossConfig) throws -> Loss {
        let n = Float(count(logProbs))
        if n == 0 { throw PPOMathError.emptyMask("PPO loss") }
        var pgSum = 0.0, vfSum = 0.0, pgClip = 0.0, vfClip = 0.0
        var ratios: Ragged = [], dLp: Ragged = [], dV: Ragged = []
        for s in logProbs.indices {
            var rr: [Float] = [], gl: [Float] = [], gv: [Float] = []
            for t in logProbs[s].indices {
                // Value: clip_by_value = max(min(v, old + eps), old - eps), each with torch's tie rule.
                let v = vpreds[s][t], old = oldValues[s][t], R = returns[s][t]
                let hi = old + c.cliprangeValue, lo = old - c.cliprangeValue
                let mn = min(v, hi), dmn: Float = v < hi ? 1 : v > hi ? 0 : 0.5
                let vclip = max(mn, lo), dvclip = dmn * (mn > lo ? 1 : mn < lo ? 0 : 0.5)
                let vf1 = (v - R) * (v - R), vf2 = (vclip - R) * (vclip - R)
                vfSum += Double(max(vf1, vf2))
                if vf2 > vf1 { vfClip += 1 }
                let dvf = dMax(vf1, vf2, 2 * (v - R), 2 * (vclip - R) * dvclip)
                // Policy: max(-A rho, -A clamp(rho, 1 - eps, 1 + eps)).
                let rho = expf(logProbs[s][t] - oldLogProbs[s][t]), A = advantages[s][t]
                let clamped = min(max(rho, 1 - c.cliprange), 1 + c.cliprange)
                let pg1 = -A * rho, pg2 = -A * clamped
                pgSum += Double(max(pg1, pg2))
                if pg2 > pg1 { pgClip += 1 }
                rr.append(rho)
                gl.append(policyGradient(logProb: logProbs[s][t], oldLogProb: oldLogProbs[s][t], advantage: A, cliprange: c.cliprange) / n)
                gv.append(c.vfCoef * 0.5 * dvf / n)
            }
            ratios.append(rr); dLp.append(gl); dV.append(gv)
        }
        var pgLoss = Float(pgSum / Double(n)), vfLoss = 0.5 * Float(vfSum / Double(n))
        let avgRatio = maskedMean(ratios)
        var total = pgLoss + c.vfCoef * vfLoss
        let skipped = avgRatio > c.ratioThreshold
        if skipped {
            pgLoss *= 0; vfLoss *= 0; total *= 0
            dLp = dLp.map { $0.map { _ in 0 } }; dV = dV.map { $0.map { _ in 0 } }
        }
        var approx = 0.0, pkl = 0.0, vErr = 0.0
        for s in logProbs.indices {
            for t in logProbs[s].indices {
                let d = Double(logProbs[s][t] - oldLogProbs[s][t])
                approx += d * d; pkl -= d
                let e = Double(vpreds[s][t] - returns[s][t]); vErr += e * e
            }
        }
        let N = Double(n)
        let stats: [String: Float] = [
            "loss/policy": pgLoss, "loss/value": vfLoss, "loss/total": total,
            "policy/entropy": maskedMean(entropies),
            "policy/approxkl": Float(0.5 * approx / N), "policy/policykl": Float(pkl / N),
            "policy/clipfrac": Float(pgClip / N), "policy/advantages_mean": maskedMean(advantages),
            "returns/mean": maskedMean(returns), "returns/var": try maskedVar(returns),
            "val/vpred": maskedMean(vpreds), "val/error": Float(vErr / N), "val/clipfrac": Float(vfClip / N),
            "val/mean": maskedMean(oldValues), "val/var": try maskedVar(oldValues),
        ]
        return Loss(policy: pgLoss, value: c.vfCoef * vfLoss, skipped: skipped, averageRatio: avgRatio, stats: stats,
                    ratios: ratios, dLogProbs: dLp, dValues: dV)
    }
}

extension PPOMath {
    /// TRL's early stopping (checked once per PPO epoch on the last mini-batch's policy KL): stop when
    /// it exceeds 1.5 target_kl, compared in Float as TRL compares a float32 tensor with a Python float.
    public static func earlyStop(policyKL: Float, targetKL: Double, enabled: Bool) -> Bool {
        enabled && policyKL > Float(1.5 * targetKL)
    }
}

// MARK: - controllers and running statistics

/// The KL coefficient beta: adaptive (Ziegler et al., as TRL's AdaptiveKLController) or fixed.
public struct KLController: Sendable, Codable, Equatable {
    public var value: Double
    public var adaptive: Bool
    public var target: Double
    public var horizon: Double

    public init(initial: Double, adaptive: Bool, target: Double, horizon: Double) {
        value = initial; self.adaptive = adaptive; self.target = target; self.horizon = horizon
    }

    /// beta *= 1 + clip(KL / target - 1, -0.2, 0.2) n / horizon (the adaptive controller only).
    public mutating func update(currentKL: Double, steps n: Int) {
        guard adaptive else { return }
        let e = min(max(currentKL / target - 1, -0.2), 0.2)
        value *= 1 + e * Double(n) / horizon
    }
}

/// TRL's RunningMoments: running mean and standard deviation of the scores (Chan's parallel update).
public struct RunningMoments: Sendable, Codable, Equatable {
    public var mean: Double = 0
    public var std: Double = 1
    public var variance: Double = 1
    public var count: Double = 1e-24

    public init() {}

    /// Folds in a batch; returns the batch's own mean and (unbiased) standard deviation, as TRL does.
    @discardableResult
    public mutating func update(_ xs: [Float]) -> (mean: Float, std: Float) {
        let n = Double(xs.count)
        // torch.var_mean(unbiased=False) in float32.
        let m = Float(xs.reduce(0.0) { $0 + Double($1) } / n)
        let v = Float(xs.reduce(0.0) { let d = Double($1) - Double(m); return $0 + d * d } / n)
        let delta = Double(m) - mean
        let total = count + n
        let newSum = Double(v) * n
        let oldSum = variance * count + delta * delta * count * n / total
        mean += delta * n / total
        let newVar = (oldSum + newSum) / total
        std = Double(Float(newVar * total / (total - 1)).squareRoot())
        variance = newVar
        count = total
        return (m, Float(Double(v) * n / (n - 1)).squareRoot())
    }
}

/// Score scaling, normalisation and clipping as PPOTrainer.step applies them before anything else.
public struct ScoreScaling: Sendable, Codable, Equatable {
    public var scale: Bool
    public var normalise: Bool
    public var clip: Float?
    public var running = RunningMoments()

    public init(scale: Bool, normalise: Bool, clip: Float?) { self.scale = scale; self.normalise = normalise; self.clip = clip }

    public mutating func apply(_ scores: [Float]) -> [Float] {
        var s = scores
        if scale {
            running.update(s)
            let factor = Float(running.std) + Float.ulpOfOne
            s = normalise ? s.map { ($0 - Float(running.mean)) / factor } : s.map { $0 / factor }
        }
        if let c = clip { s = s.map { min(max($0, -c), c) } }
        return s
    }
}
