// Softmax and log-softmax over rows, numerically stable (subtract the max), as torch computes them in fp32.
import Foundation

public enum Softmax {
    /// In place: x[r,:] = softmax(x[r,:]) over the first `n` entries of each row of stride `stride`.
    @inline(__always)
    public static func softmaxRow(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        let m = Vec.max(x, n)
        if m == -.infinity { for i in 0..<n { x[i] = 0 }; return }
        let s = expShiftedInPlace(x, n, shift: m, scale: 1)
        Vec.scale(x, Float(1 / s), n)
    }

    public static func softmax(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        parallelFor(rows, minPerChunk: max(1, 8192 / max(n, 1))) { r in softmaxRow(x + r * n, n) }
    }

    /// log(sum(exp(x))) of one row, in Double accumulation for large vocabularies.
    public static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = Vec.max(x, n)
        if m == -.infinity { return m }
        return m + Float(log(sumExpShifted(x, n, shift: m)))
    }

    /// x[i] = exp((x[i] - shift) * scale); returns the sum (Float lanes, Double across blocks).
    @inline(__always)
    public static func expShiftedInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int, shift: Float, scale: Float) -> Double {
        let sv = SIMD8<Float>(repeating: shift), kv = SIMD8<Float>(repeating: scale)
        var total = 0.0
        var i = 0
        while i + 8 <= n {
            var acc = SIMD8<Float>()
            let end = min(n, i + 1024)
            while i + 8 <= end {
                let e = Vec.exp8((load8(x + i) - sv) * kv)
                store8(x + i, e); acc += e; i += 8
            }
            total += Double(acc.sum())
        }
        while i < n { let e = expf((x[i] - shift) * scale); x[i] = e; total += Double(e); i += 1 }
        return total
    }

    /// sum_i exp((x[i] - shift) * scale), x untouched.
    @inline(__always)
    public static func sumExpShifted(_ x: UnsafePointer<Float>, _ n: Int, shift: Float, scale: Float = 1) -> Double {
        let sv = SIMD8<Float>(repeating: shift), kv = SIMD8<Float>(repeating: scale)
        var total = 0.0
        var i = 0
        while i + 8 <= n {
            var acc = SIMD8<Float>()
            let end = min(n, i + 1024)
            while i + 8 <= end { acc += Vec.exp8((load8(x + i) - sv) * kv); i += 8 }
            total += Double(acc.sum())
        }
        while i < n { total += Double(expf((x[i] - shift) * scale)); i += 1 }
        return total
    }

    /// Of one row of logits z: log softmax(z)[target] and the entropy H = logsumexp(z) - sum softmax(z) z
    /// (TRL's formula), with Double accumulation across blocks.
    public static func logProbAndEntropy(_ z: UnsafePointer<Float>, _ n: Int, target: Int) -> (logProb: Float, entropy: Float) {
        let (lse, mean) = logSumExpAndMean(z, n)
        return (Float(Double(z[target]) - lse), Float(lse - mean))
    }

    /// logsumexp(z) and the softmax-weighted mean of z, in one pass.
    static func logSumExpAndMean(_ z: UnsafePointer<Float>, _ n: Int) -> (Double, Double) {
        let m = Vec.max(z, n)
        let sv = SIMD8<Float>(repeating: m)
        var total = 0.0, weighted = 0.0
        var i = 0
        while i + 8 <= n {
            var acc = SIMD8<Float>(), wacc = SIMD8<Float>()
            let end = min(n, i + 1024)
            while i + 8 <= end {
                let x = load8(z + i), e = Vec.exp8(x - sv)
                acc += e; wacc.addProduct(e, x); i += 8
            }
            total += Double(acc.sum()); weighted += Double(wacc.sum())
        }
        while i < n { let e = expf(z[i] - m); total += Double(e); weighted += Double(e * z[i]); i += 1 }
        return (Double(m) + log(total), weighted / total)
    }

    /// Backward of `logProbAndEntropy`, in place: z (logits) becomes dz = dLogProb (onehot - p) -
    /// dEntropy p (log p + H), with p = softmax(z).
    public static func logProbAndEntropyBackward(_ z: UnsafeMutablePointer<Float>, _ n: Int, target: Int,
                                                 dLogProb: Float, dEntropy: Float) {
        let (lseD, mean) = logSumExpAndMean(z, n)
        let lse = Float(lseD), h = Float(lseD - mean)
        let lv = SIMD8<Float>(repeating: lse), hv = SIMD8<Float>(repeating: h)
        let a = SIMD8<Float>(repeating: dLogProb), b = SIMD8<Float>(repeating: dEntropy)
        var i = 0
        while i + 8 <= n {
            let logp = load8(z + i) - lv, p = Vec.exp8(logp)
            store8(z + i, -(a * p) - b * p * (logp + hv)); i += 8
        }
        while i < n {
            let logp = z[i] - lse, p = expf(logp)
            z[i] = -dLogProb * p - dEntropy * p * (logp + h); i += 1
        }
        z[target] += dLogProb
    }
}
