// Multi-head attention for the CLIP towers, one task per (sequence, head), over the packed q|k|v rows the
// QKV projection writes. CLIP sequences are short (50 tokens for ViT-B/32, at most 77 for text), so the
// general kernel's per-key dot products (a horizontal sum each) dominate; here the head's keys are first
// transposed into a [headDim, keys] tile, so the scores of eight keys come out of one SIMD8 multiply-add per
// dimension, and the weighted sum of values keeps the output row in registers. Head sizes that are not a
// multiple of 8 take Tensors' general kernel.
import Tensors

enum CLIPAttention {
    /// out[r, h*hd ..< (h+1)*hd] = softmax(scale * q_r k^T) v over the keys of r's segment (up to r when causal).
    /// `qkv` rows hold [q (W) | k (W) | v (W)]; `out` rows are W wide. `keyMasks[s][j]` true: key j of segment s is
    /// hidden from every query (open_clip's additive -inf padding mask; CoCa's text tower).
    static func forward(_ out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, width w: Int, heads: Int,
                        segments: [Range<Int>], causal: Bool, scale: Float, keyMasks: [[Bool]]? = nil) {
        let hd = w / heads
        let stride = 3 * w
        if let keyMasks {
            masked(out, qkv: qkv, width: w, heads: heads, segments: segments, causal: causal, scale: scale, keyMasks: keyMasks)
            return
        }
        guard hd % 8 == 0 else {
            general(out, qkv: qkv, width: w, heads: heads, segments: segments, causal: causal, scale: scale)
            return
        }
        let longest = segments.map(\.count).max() ?? 0
        let cols = (longest + 31) / 32 * 32  // four SIMD8 groups per step, zero-padded
        parallelFor(segments.count * heads) { task in
            let seg = segments[task / heads], h = task % heads
            let n = seg.count
            let q0 = qkv + seg.lowerBound * stride + h * hd, k0 = q0 + w, v0 = q0 + 2 * w
            let o0 = out + seg.lowerBound * w + h * hd
            withUnsafeTemporaryAllocation(of: Float.self, capacity: hd * cols + cols) { buf in
                let kt = buf.baseAddress!, scores = kt + hd * cols
                // kt[d, j] = k_j[d]; columns past n stay zero so whole groups can be computed.
                kt.initialize(repeating: 0, count: hd * cols)
                for j in 0..<n {
                    let kj = k0 + j * stride
                    for d in 0..<hd { kt[d * cols + j] = kj[d] }
                }
                for i in 0..<n {
                    let m = causal ? i + 1 : n
                    let qi = q0 + i * stride
                    var g = 0
                    while g * 8 < m {
                        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                        var row = kt + g * 8
                        for d in 0..<hd {
                            let qd = SIMD8<Float>(repeating: qi[d])
                            a0.addProduct(qd, load(row)); a1.addProduct(qd, load(row + 8))
                            a2.addProduct(qd, load(row + 16)); a3.addProduct(qd, load(row + 24))
                            row += cols
                        }
                        store(a0 * scale, scores + g * 8); store(a1 * scale, scores + g * 8 + 8)
                        store(a2 * scale, scores + g * 8 + 16); store(a3 * scale, scores + g * 8 + 24)
                        g += 4
                    }
                    Softmax.softmaxRow(scores, m)
                    let oi = o0 + i * w
                    var c = 0
                    while c + 16 <= hd {
                        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
                        var vj = v0 + c
                        for j in 0..<m {
                            let p = SIMD8<Float>(repeating: scores[j])
                            a0.addProduct(p, load(vj)); a1.addProduct(p, load(vj + 8))
                            vj += stride
                        }
                        store(a0, oi + c); store(a1, oi + c + 8)
                        c += 16
                    }
                    if c < hd {  // hd % 16 == 8
                        var a0 = SIMD8<Float>()
                        var vj = v0 + c
                        for j in 0..<m { a0.addProduct(SIMD8<Float>(repeating: scores[j]), load(vj)); vj += stride }
                        store(a0, oi + c)
                    }
                }
            }
        }
    }

