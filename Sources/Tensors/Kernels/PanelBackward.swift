// The other product a backward pass needs through a frozen linear layer: dX[m, k] = dY[m, n] · W[n, k]
// (the forward computes x · W^T), with W kept in the engine's panel formats (quantized Int8 panels or
// Float panels), so training never needs a Float copy of a quantized model. Each panel's 16 weight rows
// are rebuilt into a [16][k] buffer exactly as the forward kernels rebuild them, then every block of 6
// rows of dY adds its rank-16 update with k along the SIMD lanes (12 accumulators: 6 rows x 16 k).
// Threads split the rows of dX, so no two threads write the same output.

public enum PanelBackward {
    /// dx[m, k] = dy[m, n] · W[n, k] (or += when `accumulate`), W as Int8 panels.
    public static func inputGradient(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: QuantPanelWeight,
                                     m: Int, accumulate: Bool = false) {
        let groups = w.groups, k = w.k
        run(dx, dy, m: m, n: w.n, k: k, panels: w.panels, accumulate: accumulate) { p, rows in
            // Rebuild [k][16] as the forward does, then transpose into rows [16][k].
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * k) { t in
                let tp = t.baseAddress!
                QuantPanelGEMM.expand(tp, w.data + p * groups * QuantPanelWeight.groupBytes, groups: groups)
                transpose16(tp, into: rows, k: k)
            }
        }
    }

    /// dx[m, k] = dy[m, n] · W[n, k] (or += when `accumulate`), W as Float panels.
    public static func inputGradient(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: PackedWeight,
                                     m: Int, accumulate: Bool = false) {
        let k = w.k
        run(dx, dy, m: m, n: w.n, k: k, panels: w.panels, accumulate: accumulate) { p, rows in
            transpose16(w.data + p * 16 * k, into: rows, k: k)
        }
    }

    /// A panel [k][16] as its 16 rows [16][k].
    @inline(__always)
    static func transpose16(_ panel: UnsafePointer<Float>, into rows: UnsafeMutablePointer<Float>, k: Int) {
        for c in 0..<k {
            let src = panel + c * 16
            for j in 0..<16 { rows[j * k + c] = src[j] }
        }
    }

    /// `panelRows(p, buf)` writes rows 16p ..< 16p + 16 of W into buf [16][k] (rows past n are zero).
    static func run(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, m: Int, n: Int, k: Int, panels: Int,
                    accumulate: Bool, panelRows: (Int, UnsafeMutablePointer<Float>) -> Void) {
        guard m > 0, k > 0 else { return }
        if !accumulate { dx.initialize(repeating: 0, count: m * k) }
        guard n > 0 else { return }
        // Rows of dX split over the threads in multiples of 6; each thread rebuilds every panel once.
        let blocks = (m + 5) / 6
        parallelChunks(blocks, minPerChunk: 2) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * k) { buf in
                let rows = buf.baseAddress!
                let r1 = min(m, range.upperBound * 6)
                for p in 0..<panels {
                    panelRows(p, rows)
                    var r0 = range.lowerBound * 6
                    while r0 < r1 {
                        let mr = min(6, r1 - r0)
                        rankUpdate(dx, dy, rows, n: n, k: k, n0: p * 16, cols: min(16, n - p * 16), r0: r0, mr: mr)
                        r0 += mr
                    }
                }
            }
        }
    }

    /// dx[r0 ..< r0 + mr, :] += dy[r, n0 ..< n0 + cols] · rows[0 ..< cols, :].
    @inline(__always)
    static func rankUpdate(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ rows: UnsafePointer<Float>,
                           n: Int, k: Int, n0: Int, cols: Int, r0: Int, mr: Int) {
        // Rows past mr alias the last valid row; their sums are not stored.
        @inline(__always) func row(_ i: Int) -> Int { r0 + (i < mr ? i : mr - 1) }
        let y0 = dy + row(0) * n + n0, y1 = dy + row(1) * n + n0, y2 = dy + row(2) * n + n0
        let y3 = dy + row(3) * n + n0, y4 = dy + row(4) * n + n0, y5 = dy + row(5) * n + n0
        var c = 0
        while c + 16 <= k {
            var t = Tile6x16()
            for j in 0..<cols {
                let w = rows + j * k + c
                t.add(load8(w), load8(w + 8), y0[j], y1[j], y2[j], y3[j], y4[j], y5[j])
            }
            @inline(__always) func add(_ i: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
                guard i < mr else { return }
                let out = dx + (r0 + i) * k + c
                store8(out, load8(out) + a); store8(out + 8, load8(out + 8) + b)
            }
            add(0, t.a0, t.b0); add(1, t.a1, t.b1); add(2, t.a2, t.b2); add(3, t.a3, t.b3); add(4, t.a4, t.b4); add(5, t.a5, t.b5)
            c += 16
        }
        // k not a multiple of 16 (Float panels allow any k).
        while c < k {
            for i in 0..<mr {
                var s: Float = 0
                for j in 0..<cols { s += dy[(r0 + i) * n + n0 + j] * rows[j * k + c] }
                dx[(r0 + i) * k + c] += s
            }
            c += 1
        }
    }
}
