// The GEMM kernels of Tensors (QuantPanelGEMM, PackedGEMM) again, compiled for AVX-512: one 16-lane
// register holds a whole 16-output panel row, and on CPUs with two 512-bit FMA units (most server Xeons)
// that doubles the multiply-adds per cycle. This module is built with -target-cpu skylake-avx512; Tensors
// calls into it only after checking the CPU (`KernelISA`), so nothing here may run on other machines.
// Keep it free of generic code: a stdlib specialisation emitted here could be shared with the rest of
// the program at link time and carry AVX-512 instructions into code every CPU runs (scripts/check-isa.sh
// checks the linked binaries).
//
// Every output lane accumulates exactly as the AVX2 kernels do: weights rebuilt as q * scale + offset
// (a multiply, then an add), then one fused multiply-add per k in order k = 0, 1, ... So results are
// bit-identical to the AVX2 path, whatever the batch size and whichever kernel runs.

import CPrefetch

@inline(__always) func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> { p.loadUnaligned(as: SIMD16<Float>.self) }
@inline(__always) func store16(_ p: UnsafeMutablePointer<Float>, _ v: SIMD16<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}
// Lane by lane, which LLVM turns into vpmovsxbd + vcvtdq2ps; the stdlib's SIMD conversion initialisers
// are out-of-line calls.
@inline(__always) func widen16(_ q: SIMD16<Int8>) -> SIMD16<Float> {
    var f = SIMD16<Float>()
    for i in 0..<16 { f[i] = Float(q[i]) }
    return f
}

/// The rows r0 ..< r0 + 8 of x (row length k); rows past mr alias the last valid one (their sums are dropped).
@inline(__always)
func rowPointers(_ x: UnsafePointer<Float>, k: Int, r0: Int, mr: Int) -> (UnsafePointer<Float>, UnsafePointer<Float>,
    UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) {
    @inline(__always) func row(_ i: Int) -> UnsafePointer<Float> { x + (r0 + (i < mr ? i : mr - 1)) * k }
    return (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7))
}

/// How far ahead of the group being read the rebuild kernel prefetches.
public let prefetchDistance = 2048

/// Bytes of one group of a quantized panel: 16 scales, 16 offsets, then q[16 k][16 outputs] as Int8.
public let quantGroupBytes = 16 * 4 * 2 + 16 * 16

@inline(__always) func offset(_ p: UnsafePointer<Float>?, _ by: Int) -> UnsafePointer<Float>? {
    if let p { return p + by }
    return nil
}

/// Stores one 16-lane result row: cols valid outputs, plus the bias when there is one. `addZero` mirrors
/// the AVX2 kernel being matched, which adds 0 when there is no bias (only the sign of a zero can differ).
@inline(__always)
func put(_ out: UnsafeMutablePointer<Float>, _ v: SIMD16<Float>, _ bias: UnsafePointer<Float>?, cols: Int, addZero: Bool) {
    if cols == 16 {
        if let bias { store16(out, v + load16(bias)) } else { store16(out, addZero ? v + SIMD16<Float>() : v) }
        return
    }
    for j in 0..<cols { out[j] = v[j] + (bias?[j] ?? 0) }
}

