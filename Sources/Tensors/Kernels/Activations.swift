// Pointwise activations used by the model families: SiLU (Llama's SwiGLU), GELU exact (erf, LAION CLIP),
// GELU tanh approximation (Gemma's GeGLU, "gelu_pytorch_tanh"), QuickGELU (OpenAI CLIP), and the gated
// products out = act(gate) * up that Llama and Gemma MLPs use.
import Foundation

public enum Activation: String, Sendable, Codable {
    case silu, gelu, geluTanh = "gelu_pytorch_tanh", quickGelu = "quick_gelu"

    /// Maps the config strings of transformers/open_clip to an activation.
    public init?(configName: String) {
        switch configName {
        case "silu", "swish": self = .silu
        case "gelu": self = .gelu
        case "gelu_pytorch_tanh", "gelu_new", "gelu_fast", "gelu_tanh": self = .geluTanh
        case "quick_gelu": self = .quickGelu
        default: return nil
        }
    }

    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .silu: return x / (1 + expf(-x))
        case .gelu: return 0.5 * x * (1 + erff(x * 0.70710678118654752440))
        case .geluTanh:
            let c: Float = 0.79788456080286535588  // sqrt(2/pi)
            return 0.5 * x * (1 + tanhf(c * (x + 0.044715 * x * x * x)))
        case .quickGelu: return x / (1 + expf(-1.702 * x))
        }
    }

    /// Derivative d act(x) / dx, for the backward passes to come.
    @inline(__always)
    public func derivative(_ x: Float) -> Float {
        switch self {
        case .silu:
            let s = 1 / (1 + expf(-x)); return s * (1 + x * (1 - s))
        case .gelu:
            let cdf = 0.5 * (1 + erff(x * 0.70710678118654752440))
            let pdf = expf(-0.5 * x * x) * 0.39894228040143267794
            return cdf + x * pdf
        case .geluTanh:
            let c: Float = 0.79788456080286535588
            let u = c * (x + 0.044715 * x * x * x)
            let t = tanhf(u)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
        case .quickGelu:
            let s = 1 / (1 + expf(-1.702 * x)); return s + x * 1.702 * s * (1 - s)
        }
    }

    /// In place over n values.
    public func apply(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        parallelChunks(n, minPerChunk: 16384) { r in for i in r { x[i] = apply(x[i]) } }
    }

    /// out[r, i] = act(gate[r, i]) * up[r, i]; `gate`/`up` are rows of width `n` at strides `gateStride`/`upStride`.
    public func gated(_ out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, gateStride: Int,
                      up: UnsafePointer<Float>, upStride: Int, rows: Int, n: Int) {
        parallelFor(rows, minPerChunk: max(1, 16384 / max(n, 1))) { r in
            let g = gate + r * gateStride, u = up + r * upStride, o = out + r * n
            var i = 0
            if self == .silu {
                // SiLU with the vectorised exp: x / (1 + e^-x).
                while i + 8 <= n {
                    let x = load8(g + i)
                    store8(o + i, x / (1 + Vec.exp8(-x)) * load8(u + i))
                    i += 8
                }
            } else if self == .geluTanh {
                // 0.5 x (1 + tanh(c)), with 1 + tanh(c) = 2 - 2 / (e^(2c) + 1).
                let k0 = SIMD8<Float>(repeating: 0.79788456080286535588), k1 = SIMD8<Float>(repeating: 0.044715)
                while i + 8 <= n {
                    let x = load8(g + i)
                    let c = k0 * (x + k1 * x * x * x)
                    let onePlusTanh = 2 - 2 / (Vec.exp8(2 * c) + 1)
                    store8(o + i, 0.5 * x * onePlusTanh * load8(u + i))
                    i += 8
                }
            }
            while i < n { o[i] = apply(g[i]) * u[i]; i += 1 }
        }
    }
}
