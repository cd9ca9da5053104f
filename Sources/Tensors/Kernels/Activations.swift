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

    /// Backward of `gated`: with out = act(gate) * up, dGate = dOut * up * act'(gate) and dUp = dOut * act(gate),
    /// all [rows, n] contiguous. dGate/dUp may be the dOut buffer itself (each element is read before written).
    public func gatedBackward(dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                              gate: UnsafePointer<Float>, up: UnsafePointer<Float>, rows: Int, n: Int) {
        parallelChunks(rows * n, minPerChunk: 16384) { range in
            var i = range.lowerBound
            if self == .silu || self == .geluTanh {
                while i + 8 <= range.upperBound {
                    let x = load8(gate + i), u = load8(up + i), d = load8(dOut + i)
                    let a: SIMD8<Float>, da: SIMD8<Float>
                    if self == .silu {
                        // s = sigmoid(x); silu = x s; silu' = s (1 + x (1 - s)).
                        let s = 1 / (1 + Vec.exp8(-x))
                        a = x * s; da = s * (1 + x * (1 - s))
                    } else {
                        // 0.5 x (1 + t), t = tanh(c), c = k0 (x + k1 x^3); d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) k0 (1 + 3 k1 x^2).
                        let k0 = SIMD8<Float>(repeating: 0.79788456080286535588), k1 = SIMD8<Float>(repeating: 0.044715)
                        let c = k0 * (x + k1 * x * x * x)
                        let onePlusT = 2 - 2 / (Vec.exp8(2 * c) + 1)
                        let t = onePlusT - 1
                        a = 0.5 * x * onePlusT
                        let half = SIMD8<Float>(repeating: 0.5), one = SIMD8<Float>(repeating: 1)
                        let x2: SIMD8<Float> = x * x
                        let dc: SIMD8<Float> = k0 * (one + 3 * k1 * x2)
                        let sech2: SIMD8<Float> = one - t * t
                        da = half * onePlusT + half * x * sech2 * dc
                    }
                    store8(dGate + i, d * u * da)
                    store8(dUp + i, d * a)
                    i += 8
                }
            }
            while i < range.upperBound {
                let x = gate[i], u = up[i], d = dOut[i]
                dGate[i] = d * u * derivative(x)
                dUp[i] = d * apply(x)
                i += 1
            }
        }
    }
}
