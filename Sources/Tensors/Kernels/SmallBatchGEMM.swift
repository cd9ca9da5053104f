// y[m, n] = x[m, k] · W[n, k]^T for a few dozen rows m, reading W row-major as stored. OpenBLAS packs
// the whole weight matrix on every call, which at m = 32 (batched decoding) costs as much as the
// multiply itself; this kernel streams W once instead. Register blocking: 4 weight rows × 2 input rows
// of 8-lane accumulators (8 + 4 + 1 of AVX2's 16 registers; 4 × 3 spilled and ran at half the speed),
// k in steps of 8. Measured (ex2-bench gemm): m=32 n=1536 k=576 158 GFLOP/s vs OpenBLAS 151.

import TensorsAVX512

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

/// A weight W [n, k] packed for `PackedGEMM`: column panels of 16 outputs, each panel [k][16]
/// contiguous (n padded to a multiple of 16 with zeros), so the kernel walks one 64-byte line per k
/// instead of striding across pages.
public final class PackedWeight: @unchecked Sendable {  // reason: written once at load (or refilled by its one owner), then read-only
    public private(set) var n: Int, k: Int, panels: Int
    public private(set) var data: UnsafeMutablePointer<Float>
    private var capacity: Int

    /// `row(r, dst)` writes row r of W (k floats).
    public init(n: Int, k: Int, row: (Int, UnsafeMutablePointer<Float>) -> Void) {
        self.n = n; self.k = k
        panels = (n + 15) / 16
        capacity = panels * 16 * k
        data = .allocate(capacity: panels * 16 * k)
        data.initialize(repeating: 0, count: panels * 16 * k)
        let d = data, kk = k, nn = n
        nonisolated(unsafe) let rowFn = row
        parallelChunks(panels, minPerChunk: 8) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: kk) { buf in
                let tmp = buf.baseAddress!
                for p in range {
                    for lane in 0..<16 where p * 16 + lane < nn {
                        rowFn(p * 16 + lane, tmp)
                        let base = d + p * 16 * kk + lane
                        for j in 0..<kk { base[j * 16] = tmp[j] }
                    }
                }
            }
        }
    }
    deinit { data.deallocate() }

    /// An empty weight to be refilled again and again (`fillTransposed`), so training reuses one buffer.
    public init() {
        n = 0; k = 0; panels = 0; capacity = 0
        data = .allocate(capacity: 1)
    }

    /// Makes room for panels of an [n, k] weight (contents undefined until written).
    func reshape(n: Int, k: Int) {
        let need = (n + 15) / 16 * 16 * k
        if need > capacity {
            data.deallocate()
            data = .allocate(capacity: need)
            capacity = need
        }
        self.n = n; self.k = k; panels = (n + 15) / 16
    }

    /// Row r of W into dst (k floats), gathered from its panel.
    public func row(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        let base = data + (r / 16) * 16 * k + r % 16
        for j in 0..<k { dst[j] = base[j * 16] }
    }
}

