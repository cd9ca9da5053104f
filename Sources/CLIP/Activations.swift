// The MLP activations of the CLIP towers over a whole [rows, mlpWidth] buffer, eight lanes at a time:
// QuickGELU (x * sigmoid(1.702 x), OpenAI CLIP and HF checkpoints), exact GELU (OpenCLIP's LAION models, BERT),
// tanh-GELU (SigLIP) and SiLU/swish (EfficientNet).
// The scalar versions in Tensors call expf/erff per element, which cost about as much as a tenth of the
// MLP GEMMs at ViT-B/32's shape; these use Vec.exp8. Erf is Abramowitz & Stegun 7.1.26 (absolute error
// below 1.5e-7, i.e. within float rounding of GELU's output scale). Every activation the engine knows has its SIMD form here.
import Foundation
import Tensors

enum CLIPActivation {
    static func apply(_ kind: Activation, _ x: UnsafeMutablePointer<Float>, count n: Int) {
        switch kind {
        case .quickGelu: run(x, n, quickGELU8, { $0 / (1 + expf(-1.702 * $0)) })
        case .gelu: run(x, n, gelu8, { 0.5 * $0 * (1 + erff($0 * 0.70710678118654752440)) })
        case .silu: run(x, n, silu8, { $0 / (1 + expf(-$0)) })
        case .geluTanh: run(x, n, geluTanh8, { kind.apply($0) })
        }
    }

    private static func run(_ x: UnsafeMutablePointer<Float>, _ n: Int,
                            _ f8: (SIMD8<Float>) -> SIMD8<Float>, _ f: (Float) -> Float) {
        // Chunks of whole SIMD8 groups so each thread's tail is the array's tail only.
        parallelChunks((n + 7) / 8, minPerChunk: 4096) { r in
            let start = r.lowerBound * 8, end = min(n, r.upperBound * 8)
            var i = start
            while i + 8 <= end {
                let p = UnsafeMutableRawPointer(x + i)
                p.storeBytes(of: f8(p.loadUnaligned(as: SIMD8<Float>.self)), as: SIMD8<Float>.self)
                i += 8
            }
            while i < end { x[i] = f(x[i]); i += 1 }
        }
    }

    @inline(__always)
    static func quickGELU8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // exp8 saturates to +inf for large -1.702x, giving x / inf = -0, as torch does.
        x / (1 + Vec.exp8(-1.702 * x))
    }

    @inline(__always)
    static func silu8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        x / (1 + Vec.exp8(-x))
    }

    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), tanh(z) = 1 - 2 / (exp(2z) + 1) (exp8 saturating at
    /// both ends gives tanh = +-1 exactly).
    @inline(__always)
    static func geluTanh8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let z = 0.79788456080286535588 * (x + 0.044715 * x * x * x)
        let onePlusTanh = 2 - 2 / (Vec.exp8(2 * z) + 1)
        return 0.5 * x * onePlusTanh
    }

    /// 1 / (1 + exp(-x)), for squeeze-and-excitation gates.
    static func sigmoid(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        run(x, n, { 1 / (1 + Vec.exp8(-$0)) }, { 1 / (1 + expf(-$0)) })
    }

    @inline(__always)
    static func gelu8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let z = x * 0.70710678118654752440
        let a = z.replacing(with: -z, where: z .< 0)
        let t = 1 / (1 + 0.3275911 * a)
        var poly = SIMD8<Float>(repeating: 1.061405429)
        poly = poly * t - 1.453152027
        poly = poly * t + 1.421413741
        poly = poly * t - 0.284496736
        poly = poly * t + 0.254829592
        poly = poly * t
        var erf = 1 - poly * Vec.exp8(-a * a)
        erf.replace(with: -erf, where: z .< 0)
        return 0.5 * x * (1 + erf)
    }
}
