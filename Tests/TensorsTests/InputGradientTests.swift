// dX = dY W through the panel formats: the slice kernel on both ISAs (same bits), and W^T rebuilt in Float
// panels for the forward kernel, each against a Double loop on odd shapes (partial last panels, n below
// and above a 64-panel chunk, rows not a multiple of the tile).
import XCTest
@testable import Tensors

extension QuantPanelTests {
    func testInputGradientKernelSameBitsOnBothISAs() throws {
        guard KernelISA.cpuHasAVX512 else { throw XCTSkip("this CPU has no AVX-512: only the AVX2 kernel can run here") }
        let saved = KernelISA.avx512
        defer { KernelISA.avx512 = saved }
        var rng = RandomStream(seed: 21)
        for (n, k) in [(37, 48), (1040 + 16 * 4, 64), (192, 576)] {
            let (qp, weight) = randomQuantWeight(n: n, k: k, &rng)
            let fp = PackedWeight(n: n, k: k) { r, dst in for c in 0..<k { dst[c] = weight(r, c) } }
            for m in [1, 7, 50] {
                let dy = (0..<(m * n)).map { _ in rng.nextFloat() * 2 - 1 }
                var results: [[UInt32]] = []
                for isa in [false, true] {
                    KernelISA.avx512 = isa
                    for quant in [true, false] {
                        var dx = [Float](repeating: 0.5, count: m * k)
                        dy.withUnsafeBufferPointer { yp in dx.withUnsafeMutableBufferPointer { xp in
                            if quant { PanelBackward.inputGradient(xp.baseAddress!, yp.baseAddress!, qp, m: m, accumulate: true) }
                            else { PanelBackward.inputGradient(xp.baseAddress!, yp.baseAddress!, fp, m: m, accumulate: true) }
                        } }
                        results.append(dx.map(\.bitPattern))
                    }
                }
                // AVX2 Int8, AVX2 Float, AVX-512 Int8, AVX-512 Float: all four the same bits.
                for r in results.dropFirst() { XCTAssertEqual(r, results[0], "n=\(n) k=\(k) m=\(m)") }
            }
        }
    }

    func testTransposedPanelsGiveDYW() {
        var rng = RandomStream(seed: 22)
        let wt = PackedWeight()  // one buffer refilled for every shape, as training uses it
        for (n, k) in [(37, 48), (80, 96), (192, 576), (16, 16)] {
            let (qp, weight) = randomQuantWeight(n: n, k: k, &rng)
            let fp = PackedWeight(n: n, k: k) { r, dst in for c in 0..<k { dst[c] = weight(r, c) } }
            for m in [1, 33, 50] {
                let dy = (0..<(m * n)).map { _ in rng.nextFloat() * 2 - 1 }
                for quant in [true, false] {
                    if quant { wt.fillTransposed(of: qp) } else { wt.fillTransposed(of: fp) }
                    XCTAssertEqual(wt.n, k); XCTAssertEqual(wt.k, n)
                    var dx = [Float](repeating: .nan, count: m * k)
                    dy.withUnsafeBufferPointer { yp in dx.withUnsafeMutableBufferPointer { xp in
                        PackedGEMM.linear(xp.baseAddress!, yp.baseAddress!, wt, bias: nil, m: m)
                    } }
                    var worst = 0.0
                    for r in 0..<m { for c in 0..<k {
                        var ref = 0.0
                        for j in 0..<n { ref += Double(dy[r * n + j]) * Double(weight(j, c)) }
                        worst = max(worst, abs(Double(dx[r * k + c]) - ref))
                    } }
                    XCTAssertLessThan(worst, 1e-4, "n=\(n) k=\(k) m=\(m) int8=\(quant)")
                }
            }
        }
    }
}