/// y[m, n] = x[m, k] · W^T (+ bias) on a PackedWeight. Outputs run along the SIMD lanes, so there are no
/// horizontal sums: a 6 × 16 block of y lives in 12 accumulators, and each k costs two weight loads and
/// six broadcasts (FMA-bound on AVX2). Rows are taken in slabs that keep x in L2.
public enum PackedGEMM {
    public static func linear(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: PackedWeight,
                              bias: UnsafePointer<Float>?, m: Int) {
        let n = w.n, k = w.k
        if k >= longK {
            // Rows in slabs of `longKRows`, each streaming the panels once; k in ranges of `longKRange`
            // across a core's panels, so that x's rows for one range stay in L2 (the sums wait between
            // ranges as exact Floats: the bits of one pass).
            var s0 = 0
            while s0 < m {
                let rows = min(longKRows, m - s0)
                parallelChunks(w.panels, minPerChunk: 2) { range in
                    // AVX-512 keeps [pairs][rows][32] partial sums, AVX2 [panels][rows][16]: at most as many Floats.
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: (range.count + 1) / 2 * partialScratchFloats(rows: rows)) { pb in
                        if KernelISA.avx512 {
                            packedPanelsLongK512(y, x, w.data, bias: bias, n: n, k: k, panelLo: range.lowerBound, panelHi: range.upperBound,
                                                 rowLo: s0, rowHi: s0 + rows, kRange: longKRange, partial: pb.baseAddress!)
                        } else {
                            panelsLongK(y, x, w, bias, panels: range, rowLo: s0, rowHi: s0 + rows, partial: pb.baseAddress!)
                        }
                    }
                }
                s0 += rows
            }
            return
        }
        if KernelISA.avx512 {
            let slab = avx512Slab(m: m, k: k)
            var s0 = 0
            while s0 < m {
                let rows = min(slab, m - s0)
                parallelChunks(w.panels, minPerChunk: 2) { range in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: partialScratchFloats(rows: rows)) { partial in
                        packedPanels512(y, x, w.data, bias: bias, n: n, k: k, panelLo: range.lowerBound, panelHi: range.upperBound,
                                        rowLo: s0, rowHi: s0 + rows, partial: partial.baseAddress!)
                    }
                }
                s0 += rows
            }
            return
        }
        let slab = max(6, (96 * 1024 / max(k, 1)) / 6 * 6)  // rows of x per slab: ~384 KB of x
        // The slabs run inside one parallel loop: each core takes its panels through every slab, so a call
        // waits for the slower core once instead of once per slab (176 rows at k = 1536 are 3 slabs).
        parallelChunks(w.panels, minPerChunk: 2, chunksPerCore: 4) { range in
            var s0 = 0
            while s0 < m {
                let rows = min(slab, m - s0)
                for p in range {
                    var r0 = s0
                    while r0 < s0 + rows {
                        let mr = rowBlock(s0 + rows - r0)
                        panel(y, x, w.data + p * 16 * k, bias, n: n, k: k, n0: p * 16, r0: r0, mr: mr)
                        r0 += mr
                    }
                }
                s0 += rows
            }
        }
    }

    /// From this k on (the lm head's dX over the vocabulary), the kernels take k in ranges of `longKRange`
    /// across all panels, rows in slabs of `longKRows` (`packedPanelsLongK512` on AVX-512, `panelsLongK`).
    public static let longK = 8192
    static let longKRange = 2048, longKRows = 64

    /// The AVX2 kernel of the long-k path: rows rowLo..<rowHi on `panels`, k in ranges of `longKRange`,
    /// each 6 x 16 tile resumed from `partial` [panels][rows][16] between ranges.
    @inline(__always)
    static func panelsLongK(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: PackedWeight,
                            _ bias: UnsafePointer<Float>?, panels: Range<Int>, rowLo: Int, rowHi: Int,
                            partial: UnsafeMutablePointer<Float>) {
        let n = w.n, k = w.k, rows = rowHi - rowLo
        var lo = 0
        while lo < k {
            let hi = min(k, lo + longKRange)
            for p in panels {
                var r0 = rowLo
                while r0 < rowHi {
                    let mr = rowBlock(rowHi - r0)
                    panel(y, x, w.data + p * 16 * k, bias, n: n, k: k, n0: p * 16, r0: r0, mr: mr, kLo: lo, kHi: hi,
                          partial: partial + ((p - panels.lowerBound) * rows + (r0 - rowLo)) * 16)
                    r0 += mr
                }
            }
            lo = hi
        }
    }

    /// Rows per slab of the AVX-512 kernels: x of a slab stays within about 640 KB (the CPUs with AVX-512
    /// have 1 MB or more of L2 per core), and the slabs of a call are of equal size in multiples of the
    /// kernel's 8-row block, so that 176 training rows run as one slab rather than 162 + 14 (each slab
    /// re-reads, and for Int8 panels re-expands, every panel). Slabs never change a result.
    @inline(__always)
    static func avx512Slab(m: Int, k: Int) -> Int {
        let most = max(8, 160 * 1024 / max(k, 1) / 8 * 8)
        let slabs = (m + most - 1) / most
        return ((m + slabs - 1) / slabs + 7) / 8 * 8
    }

    /// Rows for the next kernel call when `remaining` rows are left: 6 while that leaves at least 4, so no
    /// call runs with one or two rows (4 accumulator chains cannot hide the FMA latency; 32 rows go as
    /// 6+6+6+6+4+4, not 6+6+6+6+6+2). Which rows share a call never changes their results.
    @inline(__always)
    static func rowBlock(_ remaining: Int) -> Int {
        remaining <= 6 ? remaining : remaining >= 10 ? 6 : remaining - remaining / 2
    }

    /// Rows r0..<r0+mr against one panel over k in kLo..<kHi (all of k by default). A range after the first
    /// resumes the sums `partial` [mr][16] holds; a range before the last leaves them there, exact, so the
    /// outputs see the same fused multiply-adds in the same order as one pass.
    @inline(__always)
    static func panel(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ wp: UnsafePointer<Float>,
                      _ bias: UnsafePointer<Float>?, n: Int, k: Int, n0: Int, r0: Int, mr: Int,
                      kLo: Int = 0, kHi: Int? = nil, partial: UnsafeMutablePointer<Float>? = nil) {
        // Rows past mr alias the last valid row; their sums are not stored.
        let x0 = x + r0 * k, x1 = x + (r0 + min(1, mr - 1)) * k, x2 = x + (r0 + min(2, mr - 1)) * k
        let x3 = x + (r0 + min(3, mr - 1)) * k, x4 = x + (r0 + min(4, mr - 1)) * k, x5 = x + (r0 + min(5, mr - 1)) * k
        let kEnd = kHi ?? k
        var t = Tile6x16()
        if kLo > 0, let pp = partial {
            @inline(__always) func row(_ i: Int) -> (SIMD8<Float>, SIMD8<Float>) {
                let r = pp + min(i, mr - 1) * 16
                return (load8(r), load8(r + 8))
            }
            (t.a0, t.b0) = row(0); (t.a1, t.b1) = row(1); (t.a2, t.b2) = row(2)
            (t.a3, t.b3) = row(3); (t.a4, t.b4) = row(4); (t.a5, t.b5) = row(5)
        }
        var w = wp + kLo * 16
        for p in kLo..<kEnd {
            t.add(load8(w), load8(w + 8), x0[p], x1[p], x2[p], x3[p], x4[p], x5[p])
            w += 16
        }
        if kEnd < k, let pp = partial {
            @inline(__always) func keep(_ i: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
                if i < mr { store8(pp + i * 16, a); store8(pp + i * 16 + 8, b) }
            }
            keep(0, t.a0, t.b0); keep(1, t.a1, t.b1); keep(2, t.a2, t.b2); keep(3, t.a3, t.b3); keep(4, t.a4, t.b4); keep(5, t.a5, t.b5)
            return
        }
        let cols = min(16, n - n0)
        @inline(__always) func put(_ i: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
            if i < mr { storeRow16(y + (r0 + i) * n + n0, a, b, bias.map { $0 + n0 }, cols: cols, addZero: false) }
        }
        put(0, t.a0, t.b0); put(1, t.a1, t.b1); put(2, t.a2, t.b2); put(3, t.a3, t.b3); put(4, t.a4, t.b4); put(5, t.a5, t.b5)
    }
}