    /// Attention with hidden keys: plain loops (CoCa's text tower, 77 positions). A query whose keys are all hidden
    /// gets NaN, as torch's softmax over an all -inf row does.
    static func masked(_ out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, width w: Int, heads: Int,
                       segments: [Range<Int>], causal: Bool, scale: Float, keyMasks: [[Bool]]) {
        let hd = w / heads, stride = 3 * w
        precondition(keyMasks.count == segments.count && zip(keyMasks, segments).allSatisfy { $0.count == $1.count })
        parallelFor(segments.count * heads) { task in
            let s = task / heads, seg = segments[s], h = task % heads, mask = keyMasks[s]
            let n = seg.count
            let q0 = qkv + seg.lowerBound * stride + h * hd, k0 = q0 + w, v0 = q0 + 2 * w
            withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { sc in
                let scores = sc.baseAddress!
                for i in 0..<n {
                    let m = causal ? i + 1 : n
                    for j in 0..<m {
                        scores[j] = mask[j] ? -.infinity : scale * Vec.dot(q0 + i * stride, k0 + j * stride, hd)
                    }
                    Softmax.softmaxRow(scores, m)
                    let o = out + (seg.lowerBound + i) * w + h * hd
                    for d in 0..<hd { o[d] = 0 }
                    for j in 0..<m where !mask[j] { Vec.axpy(o, scores[j], v0 + j * stride, hd) }
                    if mask[0..<m].allSatisfy({ $0 }) { for d in 0..<hd { o[d] = .nan } }
                }
            }
        }
    }

    /// One query attending over each image's tokens, the pooling step of SigLIP's MAP head and CoCa's attentional
    /// pooler: out[i] (width e) = softmax(scale q k^T) v per head, over the t rows of `kv` [b * t, 2e] (keys, then
    /// values) that belong to image i; `q` [e] is the same for every image.
    static func probe(query q: [Float], kv: [Float], images b: Int, tokens t: Int, width e: Int, heads: Int) -> [Float] {
        probe(query: q, kv: kv, segments: (0..<b).map { ($0 * t)..<(($0 + 1) * t) }, width: e, heads: heads)
    }

    /// The same over sequences of different lengths: `segments` are the row ranges of kv, one output row each.
    static func probe(query q: [Float], kv: [Float], segments: [Range<Int>], width e: Int, heads: Int) -> [Float] {
        let hd = e / heads, scale = 1 / Float(hd).squareRoot(), b = segments.count
        var out = [Float](repeating: 0, count: b * e)
        kv.withUnsafeBufferPointer { kvb in q.withUnsafeBufferPointer { qb in out.withUnsafeMutableBufferPointer { ob in
            nonisolated(unsafe) let kvp = kvb.baseAddress!, qp = qb.baseAddress!, op = ob.baseAddress!
            parallelFor(b * heads) { task in
                let img = task / heads, h = task % heads, seg = segments[img], t = seg.count
                withUnsafeTemporaryAllocation(of: Float.self, capacity: t) { sc in
                    let scores = sc.baseAddress!
                    for j in 0..<t { scores[j] = scale * Vec.dot(qp + h * hd, kvp + (seg.lowerBound + j) * 2 * e + h * hd, hd) }
                    Softmax.softmaxRow(scores, t)
                    let o = op + img * e + h * hd
                    for d in 0..<hd { o[d] = 0 }
                    for j in 0..<t { Vec.axpy(o, scores[j], kvp + (seg.lowerBound + j) * 2 * e + e + h * hd, hd) }
                }
            }
        } } }
        return out
    }

    /// Tensors' per-query kernel, for head sizes the SIMD tiles do not fit.
    static func general(_ out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, width w: Int, heads: Int,
                        segments: [Range<Int>], causal: Bool, scale: Float) {
        let hd = w / heads
        let shape = AttentionShape(heads: heads, kvHeads: heads, headDim: hd)
        let longest = segments.map(\.count).max() ?? 0
        let causalPositions = Array(0..<longest)
        for seg in segments {
            let n = seg.count
            let base = qkv + seg.lowerBound * 3 * w
            let full = [Int](repeating: n - 1, count: n)
            (causal ? causalPositions : full).withUnsafeBufferPointer { pos in
                Attention.forward(out + seg.lowerBound * w, outStride: w, q: base, qStride: 3 * w,
                                  keys: base + w, values: base + 2 * w, kvStride: 3 * w,
                                  queryPositions: pos.baseAddress!, rows: n, shape: shape, scale: scale)
            }
        }
    }

    @inline(__always) private static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) private static func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) private static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
}
