// Choosing the next token from logits: greedy (temperature 0) or sampling with temperature, top-k and
// top-p in the order transformers applies its logits warpers (temperature, top-k, top-p). Each sequence
// draws from its own seeded stream, so a sequence's tokens do not depend on what else is in the batch.
// The log-probability returned is that of the model's own distribution (log-softmax of the raw logits),
// which is what PPO compares between policy and reference.
import Foundation
import Tensors

public struct SamplingParameters: Sendable, Equatable {
    /// 0 = greedy.
    public var temperature: Float = 1
    /// 0 = off.
    public var topK: Int = 0
    /// 1 = off.
    public var topP: Float = 1
    public var maxNewTokens: Int = 32
    public var stopAtEOS: Bool = true
    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, maxNewTokens: Int = 32, stopAtEOS: Bool = true) {
        self.temperature = temperature; self.topK = topK; self.topP = topP
        self.maxNewTokens = maxNewTokens; self.stopAtEOS = stopAtEOS
    }
}

public enum Sampler {
    /// Picks a token from one row of logits. Returns (token, log p_model(token)).
    public static func sample(_ logits: UnsafePointer<Float>, vocab: Int, params: SamplingParameters,
                              rng: inout RandomStream) -> (token: Int, logprob: Float) {
        let m = Vec.max(logits, vocab)
        // log sum exp of the raw logits, in Double accumulation.
        func logNormaliser() -> Float { m + Float(log(Softmax.sumExpShifted(logits, vocab, shift: m))) }
        if params.temperature <= 0 {
            var best = 0
            for i in 0..<vocab where logits[i] == m { best = i; break }
            return (best, m - logNormaliser())
        }
        if params.topK > 0 && params.topK < vocab || params.topP < 1 {
            return sampleFiltered(logits, vocab: vocab, params: params, lse: logNormaliser(), rng: &rng)
        }
        // Full distribution: unnormalised probabilities exp((x - max) / T) in one vectorised pass.
        let invT = 1 / params.temperature
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: vocab) { buf in
            let p = buf.baseAddress!
            p.update(from: logits, count: vocab)
            let total = Softmax.expShiftedInPlace(p, vocab, shift: m, scale: invT)
            // At temperature 1 that sum is the normaliser itself (same terms, same order): no second pass.
            let lse = invT == 1 ? m + Float(log(total)) : logNormaliser()
            let chosen = draw(p, vocab, total: total, rng: &rng)
            return (chosen, logits[chosen] - lse)
        }
    }

    /// Index i with probability p[i] / total (p unnormalised, summing to `total` in Double).
    @inline(__always)
    static func draw(_ p: UnsafePointer<Float>, _ vocab: Int, total: Double, rng: inout RandomStream) -> Int {
        let u = rng.nextDouble() * total
        var acc = 0.0
        var chosen = vocab - 1
        for i in 0..<vocab {
            acc += Double(p[i])
            if u < acc { chosen = i; break }
        }
        // Never pick a token of probability 0 (possible only when rounding pushes u past the end).
        while chosen > 0 && p[chosen] == 0 { chosen -= 1 }
        return chosen
    }

    /// Top-k and/or top-p: candidates sorted by logit, filtered, then sampled.
    static func sampleFiltered(_ logits: UnsafePointer<Float>, vocab: Int, params: SamplingParameters, lse: Float,
                               rng: inout RandomStream) -> (token: Int, logprob: Float) {
        let invT = 1 / params.temperature
        var cand: [(Int, Float)]
        if params.topK > 0 && params.topK < vocab {
            cand = topK(logits, vocab: vocab, k: params.topK).map { ($0, logits[$0] * invT) }
        } else {
            cand = (0..<vocab).map { ($0, logits[$0] * invT) }
        }
        let m = cand.reduce(-Float.infinity) { max($0, $1.1) }
        var probs = cand.map { Double(expf($0.1 - m)) }
        var total = probs.reduce(0, +)
        if params.topP < 1 {
            // Keep the smallest set of most likely tokens whose mass reaches top_p (the top token always stays).
            // Only tokens at or above a threshold holding that mass can be kept, so only those are sorted
            // (a 152k vocabulary at top_p 0.1 sorts a handful instead of all of them).
            var threshold = 0.5
            while true {
                var mass = 0.0
                for p in probs where p >= threshold { mass += p }
                if mass / total >= Double(params.topP) { break }
                if threshold < 1e-30 { threshold = 0; break }
                threshold *= 0.125
            }
            let order = probs.indices.filter { probs[$0] >= threshold }.sorted { probs[$0] > probs[$1] }
            var cum = 0.0, keep = Set<Int>()
            for i in order {
                keep.insert(i)
                cum += probs[i] / total
                if cum >= Double(params.topP) { break }
            }
            var kept = [Double](repeating: 0, count: probs.count)
            for i in keep { kept[i] = probs[i] }
            probs = kept
            total = probs.reduce(0, +)
        }
        let u = rng.nextDouble() * total
        var acc = 0.0
        var chosen = cand.last!.0
        for (i, p) in probs.enumerated() where p > 0 {
            acc += p
            if u < acc { chosen = cand[i].0; break }
        }
        return (chosen, logits[chosen] - lse)
    }

    /// Indices of the k largest logits (ties: lower index first).
    public static func topK(_ logits: UnsafePointer<Float>, vocab: Int, k: Int) -> [Int] {
        var heap: [(Float, Int)] = []
        heap.reserveCapacity(k + 1)
        for i in 0..<vocab {
            let v = logits[i]
            if heap.count < k { heap.append((v, i)); if heap.count == k { heap.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) } }; continue }
            if v > heap[k - 1].0 {
                var j = k - 1
                heap[j] = (v, i)
                while j > 0 && (heap[j - 1].0 < heap[j].0) { heap.swapAt(j - 1, j); j -= 1 }
            }
        }
        if heap.count < k { heap.sort { $0.0 > $1.0 } }
        return heap.map(\.1)
    }
}
