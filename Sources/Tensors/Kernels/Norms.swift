// RMSNorm (Llama, Gemma) and LayerNorm (CLIP) over the last dimension. Forward passes can save the
// per-row statistics (rstd, mean) that a backward pass needs, llm.c style: pass nil when not training.
import Foundation

public enum Norms {
    /// out[r,:] = x[r,:] / sqrt(mean(x^2) + eps) * weight  (as transformers' LlamaRMSNorm, in fp32).
    /// `rstd` (rows) receives 1/sqrt(mean(x^2)+eps) when given. `out` may equal `x`.
    public static func rmsNorm(_ out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>? = nil,
                               _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                               rows: Int, dim: Int, eps: Float) {
        parallelFor(rows, minPerChunk: max(1, 4096 / max(dim, 1))) { r in
            let xr = x + r * dim, orow = out + r * dim
            let ms = Vec.sumOfSquares(xr, dim) / Float(dim)
            let s = 1 / (ms + eps).squareRoot()
            rstd?[r] = s
            if let weight {
                let sv = SIMD8<Float>(repeating: s)
                var i = 0
                while i + 8 <= dim { store8(orow + i, load8(xr + i) * sv * load8(weight + i)); i += 8 }
                while i < dim { orow[i] = xr[i] * s * weight[i]; i += 1 }
            } else {
                let sv = SIMD8<Float>(repeating: s)
                var i = 0
                while i + 8 <= dim { store8(orow + i, load8(xr + i) * sv); i += 8 }
                while i < dim { orow[i] = xr[i] * s; i += 1 }
            }
        }
    }

    /// Backward of `rmsNorm`: given dy = dL/d(out), dx = s w dy - x s^3 / dim * sum(w dy x), with s the
    /// saved `rstd`. Adds into dx when `accumulate`; dx may be dy itself when not accumulating.
    public static func rmsNormBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                       x: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                       weight: UnsafePointer<Float>?, rows: Int, dim: Int, accumulate: Bool = false) {
        parallelFor(rows, minPerChunk: max(1, 8192 / max(dim, 1))) { r in
            let xr = x + r * dim, g = dy + r * dim, out = dx + r * dim
            let s = rstd[r]
            // sum_j w_j dy_j x_j, then the two terms.
            var acc = SIMD8<Float>()
            var i = 0
            while i + 8 <= dim {
                let wg = weight.map { load8($0 + i) * load8(g + i) } ?? load8(g + i)
                acc.addProduct(wg, load8(xr + i)); i += 8
            }
            var dot = acc.sum()
            while i < dim { dot += (weight?[i] ?? 1) * g[i] * xr[i]; i += 1 }
            let c = dot * s * s * s / Float(dim)
            for j in 0..<dim {
                let v = s * (weight?[j] ?? 1) * g[j] - xr[j] * c
                out[j] = accumulate ? out[j] + v : v
            }
        }
    }

    /// out[r,:] = (x - mean) / sqrt(var + eps) * weight + bias (biased variance, as torch.nn.LayerNorm).
    public static func layerNorm(_ out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>? = nil,
                                 rstd: UnsafeMutablePointer<Float>? = nil, _ x: UnsafePointer<Float>,
                                 weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                 rows: Int, dim: Int, eps: Float) {
        parallelFor(rows, minPerChunk: max(1, 4096 / max(dim, 1))) { r in
            let xr = x + r * dim, orow = out + r * dim
            let m = Vec.sum(xr, dim) / Float(dim)
            // Two-pass variance: the one-pass E[x^2]-m^2 loses digits on CLIP's large activations.
            var v: Float = 0
            do {
                let mv = SIMD8<Float>(repeating: m)
                var acc = SIMD8<Float>()
                var i = 0
                while i + 8 <= dim { let d = load8(xr + i) - mv; acc.addProduct(d, d); i += 8 }
                v = acc.sum()
                while i < dim { let d = xr[i] - m; v += d * d; i += 1 }
                v /= Float(dim)
            }
            let s = 1 / (v + eps).squareRoot()
            mean?[r] = m
            rstd?[r] = s
            for i in 0..<dim {
                var y = (xr[i] - m) * s
                if let weight { y *= weight[i] }
                if let bias { y += bias[i] }
                orow[i] = y
            }
        }
    }
}
