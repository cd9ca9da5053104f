// The other product a backward pass needs through a frozen linear layer: dX[m, k] = dY[m, n] · W[n, k]
// (the forward computes x · W^T), with W kept in the engine's panel formats (quantized Int8 panels or
// Float panels), so training never needs a Float copy of a quantized model.
//
// The reduction runs over n, which the panels lay along the SIMD lanes: for a 16-k slice (k-group g) of
// every panel, E(p, j) is the 16-lane row W[16p ..< 16p + 16, 16g + j]. Each output dX[r, 16g + j] is a
// 16-lane accumulator of dY[r, 16p + lane] * E(p, j) over the panels, folded by a fixed tree and added
// to dX. Float panels are read in place; Int8 panels are expanded one k-group at a time (exactly as the
// forward rebuilds them) into an L2-resident slice. Panels go in chunks of 64 (each chunk's sum is added
// to dX in order) and rows in slabs that keep their dY chunk in L2. Threads split the rows, so no two
// write the same output; the AVX-512 kernel (TensorsAVX512) and the AVX2 one give the same bits.
import TensorsAVX512

public enum PanelBackward {
    /// Panels per pass: 64 panels (1024 outputs of the forward), a 64 KB expanded slice.
    static let panelChunk = 64

    /// dx[m, k] = dy[m, n] · W[n, k] (or += when `accumulate`), W as Int8 panels.
    public static func inputGradient(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: QuantPanelWeight,
                                     m: Int, accumulate: Bool = false) {
        let groups = w.groups, data = w.data
        drive(dx, dy, m: m, n: w.n, k: w.k, groups: groups, accumulate: accumulate, expands: true) { g, pLo, pHi, buf in
            for p in pLo..<pHi {
                QuantPanelGEMM.expand(buf + (p - pLo) * 256, data + (p * groups + g) * QuantPanelWeight.groupBytes, groups: 1)
            }
            return (UnsafePointer(buf), 256)
        } tail: { p, c, j in
            // One weight of the partial last panel, rebuilt as the forward does (scale, then offset).
            let gp = data + (p * groups + c / 16) * QuantPanelWeight.groupBytes
            let q = gp.load(fromByteOffset: 128 + 16 * (c % 16) + j, as: Int8.self)
            return Float(q) * gp.load(fromByteOffset: 4 * j, as: Float.self) + gp.load(fromByteOffset: 64 + 4 * j, as: Float.self)
        }
    }

    /// dx[m, k] = dy[m, n] · W[n, k] (or += when `accumulate`), W as Float panels.
    public static func inputGradient(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: PackedWeight,
                                     m: Int, accumulate: Bool = false) {
        let k = w.k, data = w.data
        guard k % 16 == 0 else {
            // Slices of 16 k would run past a panel's end: a plain loop for these rare shapes.
            if !accumulate { dx.initialize(repeating: 0, count: m * k) }
            parallelFor(m) { r in
                for c in 0..<k {
                    var s: Float = 0
                    for j in 0..<w.n { s += dy[r * w.n + j] * data[(j / 16) * 16 * k + c * 16 + j % 16] }
                    dx[r * k + c] += s
                }
            }
            return
        }
        drive(dx, dy, m: m, n: w.n, k: k, groups: k / 16, accumulate: accumulate, expands: false) { g, pLo, _, _ in
            (UnsafePointer(data + pLo * 16 * k + g * 256), 16 * k)
        } tail: { p, c, j in data[p * 16 * k + c * 16 + j] }
    }