/// y[r, n0 ..< n0 + 16 * panels] for rows r in rows, from quantized panels [panelRange]: weights rebuilt in
/// registers for each block of up to 8 rows (few rows: decoding). `data` is the first panel's first group.
@inline(never)
public func quantPanelsRebuild512(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ data: UnsafeRawPointer,
                                  groups: Int, bias: UnsafePointer<Float>?, n: Int, k: Int,
                                  panelLo: Int, panelHi: Int, m: Int) {
    for p in panelLo..<panelHi {
        let wp = data + p * groups * quantGroupBytes
        let n0 = p * 16, cols = min(16, n - n0)
        var r0 = 0
        while r0 < m {
            let mr = min(8, m - r0)
            let (x0, x1, x2, x3, x4, x5, x6, x7) = rowPointers(x, k: k, r0: r0, mr: mr)
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var a4 = SIMD16<Float>(), a5 = SIMD16<Float>(), a6 = SIMD16<Float>(), a7 = SIMD16<Float>()
            for g in 0..<groups {
                let gp = wp + g * quantGroupBytes
                // The weights stream from memory once per token: ask for them 2 KB ahead (the hardware
                // prefetcher stops at 4 KB page boundaries).
                if r0 == 0 { for l in 0..<6 { ex2_prefetch(gp + prefetchDistance + 64 * l) } }
                let s = load16(gp), o = load16(gp + 64)
                let kb = 16 * g
                if mr == 1 {
                    for j in 0..<16 {
                        let w = widen16(gp.loadUnaligned(fromByteOffset: 128 + 16 * j, as: SIMD16<Int8>.self)) * s + o
                        a0.addProduct(SIMD16<Float>(repeating: x0[kb + j]), w)
                    }
                    continue
                }
                for j in 0..<16 {
                    let w = widen16(gp.loadUnaligned(fromByteOffset: 128 + 16 * j, as: SIMD16<Int8>.self)) * s + o
                    let q = kb + j
                    a0.addProduct(SIMD16<Float>(repeating: x0[q]), w); a1.addProduct(SIMD16<Float>(repeating: x1[q]), w)
                    a2.addProduct(SIMD16<Float>(repeating: x2[q]), w); a3.addProduct(SIMD16<Float>(repeating: x3[q]), w)
                    a4.addProduct(SIMD16<Float>(repeating: x4[q]), w); a5.addProduct(SIMD16<Float>(repeating: x5[q]), w)
                    a6.addProduct(SIMD16<Float>(repeating: x6[q]), w); a7.addProduct(SIMD16<Float>(repeating: x7[q]), w)
                }
            }
            let b = offset(bias, n0)
            @inline(__always) func row(_ i: Int, _ a: SIMD16<Float>) {
                if i < mr { put(y + (r0 + i) * n + n0, a, b, cols: cols, addZero: true) }
            }
            row(0, a0); row(1, a1); row(2, a2); row(3, a3); row(4, a4); row(5, a5); row(6, a6); row(7, a7)
            r0 += mr
        }
    }
}

/// One quantized panel as Float [k][16], exactly as `quantPanelsRebuild512` rebuilds it.
@inline(__always)
func expand512(_ out: UnsafeMutablePointer<Float>, _ wp: UnsafeRawPointer, groups: Int) {
    for g in 0..<groups {
        let gp = wp + g * quantGroupBytes
        let s = load16(gp), o = load16(gp + 64)
        for j in 0..<16 {
            store16(out + (16 * g + j) * 16, widen16(gp.loadUnaligned(fromByteOffset: 128 + 16 * j, as: SIMD16<Int8>.self)) * s + o)
        }
    }
}

/// Many rows on quantized panels: each pair of panels is expanded to Float in `buffer` (32 * k floats),
/// then rows rowLo..<rowHi run on it in blocks of up to 8 (16 accumulators). `partial` holds
/// `partialScratchFloats(rows:)` Floats.
@inline(never)
public func quantPanelsExpanded512(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ data: UnsafeRawPointer,
                                   groups: Int, bias: UnsafePointer<Float>?, n: Int, k: Int,
                                   panelLo: Int, panelHi: Int, rowLo: Int, rowHi: Int, buffer: UnsafeMutablePointer<Float>,
                                   partial: UnsafeMutablePointer<Float>) {
    var p = panelLo
    while p < panelHi {
        let np = min(2, panelHi - p)
        for i in 0..<np { expand512(buffer + i * 16 * k, data + (p + i) * groups * quantGroupBytes, groups: groups) }
        let next = min(2, panelHi - p - np)
        panelPairRows(y, x, buffer, buffer + (np - 1) * 16 * k, np: np, bias, n: n, k: k, n0: p * 16,
                      rowLo: rowLo, rowHi: rowHi, addZero: false,
                      ahead: data + (p + np) * groups * quantGroupBytes, aheadBytes: next * groups * quantGroupBytes,
                      partial: partial)
        p += np
    }
}

