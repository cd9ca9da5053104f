// y[m, n] = x[m, k] · W[n, k]^T for a few dozen rows m, reading W row-major as stored. OpenBLAS packs
// the whole weight matrix on every call, which at m = 32 (batched decoding) costs as much as the
// multiply itself; this kernel streams W once instead. Register blocking: 4 weight rows × 2 input rows
// of 8-lane accumulators (8 + 4 + 1 of AVX2's 16 registers; 4 × 3 spilled and ran at half the speed),
// k in steps of 8. Measured (ex2-bench gemm): m=32 n=1536 k=576 158 GFLOP/s vs OpenBLAS 151.

public enum SmallBatchGEMM {
    /// Work splits over the cores by weight rows. Requires k % 8 == 0.
    public static func linear(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, m: Int, n: Int, k: Int) {
        precondition(k % 8 == 0, "SmallBatchGEMM needs k divisible by 8")
        let blocks = (n + 3) / 4
        parallelChunks(blocks, minPerChunk: 16) { range in
            let lo = range.lowerBound * 4, hi = min(n, range.upperBound * 4)
            serial(y + lo, ldy: n, x, w + lo * k, bias: bias.map { $0 + lo }, m: m, n: hi - lo, k: k)
        }
    }

    /// Single-threaded: y[i, j] (row stride ldy) = x[i, :] · W[j, :] + bias[j] for j < n.
    @inline(__always)
    public static func serial(_ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, m: Int, n: Int, k: Int) {
        var n0 = 0
        while n0 < n {
            let nr = min(4, n - n0)
            var r0 = 0
            while r0 < m {
                let mr = min(2, m - r0)
                kernel(y, ldy, x, w, bias, k: k, n0: n0, nr: nr, r0: r0, mr: mr)
                r0 += mr
            }
            n0 += 4
        }
    }

    @inline(__always)
    static func kernel(_ y: UnsafeMutablePointer<Float>, _ ldy: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                       _ bias: UnsafePointer<Float>?, k: Int, n0: Int, nr: Int, r0: Int, mr: Int) {
        // Out-of-range rows/columns alias the last valid one; their results are simply not stored.
        let w0 = w + n0 * k, w1 = w + (n0 + min(1, nr - 1)) * k, w2 = w + (n0 + min(2, nr - 1)) * k, w3 = w + (n0 + min(3, nr - 1)) * k
        let x0 = x + r0 * k, x1 = x + (r0 + min(1, mr - 1)) * k
        var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>(), a03 = SIMD8<Float>()
        var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>(), a13 = SIMD8<Float>()
        var p = 0
        while p < k {
            let b0 = load8(w0 + p), b1 = load8(w1 + p), b2 = load8(w2 + p), b3 = load8(w3 + p)
            let c0 = load8(x0 + p)
            a00.addProduct(c0, b0); a01.addProduct(c0, b1); a02.addProduct(c0, b2); a03.addProduct(c0, b3)
            let c1 = load8(x1 + p)
            a10.addProduct(c1, b0); a11.addProduct(c1, b1); a12.addProduct(c1, b2); a13.addProduct(c1, b3)
            p += 8
        }
        @inline(__always) func put(_ i: Int, _ j: Int, _ v: SIMD8<Float>) {
            if i < mr && j < nr { y[(r0 + i) * ldy + n0 + j] = v.sum() + (bias?[n0 + j] ?? 0) }
        }
        put(0, 0, a00); put(0, 1, a01); put(0, 2, a02); put(0, 3, a03)
        put(1, 0, a10); put(1, 1, a11); put(1, 2, a12); put(1, 3, a13)
    }
}
