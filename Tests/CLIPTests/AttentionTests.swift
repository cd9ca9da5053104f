// The CLIP attention kernel (SIMD tiles, and the general path for head sizes not a multiple of 8) against
// softmax attention written out in Double, on ragged segments of odd lengths, causal and bidirectional.
import XCTest
@testable import CLIP
import Tensors

final class AttentionTests: XCTestCase {
    func reference(qkv: [Float], width w: Int, heads: Int, segments: [Range<Int>], causal: Bool) -> [Double] {
        let hd = w / heads
        let scale = 1 / Double(hd).squareRoot()
        var out = [Double](repeating: 0, count: (segments.last?.upperBound ?? 0) * w)
        for seg in segments {
            for i in seg {
                for h in 0..<heads {
                    let keys = causal ? seg.lowerBound...i : seg.lowerBound...(seg.upperBound - 1)
                    var s: [Double] = keys.map { j in
                        var d = 0.0
                        for k in 0..<hd { d += Double(qkv[i * 3 * w + h * hd + k]) * Double(qkv[j * 3 * w + w + h * hd + k]) }
                        return d * scale
                    }
                    let m = s.max()!
                    s = s.map { exp($0 - m) }
                    let z = s.reduce(0, +)
                    for (p, j) in zip(s, keys) {
                        for k in 0..<hd { out[i * w + h * hd + k] += p / z * Double(qkv[j * 3 * w + 2 * w + h * hd + k]) }
                    }
                }
            }
        }
        return out
    }

    func testMatchesDoubleReference() {
        var rng = RandomStream(seed: 9)
        for (heads, hd) in [(1, 8), (2, 16), (3, 24), (2, 64), (1, 40), (2, 12), (1, 3)] {
            for causal in [false, true] {
                let lengths = [1, 3, 7, 17, 33, 50, 2]
                var segments: [Range<Int>] = []
                var rows = 0
                for n in lengths { segments.append(rows..<(rows + n)); rows += n }
                let w = heads * hd
                // Scores of a few units, as in real models, so the softmax is neither flat nor one-hot.
                let qkv = (0..<(rows * 3 * w)).map { _ in rng.nextGaussian() * 0.8 }
                var out = [Float](repeating: .nan, count: rows * w)
                qkv.withUnsafeBufferPointer { q in out.withUnsafeMutableBufferPointer { o in
                    CLIPAttention.forward(o.baseAddress!, qkv: q.baseAddress!, width: w, heads: heads,
                                          segments: segments, causal: causal, scale: 1 / Float(hd).squareRoot())
                } }
                let want = reference(qkv: qkv, width: w, heads: heads, segments: segments, causal: causal)
                XCTAssertFalse(out.contains { !$0.isFinite }, "heads \(heads) x \(hd), causal \(causal): a row was not written")
                var worst = 0.0
                for (a, b) in zip(out, want) { worst = max(worst, abs(Double(a) - b)) }
                XCTAssertLessThan(worst, 2e-5, "heads \(heads) x \(hd), causal \(causal): worst difference \(worst)")
            }
        }
    }
}