    /// `slice(g, pLo, pHi, buffer)` gives E for k-group g of panels pLo ..< pHi: (pointer of E(pLo, 0),
    /// panel stride); `weight(p, c, j)` is W[16p + j, c] of the partial last panel, when n % 16 != 0.
    static func drive(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, m: Int, n: Int, k: Int, groups: Int,
                      accumulate: Bool, expands: Bool,
                      slice: (Int, Int, Int, UnsafeMutablePointer<Float>) -> (UnsafePointer<Float>, Int),
                      tail weight: (Int, Int, Int) -> Float) {
        guard m > 0, k > 0 else { return }
        if !accumulate { dx.initialize(repeating: 0, count: m * k) }
        guard n > 0 else { return }
        let full = n / 16, chunkWidth = min(full, panelChunk) * 16
        // Rows per slab: their dY chunk (~192 KB) stays in L2 while every k-group's slice passes over it.
        let slab = max(6, (196608 / max(chunkWidth, 16)) / 6 * 6)
        let blocks = (m + 5) / 6
        parallelChunks(blocks, minPerChunk: 2) { range in
            let rowLo = range.lowerBound * 6, rowHi = min(m, range.upperBound * 6)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: expands ? panelChunk * 256 : 1) { buf in
                var pLo = 0
                while pLo < full {
                    let pHi = min(full, pLo + panelChunk)
                    var s0 = rowLo
                    while s0 < rowHi {
                        let s1 = min(rowHi, s0 + slab)
                        for g in 0..<groups {
                            let (e, stride) = slice(g, pLo, pHi, buf.baseAddress!)
                            groupRows(dx + 16 * g, ldo: k, dy + 16 * pLo, ldy: n, e, panelStride: stride, panels: pHi - pLo,
                                      rowLo: s0, rowHi: s1)
                        }
                        s0 = s1
                    }
                    pLo = pHi
                }
                // The partial last panel's columns, one dot product per output.
                if n % 16 != 0 {
                    let p = full, cols = n - 16 * full
                    for r in rowLo..<rowHi {
                        for c in 0..<k {
                            var s: Float = 0
                            for j in 0..<cols { s += dy[r * n + 16 * p + j] * weight(p, c, j) }
                            dx[r * k + c] += s
                        }
                    }
                }
            }
        }
    }

    /// The AVX2 kernel of `inputGradientGroup512` (2 rows x 2 outputs of 16-lane accumulators, as SIMD8
    /// pairs), with the same bits.
    @inline(__always)
    static func groupRows(_ out: UnsafeMutablePointer<Float>, ldo: Int, _ dy: UnsafePointer<Float>, ldy: Int,
                          _ e: UnsafePointer<Float>, panelStride: Int, panels: Int, rowLo: Int, rowHi: Int) {
        if KernelISA.avx512 {
            inputGradientGroup512(out, ldo: ldo, dy, ldy: ldy, e, panelStride: panelStride, panels: panels, rowLo: rowLo, rowHi: rowHi)
            return
        }
        @inline(__always) func fold(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>) -> Float {
            let v8 = lo + hi
            let v4 = v8.lowHalf + v8.highHalf
            let v2 = v4.lowHalf + v4.highHalf
            return v2[0] + v2[1]
        }
        var r0 = rowLo
        while r0 < rowHi {
            let mr = min(2, rowHi - r0)
            let y0 = dy + r0 * ldy, y1 = dy + (r0 + mr - 1) * ldy
            var j = 0
            while j < 16 {
                var a0l = SIMD8<Float>(), a0h = SIMD8<Float>(), a1l = SIMD8<Float>(), a1h = SIMD8<Float>()
                var b0l = SIMD8<Float>(), b0h = SIMD8<Float>(), b1l = SIMD8<Float>(), b1h = SIMD8<Float>()
                for p in 0..<panels {
                    let w = e + p * panelStride + j * 16
                    let w0l = load8(w), w0h = load8(w + 8), w1l = load8(w + 16), w1h = load8(w + 24)
                    let q = 16 * p
                    let d0l = load8(y0 + q), d0h = load8(y0 + q + 8)
                    a0l.addProduct(d0l, w0l); a0h.addProduct(d0h, w0h); a1l.addProduct(d0l, w1l); a1h.addProduct(d0h, w1h)
                    let d1l = load8(y1 + q), d1h = load8(y1 + q + 8)
                    b0l.addProduct(d1l, w0l); b0h.addProduct(d1h, w0h); b1l.addProduct(d1l, w1l); b1h.addProduct(d1h, w1h)
                }
                let o0 = out + r0 * ldo + j
                o0[0] += fold(a0l, a0h); o0[1] += fold(a1l, a1h)
                if mr == 2 {
                    let o1 = out + (r0 + 1) * ldo + j
                    o1[0] += fold(b0l, b0h); o1[1] += fold(b1l, b1h)
                }
                j += 2
            }
            r0 += mr
        }
    }
}
