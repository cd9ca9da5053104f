// Scaled dot-product attention over a key/value cache, with grouped-query heads (several query heads share
// one key/value head), causal masking by position, an optional sliding window, and a first valid key
// (left padding). One call handles the new query rows of one sequence; callers loop over sequences so a
// batch of different lengths needs no padding at all.
import Foundation

public struct AttentionShape: Sendable {
    public var heads: Int, kvHeads: Int, headDim: Int
    public init(heads: Int, kvHeads: Int, headDim: Int) {
        precondition(heads % kvHeads == 0, "query heads must be a multiple of key/value heads")
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
    }
}

public enum Attention {
    /// out[t, h*hd..] = softmax_j(scale * q_t,h · k_j,g) v_j,g for keys j in [max(keyStart, p_t - window + 1), p_t],
    /// g = h / (heads / kvHeads), p_t = queryPositions[t] (the cache index of query t's own key).
    /// q: [T, heads*hd] (row stride qStride); keys/values: [L, kvHeads*hd] (row stride kvStride).
    /// `probs`, when given, receives the attention weights [T, heads, L] (zero outside the mask) for backward.
    public static func forward(_ out: UnsafeMutablePointer<Float>, outStride: Int,
                               q: UnsafePointer<Float>, qStride: Int,
                               keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int,
                               queryPositions: UnsafePointer<Int>, rows: Int, shape: AttentionShape,
                               scale: Float, window: Int? = nil, keyStart: Int = 0,
                               probs: UnsafeMutablePointer<Float>? = nil, probsStride: Int = 0) {
        let hd = shape.headDim, group = shape.heads / shape.kvHeads
        parallelFor(rows * shape.heads, minPerChunk: 2) { item in
            let t = item / shape.heads, h = item % shape.heads
            attendHead(out + t * outStride + h * hd, q: q + t * qStride + h * hd, keys: keys, values: values,
                       kvStride: kvStride, kvOffset: (h / group) * hd, position: queryPositions[t], headDim: hd,
                       scale: scale, window: window, keyStart: keyStart,
                       probs: probs.map { $0 + t * probsStride * shape.heads + h * probsStride }, probsCount: probsStride)
        }
    }

