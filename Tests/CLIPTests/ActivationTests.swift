// The vectorised QuickGELU, GELU, tanh-GELU and SiLU of the VLM towers against the formulas in Double, on odd sizes (the
// SIMD body, the scalar tail and both together) and on values from deep negative to deep positive.
import Foundation
import XCTest
@testable import CLIP
import Tensors

final class ActivationTests: XCTestCase {
    func reference(_ kind: Activation, _ x: Double) -> Double {
        switch kind {
        case .quickGelu: return x / (1 + exp(-1.702 * x))
        case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case .geluTanh: return 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case .silu: return x / (1 + exp(-x))
        }
    }

    func testVectorisedActivationsMatchDoubleFormulas() {
        var rng = RandomStream(seed: 5)
        for kind in [Activation.quickGelu, .gelu, .geluTanh, .silu] {
            for n in [1, 3, 7, 8, 17, 33, 4099, 40_000] {
                var x = (0..<n).map { _ in (rng.nextFloat() * 2 - 1) * 12 }
                let specials: [Float] = [0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 60, -60, 100, -100, 1e4, -1e4]
                for (i, s) in specials.enumerated() where i < n { x[i * 3 % n] = s }
                var y = x
                y.withUnsafeMutableBufferPointer { CLIPActivation.apply(kind, $0.baseAddress!, count: n) }
                var worst = 0.0
                for (xi, yi) in zip(x, y) {
                    let want = reference(kind, Double(xi))
                    let err = abs(Double(yi) - want) / max(1, abs(Double(xi)))
                    worst = max(worst, err)
                    XCTAssertFalse(yi.isNaN, "\(kind) \(xi) gave NaN")
                }
                // float rounding of the result is ~6e-8 relative; erf's approximation adds up to 7.5e-8 |x|.
                XCTAssertLessThan(worst, 4e-7, "\(kind) n=\(n): worst error \(worst) (relative to max(1, |x|))")
            }
        }
    }
}