/// Stores one row of a 16-output panel (two 8-lane halves): `cols` valid outputs, plus the bias when
/// there is one. `addZero`: add 0 when there is none (the Int8 rebuild kernel does; only the sign of a
/// zero can differ). The AVX-512 kernels' `put` mirrors this.
@inline(__always)
func storeRow16(_ out: UnsafeMutablePointer<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>, _ bias: UnsafePointer<Float>?,
                cols: Int, addZero: Bool) {
    if cols == 16 {
        if let bias { store8(out, a + load8(bias)); store8(out + 8, b + load8(bias + 8)) }
        else if addZero { store8(out, a + SIMD8<Float>()); store8(out + 8, b + SIMD8<Float>()) }
        else { store8(out, a); store8(out + 8, b) }
        return
    }
    for j in 0..<cols { out[j] = (j < 8 ? a[j] : b[j - 8]) + (bias?[j] ?? 0) }
}

/// Accumulators for 6 rows x 16 outputs (two 8-lane halves per row): the AVX2 outer-product step shared
/// by the forward panel kernel (x rows against a weight panel) and the backward rank update (dY rows
/// against weight rows). 12 accumulators + 2 weight vectors + 1 broadcast = 15 of AVX2's 16 registers.
struct Tile6x16 {
    var a0 = SIMD8<Float>(), b0 = SIMD8<Float>(), a1 = SIMD8<Float>(), b1 = SIMD8<Float>()
    var a2 = SIMD8<Float>(), b2 = SIMD8<Float>(), a3 = SIMD8<Float>(), b3 = SIMD8<Float>()
    var a4 = SIMD8<Float>(), b4 = SIMD8<Float>(), a5 = SIMD8<Float>(), b5 = SIMD8<Float>()

    /// Row i += s_i * (lo, hi), one fused multiply-add per half.
    @inline(__always)
    mutating func add(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>, _ s0: Float, _ s1: Float, _ s2: Float,
                      _ s3: Float, _ s4: Float, _ s5: Float) {
        var s = SIMD8<Float>(repeating: s0); a0.addProduct(s, lo); b0.addProduct(s, hi)
        s = SIMD8<Float>(repeating: s1); a1.addProduct(s, lo); b1.addProduct(s, hi)
        s = SIMD8<Float>(repeating: s2); a2.addProduct(s, lo); b2.addProduct(s, hi)
        s = SIMD8<Float>(repeating: s3); a3.addProduct(s, lo); b3.addProduct(s, hi)
        s = SIMD8<Float>(repeating: s4); a4.addProduct(s, lo); b4.addProduct(s, hi)
        s = SIMD8<Float>(repeating: s5); a5.addProduct(s, lo); b5.addProduct(s, hi)
    }
}