/// Float panels ([k][16] each): rows rowLo..<rowHi of y for panels panelLo..<panelHi. `partial` holds
/// `partialScratchFloats(rows:)` Floats.
@inline(never)
public func packedPanels512(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ data: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>?, n: Int, k: Int,
                            panelLo: Int, panelHi: Int, rowLo: Int, rowHi: Int, partial: UnsafeMutablePointer<Float>) {
    var p = panelLo
    while p < panelHi {
        let np = min(2, panelHi - p)
        let next = min(2, panelHi - p - np)
        panelPairRows(y, x, data + p * 16 * k, data + (p + np - 1) * 16 * k, np: np, bias, n: n, k: k, n0: p * 16,
                      rowLo: rowLo, rowHi: rowHi, addZero: false,
                      ahead: UnsafeRawPointer(data + (p + np) * 16 * k), aheadBytes: next * 16 * k * 4, partial: partial)
        p += np
    }
}

/// k per pass over the rows: two panels' 16 x 256 Floats (32 KB) stay in L1 while every row block uses them.
public let kBlock = 256

/// y rows rowLo..<rowHi on Float panels panelLo..<panelHi for a very long k (the lm head's dX, k = the
/// vocabulary): k runs in ranges of `kRange` across all the panels, so that x's rows for one range stay
/// in L2 while every panel pair passes (a row slab over the whole k would stream the panels once per slab,
/// and x once per pair). The sums wait between ranges in `partial`, [pairs][rows][32], as exact Floats:
/// the bits are `packedPanels512`'s.
@inline(never)
public func packedPanelsLongK512(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ data: UnsafePointer<Float>,
                                 bias: UnsafePointer<Float>?, n: Int, k: Int, panelLo: Int, panelHi: Int, rowLo: Int, rowHi: Int,
                                 kRange: Int, partial: UnsafeMutablePointer<Float>) {
    let rows = rowHi - rowLo
    var lo = 0
    while lo < k {
        let hi = min(k, lo + kRange)
        var p = panelLo, pair = 0
        while p < panelHi {
            let np = min(2, panelHi - p)
            panelPairRows(y, x, data + p * 16 * k, data + (p + np - 1) * 16 * k, np: np, bias, n: n, k: k, n0: p * 16,
                          rowLo: rowLo, rowHi: rowHi, addZero: false, ahead: UnsafeRawPointer(data), aheadBytes: 0,
                          partial: partial + pair * partialScratchFloats(rows: rows), kLo: lo, kHi: hi)
            p += np; pair += 1
        }
        lo = hi
    }
}

/// Floats of scratch `quantPanelsExpanded512` and `packedPanels512` need for `rows` rows (partial sums
/// between k blocks).
public func partialScratchFloats(rows: Int) -> Int { rows * 32 }

