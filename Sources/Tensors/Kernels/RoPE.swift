// Rotary position embedding, in both layouts found in checkpoints: HF's rotate-half (pairs i and i+d/2 of a
// head) and GGUF/llama.cpp's interleaved pairs (2i, 2i+1), which is what a Llama q/k weight permuted by
// llama.cpp's converter expects. Angles are computed in Float exactly as transformers does
// (inv_freq = 1 / base^(2i/d) in fp32, angle = position * inv_freq in fp32) so positions far into the
// context round the same way.
import Foundation

public enum RoPEConvention: Sendable { case rotateHalf, interleaved }

public struct RoPE: Sendable {
    public let rotaryDim: Int
    public let invFreq: [Float]
    public let convention: RoPEConvention

    /// `scaling` divides the frequencies (linear position interpolation: positions / factor).
    public init(rotaryDim: Int, base: Float, convention: RoPEConvention = .rotateHalf, linearScaling: Float = 1) {
        precondition(rotaryDim % 2 == 0, "rotary dimension must be even")
        self.rotaryDim = rotaryDim
        self.convention = convention
        var f = [Float](repeating: 0, count: rotaryDim / 2)
        for i in 0..<rotaryDim / 2 {
            // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)) — the exponent and power in fp32.
            let e = Float(2 * i) / Float(rotaryDim)
            f[i] = (1 / powf(base, e)) / linearScaling
        }
        invFreq = f
    }

    /// Rotates `heads` heads of size `headDim` in each of `rows` rows (row stride `stride`) in place;
    /// row r sits at position positions[r]. `inverse` rotates by minus the angle: the rotation is
    /// orthogonal, so that is its backward (the gradient of the rotated vector, rotated back).
    public func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int, heads: Int, headDim: Int,
                      positions: UnsafePointer<Int>, inverse: Bool = false) {
        let half = rotaryDim / 2
        parallelFor(rows, minPerChunk: 8) { r in
            var cosv = [Float](repeating: 0, count: half), sinv = [Float](repeating: 0, count: half)
            let p = Float(positions[r])
            for i in 0..<half { let a = p * invFreq[i]; cosv[i] = cosf(a); sinv[i] = inverse ? -sinf(a) : sinf(a) }
            for h in 0..<heads {
                let v = x + r * stride + h * headDim
                switch convention {
                case .rotateHalf:
                    for i in 0..<half {
                        let a = v[i], b = v[i + half]
                        v[i] = a * cosv[i] - b * sinv[i]
                        v[i + half] = b * cosv[i] + a * sinv[i]
                    }
                case .interleaved:
                    for i in 0..<half {
                        let a = v[2 * i], b = v[2 * i + 1]
                        v[2 * i] = a * cosv[i] - b * sinv[i]
                        v[2 * i + 1] = b * cosv[i] + a * sinv[i]
                    }
                }
            }
        }
    }
}
