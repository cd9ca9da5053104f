// Comparing runs (the same policy aligned to two VLMs, say): for each attribute kind, the difference in
// the share of informative descriptions that mention it, with a percentile bootstrap confidence
// interval (descriptions resampled with replacement within each run, seeded, so a report is
// reproducible); and the share informative, side by side.
import Foundation

public struct AttributeDifference: Codable, Sendable, Equatable {
    public var kind: String
    public var baseShare: Double?
    public var otherShare: Double?
    /// other - base.
    public var difference: Double?
    public var low: Double?
    public var high: Double?
    enum CodingKeys: String, CodingKey {
        case kind, baseShare = "base_share", otherShare = "other_share", difference, low = "ci_low", high = "ci_high"
    }
}

public struct RunComparison: Codable, Sendable {
    public var base: String
    public var other: String
    public var informativeShareBase: Double?
    public var informativeShareOther: Double?
    public var informativeDifference: Double?
    public var informativeLow: Double?
    public var informativeHigh: Double?
    public var attributes: [AttributeDifference]
    public var level: Double
    public var resamples: Int
    enum CodingKeys: String, CodingKey {
        case base, other, informativeShareBase = "informative_share_base", informativeShareOther = "informative_share_other"
        case informativeDifference = "informative_difference", informativeLow = "informative_ci_low"
        case informativeHigh = "informative_ci_high", attributes, level, resamples
    }
}

public enum Bootstrap {
    /// SplitMix64: small, seeded, the same on every platform.
    struct RNG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// The percentile interval of mean(b) - mean(a) for 0/1 samples a and b (nil if either is empty).
    public static func differenceInterval(_ a: [Bool], _ b: [Bool], resamples: Int = 2000, level: Double = 0.95,
                                          seed: UInt64 = 0) -> (difference: Double, low: Double, high: Double)? {
        guard !a.isEmpty, !b.isEmpty else { return nil }
        func share(_ x: [Bool]) -> Double { Double(x.filter { $0 }.count) / Double(x.count) }
        var rng = RNG(state: seed)
        var diffs: [Double] = []
        diffs.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var sa = 0, sb = 0
            for _ in 0..<a.count where a[rng.below(a.count)] { sa += 1 }
            for _ in 0..<b.count where b[rng.below(b.count)] { sb += 1 }
            diffs.append(Double(sb) / Double(b.count) - Double(sa) / Double(a.count))
        }
        diffs.sort()
        let lo = quantile(diffs, (1 - level) / 2), hi = quantile(diffs, 1 - (1 - level) / 2)
        return (share(b) - share(a), lo, hi)
    }

    /// Linear-interpolated quantile of sorted values (numpy's default).
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let pos = q * Double(sorted.count - 1)
        let i = Int(pos.rounded(.down)), f = pos - Double(i)
        return i + 1 < sorted.count ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i]
    }

    public static func compare(_ a: RunAnalysis, _ b: RunAnalysis, resamples: Int = 2000, level: Double = 0.95,
                               seed: UInt64 = 0) -> RunComparison {
        let judged = { (r: RunAnalysis) in r.descriptions.filter { $0.verdict == "informative" || $0.verdict == "spurious" } }
        let ja = judged(a).map { $0.verdict == "informative" }, jb = judged(b).map { $0.verdict == "informative" }
        let inf = differenceInterval(ja, jb, resamples: resamples, level: level, seed: seed)
        var kinds = a.attributes.map(\.kind)
        for k in b.attributes.map(\.kind) where !kinds.contains(k) { kinds.append(k) }
        let aa = a.descriptions.compactMap(\.attributes), ba = b.descriptions.compactMap(\.attributes)
        let diffs = kinds.enumerated().map { i, k -> AttributeDifference in
            let xa = aa.map { $0.contains(k) }, xb = ba.map { $0.contains(k) }
            let s = xa.isEmpty ? nil : Double(xa.filter { $0 }.count) / Double(xa.count)
            let t = xb.isEmpty ? nil : Double(xb.filter { $0 }.count) / Double(xb.count)
            let ci = differenceInterval(xa, xb, resamples: resamples, level: level, seed: seed &+ UInt64(i + 1))
            return AttributeDifference(kind: k, baseShare: s, otherShare: t, difference: ci?.difference, low: ci?.low, high: ci?.high)
        }
        return RunComparison(base: a.run, other: b.run, informativeShareBase: a.overall.informativeShare,
                             informativeShareOther: b.overall.informativeShare, informativeDifference: inf?.difference,
                             informativeLow: inf?.low, informativeHigh: inf?.high, attributes: diffs, level: level,
                             resamples: resamples)
    }
}
