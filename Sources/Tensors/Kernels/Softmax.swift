// Softmax and log-softmax over rows, numerically stable (subtract the max), as torch computes them in fp32.
import Foundation

public enum Softmax {
    /// In place: x[r,:] = softmax(x[r,:]) over the first `n` entries of each row of stride `stride`.
    @inline(__always)
    public static func softmaxRow(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        let m = Vec.max(x, n)
        if m == -.infinity { for i in 0..<n { x[i] = 0 }; return }
        var s: Float = 0
        for i in 0..<n { let e = expf(x[i] - m); x[i] = e; s += e }
        Vec.scale(x, 1 / s, n)
    }

    public static func softmax(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        parallelFor(rows, minPerChunk: max(1, 8192 / max(n, 1))) { r in softmaxRow(x + r * n, n) }
    }

    /// log(sum(exp(x))) of one row, in Double accumulation for large vocabularies.
    public static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = Vec.max(x, n)
        if m == -.infinity { return m }
        var s: Double = 0
        for i in 0..<n { s += Double(expf(x[i] - m)) }
        return m + Float(log(s))
    }
}