/// Rows rowLo..<rowHi against one or two Float panels (w1 == w0 when np == 1; its sums are dropped).
/// k runs in blocks of `kBlock`; between blocks the sums wait in `partial` [rows][32] as exact Floats,
/// so every output still sees one fused multiply-add per k in order.
@inline(__always)
func panelPairRows(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ w1: UnsafePointer<Float>,
                   np: Int, _ bias: UnsafePointer<Float>?, n: Int, k: Int, n0: Int, rowLo: Int, rowHi: Int, addZero: Bool,
                   ahead: UnsafeRawPointer, aheadBytes: Int, partial: UnsafeMutablePointer<Float>,
                   kLo: Int = 0, kHi: Int? = nil) {
    // While the first row block of each k block runs, the next panels' weights are prefetched, spread
    // over its k steps (the multiply-adds hide the latency that reading them at expansion would expose).
    let prefetchStep = max(64, (aheadBytes / max(k, 1) + 63) / 64 * 64)
    let colsA = min(16, n - n0), colsB = min(16, n - n0 - 16)
    let bA = offset(bias, n0), bB = offset(bias, n0 + 16)
    // Only k in kLo..<kHi (all of k by default): a call for a later range continues the sums `partial`
    // holds, exactly as the blocks of one call do.
    let kEnd = kHi ?? k
    var c0 = kLo
    while c0 < kEnd {
        let c1 = min(kEnd, c0 + kBlock), first = c0 == 0, last = c1 == k
        var r0 = rowLo
        while r0 < rowHi {
            let mr = min(8, rowHi - r0)
            let (x0, x1, x2, x3, x4, x5, x6, x7) = rowPointers(x, k: k, r0: r0, mr: mr)
            @inline(__always) func saved(_ i: Int, _ half: Int) -> SIMD16<Float> {
                first ? SIMD16<Float>() : load16(partial + (r0 - rowLo + min(i, mr - 1)) * 32 + 16 * half)
            }
            var a0 = saved(0, 0), a1 = saved(1, 0), a2 = saved(2, 0), a3 = saved(3, 0)
            var a4 = saved(4, 0), a5 = saved(5, 0), a6 = saved(6, 0), a7 = saved(7, 0)
            var b0 = saved(0, 1), b1 = saved(1, 1), b2 = saved(2, 1), b3 = saved(3, 1)
            var b4 = saved(4, 1), b5 = saved(5, 1), b6 = saved(6, 1), b7 = saved(7, 1)
            let wa = UnsafeRawPointer(w0), wb = UnsafeRawPointer(w1)
            @inline(__always) func step(_ q: Int) {
                let lo = load16(wa + 64 * q), hi = load16(wb + 64 * q)
                var s = SIMD16<Float>(repeating: x0[q]); a0.addProduct(s, lo); b0.addProduct(s, hi)
                s = SIMD16<Float>(repeating: x1[q]); a1.addProduct(s, lo); b1.addProduct(s, hi)
                s = SIMD16<Float>(repeating: x2[q]); a2.addProduct(s, lo); b2.addProduct(s, hi)
                s = SIMD16<Float>(repeating: x3[q]); a3.addProduct(s, lo); b3.addProduct(s, hi)
                s = SIMD16<Float>(repeating: x4[q]); a4.addProduct(s, lo); b4.addProduct(s, hi)
                s = SIMD16<Float>(repeating: x5[q]); a5.addProduct(s, lo); b5.addProduct(s, hi)
                s = SIMD16<Float>(repeating: x6[q]); a6.addProduct(s, lo); b6.addProduct(s, hi)
                s = SIMD16<Float>(repeating: x7[q]); a7.addProduct(s, lo); b7.addProduct(s, hi)
            }
            // Two loops, so the usual one carries no prefetch test and fewer live registers.
            if r0 == rowLo && aheadBytes > 0 {
                for q in c0..<c1 {
                    if q * prefetchStep < aheadBytes { ex2_prefetch(ahead + q * prefetchStep) }
                    step(q)
                }
            } else {
                for q in c0..<c1 { step(q) }
            }
            @inline(__always) func row(_ i: Int, _ a: SIMD16<Float>, _ b: SIMD16<Float>) {
                guard i < mr else { return }
                if !last {
                    let keep = partial + (r0 - rowLo + i) * 32
                    store16(keep, a); store16(keep + 16, b)
                    return
                }
                let out = y + (r0 + i) * n + n0
                put(out, a, bA, cols: colsA, addZero: addZero)
                if np == 2 { put(out + 16, b, bB, cols: colsB, addZero: addZero) }
            }
            row(0, a0, b0); row(1, a1, b1); row(2, a2, b2); row(3, a3, b3)
            row(4, a4, b4); row(5, a5, b5); row(6, a6, b6); row(7, a7, b7)
            r0 += mr
        }
        c0 = c1
    }
}