    /// One query head against the keys of one sequence: out = softmax(scale q·k_j) v_j over
    /// j in [max(keyStart, position - window + 1), position]. `keys`/`values` point at the sequence's
    /// position 0; `kvOffset` selects the key/value head inside each row of `kvStride` floats.
    /// `probs`, when given, receives the weights by key position for positions < probsCount (zero
    /// outside the mask).
    @inline(__always)
    public static func attendHead(_ out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                  keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                  kvStride: Int, kvOffset: Int, position p: Int, headDim hd: Int,
                                  scale: Float, window: Int? = nil, keyStart: Int = 0,
                                  probs: UnsafeMutablePointer<Float>? = nil, probsCount: Int = 0) {
        var lo = keyStart
        if let window { lo = max(lo, p - window + 1) }
        let n = p - lo + 1
        for i in 0..<hd { out[i] = 0 }
        if let probs { for j in 0..<probsCount { probs[j] = 0 } }
        guard n > 0 else { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { s in
            let sp = s.baseAddress!
            for j in 0..<n { sp[j] = Vec.dot(q, keys + (lo + j) * kvStride + kvOffset, hd) * scale }
            Softmax.softmaxRow(sp, n)
            let v0 = values + lo * kvStride + kvOffset
            var d = 0
            // 64 output dims at a time in registers: no load/store of `out` per key.
            while d + 64 <= hd {
                var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
                for j in 0..<n {
                    let pj = SIMD8<Float>(repeating: sp[j]), vj = v0 + j * kvStride + d
                    a0.addProduct(pj, load8(vj)); a1.addProduct(pj, load8(vj + 8))
                    a2.addProduct(pj, load8(vj + 16)); a3.addProduct(pj, load8(vj + 24))
                    a4.addProduct(pj, load8(vj + 32)); a5.addProduct(pj, load8(vj + 40))
                    a6.addProduct(pj, load8(vj + 48)); a7.addProduct(pj, load8(vj + 56))
                }
                store8(out + d, a0); store8(out + d + 8, a1); store8(out + d + 16, a2); store8(out + d + 24, a3)
                store8(out + d + 32, a4); store8(out + d + 40, a5); store8(out + d + 48, a6); store8(out + d + 56, a7)
                d += 64
            }
            if d < hd { for j in 0..<n { Vec.axpy(out + d, sp[j], v0 + j * kvStride + d, hd - d) } }
            if let probs { for j in 0..<n where lo + j < probsCount { probs[lo + j] = sp[j] } }
        }
    }
}

extension Attention {
    /// Backward of causal attention for one sequence of L rows and one key/value head g with its `group`
    /// query heads (so no two calls write the same dk/dv rows). Inputs are the forward's: q [L, qStride]
    /// (rotated), keys/values [L, kvStride], the saved weights probs [heads][L][L] (row t: weights over keys
    /// 0...t, zero outside the mask) and dOut [L, qStride]. Writes dq for the group's heads and dk, dv for
    /// head g (overwriting them), through dS = P * (dP - rowsum(P * dP)), dP = dOut V^T:
    /// dq = scale dS K, dk = scale dS^T Q, dv = P^T dOut. `window`/`keyStart` as in the forward.
    public static func backwardGroup(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                     dv: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                     q: UnsafePointer<Float>, qStride: Int, keys: UnsafePointer<Float>,
                                     values: UnsafePointer<Float>, kvStride: Int, probs: UnsafePointer<Float>,
                                     length L: Int, kvHead g: Int, shape: AttentionShape, scale: Float,
                                     window: Int? = nil) {
        let hd = shape.headDim, group = shape.heads / shape.kvHeads, kvOff = g * hd
        for j in 0..<L {
            for i in 0..<hd { dk[j * kvStride + kvOff + i] = 0; dv[j * kvStride + kvOff + i] = 0 }
        }
        @inline(__always) func low(_ t: Int) -> Int { window.map { max(0, t - $0 + 1) } ?? 0 }
        // Each sum below runs over its terms in the order of the textbook loop (for each head, rows t in
        // order, keys j in order) with one fused multiply-add per term; terms outside the mask are exact
        // zeros (the forward saved P with zeros there, and dS gets them here), so the products can run on
        // register-held row kernels over whole blocks.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, L * L)) { buf in
            let ds = buf.baseAddress!
            for h in g * group ..< (g + 1) * group {
                let qOff = h * hd, ph = probs + h * L * L
                // dS_tj = p_tj (dP_tj - sum_j' p_tj' dP_tj') scale, with dP_tj = dOut_t · v_j.
                for t in 0..<L {
                    let lo = low(t), p = ph + t * L, st = ds + t * L
                    let go = dOut + t * qStride + qOff
                    var mean: Float = 0
                    for j in lo...t {
                        let dp = Vec.dot(go, values + j * kvStride + kvOff, hd)
                        st[j] = dp; mean += p[j] * dp
                    }
                    for j in 0..<lo { st[j] = 0 }
                    for j in lo...t { st[j] = p[j] * (st[j] - mean) * scale }
                    for j in (t + 1)..<L { st[j] = 0 }
                }
                // dq_t = sum_j dS_tj k_j, four rows at a time.
                var t = 0
                while t < L {
                    let lo = low(t)
                    if t + 4 <= L {
                        Vec.combineRows4(dq + t * qStride + qOff, yStride: qStride, ds + t * L + lo, cStride: 1, cNext: L,
                                         keys + lo * kvStride + kvOff, ldm: kvStride, m: t + 4 - lo, n: hd)
                        t += 4
                    } else {
                        Vec.combineRows(dq + t * qStride + qOff, ds + t * L + lo, cStride: 1,
                                        keys + lo * kvStride + kvOff, ldm: kvStride, m: t + 1 - lo, n: hd)
                        t += 1
                    }
                }
                // dv_j += sum_t p_tj dOut_t and dk_j += sum_t dS_tj q_t over the rows t >= j, four keys at a time.
                var j0 = 0
                while j0 < L {
                    let r = min(4, L - j0)
                    Vec.addOuterProducts(dv + j0 * kvStride + kvOff, ldy: kvStride, ph + j0 * L + j0, ldc: L,
                                         dOut + j0 * qStride + qOff, ldx: qStride, m: L - j0, r: r, n: hd)
                    Vec.addOuterProducts(dk + j0 * kvStride + kvOff, ldy: kvStride, ds + j0 * L + j0, ldc: L,
                                         q + j0 * qStride + qOff, ldx: qStride, m: L - j0, r: r, n: hd)
                    j0 += 4
                }
            }
        }
    }
}
