// GEMM on quantized weights re-laid out in 16-output panels: per panel and per group of 16 k, the 16
// scales, the 16 offsets, then q[16 k][16 outputs] as Int8. The kernel rebuilds w = Float(q) * scale +
// offset in registers (4 rows x 16 outputs: 8 accumulators, 2 weight vectors, 4 scale/offset vectors) (the model file's exact values) and accumulates exactly as PackedGEMM does, so a
// row's result never depends on how many rows share the call: batched decoding equals unbatched bit for
// bit. About 1.5 bytes per weight cross the memory bus instead of 4. On AVX-512 CPUs the same arithmetic
// runs 16 lanes wide (TensorsAVX512), with the same bits.

import CPrefetch
import TensorsAVX512

public final class QuantPanelWeight: @unchecked Sendable {  // reason: written once at load, then read-only
    public let n: Int, k: Int, panels: Int, groups: Int
    static let groupBytes = quantGroupBytes  // the layout both ISAs' kernels read (TensorsAVX512)
    public let data: UnsafeMutableRawPointer

    /// `decompose(r, q, scales, offsets)` writes row r: q[k], scales[k / 16], offsets[k / 16].
    public init(n: Int, k: Int, decompose: (Int, UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        precondition(k % 16 == 0, "QuantPanelWeight needs k divisible by 16")
        self.n = n; self.k = k
        panels = (n + 15) / 16
        groups = k / 16
        let bytes = panels * groups * Self.groupBytes
        data = .allocate(byteCount: bytes, alignment: 64)
        data.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let d = data, kk = k, nn = n, gs = groups, gb = Self.groupBytes
        nonisolated(unsafe) let fn = decompose
        parallelChunks(panels, minPerChunk: 8) { range in
            let q = UnsafeMutablePointer<Int8>.allocate(capacity: kk)
            let s = UnsafeMutablePointer<Float>.allocate(capacity: gs), o = UnsafeMutablePointer<Float>.allocate(capacity: gs)
            defer { q.deallocate(); s.deallocate(); o.deallocate() }
            for p in range {
                for lane in 0..<16 where p * 16 + lane < nn {
                    fn(p * 16 + lane, q, s, o)
                    for g in 0..<gs {
                        let base = d + (p * gs + g) * gb
                        base.storeBytes(of: s[g], toByteOffset: 4 * lane, as: Float.self)
                        base.storeBytes(of: o[g], toByteOffset: 64 + 4 * lane, as: Float.self)
                        for j in 0..<16 { base.storeBytes(of: q[16 * g + j], toByteOffset: 128 + 16 * j + lane, as: Int8.self) }
                    }
                }
            }
        }
    }
    deinit { data.deallocate() }
}

public enum QuantPanelGEMM {
    /// Up to this many rows the kernel rebuilds weights in registers for each row block; more rows
    /// first expand a whole panel to Float in a cache-resident buffer (the conversion is then shared
    /// by every row) and run PackedGEMM's kernel on it. Same weights, same accumulation order: the
    /// choice never changes a result.
    public static let expandRows = 8

    /// y[m, n] = x[m, k] · W^T (+ bias).
    public static func linear(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: QuantPanelWeight,
                              bias: UnsafePointer<Float>?, m: Int) {
        let n = w.n, k = w.k, groups = w.groups
        if m > expandRows {
            // Rows in slabs that keep x in L2; each slab re-expands the panels (cheap next to the GEMM).
            if KernelISA.avx512 {
                let slab = PackedGEMM.avx512Slab(m: m, k: k)
                var s0 = 0
                while s0 < m {
                    let rows = min(slab, m - s0)
                    parallelChunks(w.panels, minPerChunk: 2) { range in
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32 * k + partialScratchFloats(rows: rows)) { buf in
                            quantPanelsExpanded512(y, x, w.data, groups: groups, bias: bias, n: n, k: k,
                                                   panelLo: range.lowerBound, panelHi: range.upperBound,
                                                   rowLo: s0, rowHi: s0 + rows, buffer: buf.baseAddress!,
                                                   partial: buf.baseAddress! + 32 * k)
                        }
                    }
                    s0 += rows
                }
                return
            }
            // The slabs run inside one parallel loop (each core takes its panels through every slab): one
            // wait for the slower core per call instead of one per slab.
            let slab = max(6, (96 * 1024 / max(k, 1)) / 6 * 6)
            parallelChunks(w.panels, minPerChunk: 2, chunksPerCore: 4) { range in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * k) { buf in
                    let fp = buf.baseAddress!
                    var s0 = 0
                    while s0 < m {
                        let rows = min(slab, m - s0)
                        for p in range {
                            expand(fp, w.data + p * groups * QuantPanelWeight.groupBytes, groups: groups)
                            var r0 = s0
                            while r0 < s0 + rows {
                                let mr = PackedGEMM.rowBlock(s0 + rows - r0)
                                PackedGEMM.panel(y, x, fp, bias, n: n, k: k, n0: p * 16, r0: r0, mr: mr)
                                r0 += mr
                            }
                        }
                        s0 += rows
                    }
                }
            }
            return
        }
        if KernelISA.avx512 {
            parallelChunks(w.panels, minPerChunk: 8) { range in
                quantPanelsRebuild512(y, x, w.data, groups: groups, bias: bias, n: n, k: k,
                                      panelLo: range.lowerBound, panelHi: range.upperBound, m: m)
            }
            return
        }
        parallelChunks(w.panels, minPerChunk: 8, chunksPerCore: 4) { range in
            for p in range {
                var r0 = 0
                while r0 < m {
                    let mr = min(4, m - r0)
                    panel(y, x, w.data + p * groups * QuantPanelWeight.groupBytes, groups, bias, n: n, k: k, n0: p * 16, r0: r0, mr: mr)
                    r0 += mr
                }
            }
        }
    }

    /// One panel's weights as Float [k][16], exactly as `panel` rebuilds them.
    @inline(__always)
    static func expand(_ out: UnsafeMutablePointer<Float>, _ wp: UnsafeRawPointer, groups: Int) {
        for g in 0..<groups {
            let gp = wp + g * QuantPanelWeight.groupBytes
            let sLo = gp.load(as: SIMD8<Float>.self), sHi = gp.load(fromByteOffset: 32, as: SIMD8<Float>.self)
            let oLo = gp.load(fromByteOffset: 64, as: SIMD8<Float>.self), oHi = gp.load(fromByteOffset: 96, as: SIMD8<Float>.self)
            for j in 0..<16 {
                let q = gp.load(fromByteOffset: 128 + 16 * j, as: SIMD16<Int8>.self)
                let o = out + (16 * g + j) * 16
                store8(o, widen(q.lowHalf) * sLo + oLo)
                store8(o + 8, widen(q.highHalf) * sHi + oHi)
            }
        }
    }

    @inline(__always)
    static func widen(_ q: SIMD8<Int8>) -> SIMD8<Float> {
        var f = SIMD8<Float>()
        for i in 0..<8 { f[i] = Float(q[i]) }
        return f
    }

    @inline(__always)
    static func panel(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ wp: UnsafeRawPointer, _ groups: Int,
                      _ bias: UnsafePointer<Float>?, n: Int, k: Int, n0: Int, r0: Int, mr: Int) {
        let x0 = x + r0 * k, x1 = x + (r0 + min(1, mr - 1)) * k, x2 = x + (r0 + min(2, mr - 1)) * k
        let x3 = x + (r0 + min(3, mr - 1)) * k
        var a0 = SIMD8<Float>(), b0 = SIMD8<Float>(), a1 = SIMD8<Float>(), b1 = SIMD8<Float>()
        var a2 = SIMD8<Float>(), b2 = SIMD8<Float>(), a3 = SIMD8<Float>(), b3 = SIMD8<Float>()
        for g in 0..<groups {
            let gp = wp + g * QuantPanelWeight.groupBytes
            // Weights stream from memory once per token: prefetch ahead (see TensorsAVX512).
            if r0 == 0 { for l in 0..<6 { ex2_prefetch(gp + prefetchDistance + 64 * l) } }
            let sLo = gp.load(as: SIMD8<Float>.self), sHi = gp.load(fromByteOffset: 32, as: SIMD8<Float>.self)
            let oLo = gp.load(fromByteOffset: 64, as: SIMD8<Float>.self), oHi = gp.load(fromByteOffset: 96, as: SIMD8<Float>.self)
            let kb = 16 * g
            if mr == 1 {
                // Decoding one sequence: rebuild each weight vector once, one FMA per half.
                for j in 0..<16 {
                    let q = gp.load(fromByteOffset: 128 + 16 * j, as: SIMD16<Int8>.self)
                    let lo = widen(q.lowHalf) * sLo + oLo, hi = widen(q.highHalf) * sHi + oHi
                    let s = SIMD8<Float>(repeating: x0[kb + j]); a0.addProduct(s, lo); b0.addProduct(s, hi)
                }
                continue
            }
            for j in 0..<16 {
                let q = gp.load(fromByteOffset: 128 + 16 * j, as: SIMD16<Int8>.self)
                let lo = widen(q.lowHalf) * sLo + oLo, hi = widen(q.highHalf) * sHi + oHi
                let p = kb + j
                var s = SIMD8<Float>(repeating: x0[p]); a0.addProduct(s, lo); b0.addProduct(s, hi)
                s = SIMD8<Float>(repeating: x1[p]); a1.addProduct(s, lo); b1.addProduct(s, hi)
                s = SIMD8<Float>(repeating: x2[p]); a2.addProduct(s, lo); b2.addProduct(s, hi)
                s = SIMD8<Float>(repeating: x3[p]); a3.addProduct(s, lo); b3.addProduct(s, hi)
            }
        }
        let cols = min(16, n - n0)
        @inline(__always) func put(_ i: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
            if i < mr { storeRow16(y + (r0 + i) * n + n0, a, b, bias.map { $0 + n0 }, cols: cols, addZero: true) }
        }
        put(0, a0, b0); put(1, a1, b1); put(2, a2, b2); put(3, a3, b3)
    }
}
