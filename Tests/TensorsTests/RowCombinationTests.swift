// The row kernels of the LoRA backward (Vec.combineRows4, Vec.addOuterProducts): the bits of the one-row
// kernels they replace, and a Double loop's values within rounding.
import Foundation
import Tensors
import XCTest

final class RowCombinationTests: XCTestCase {
    var rng = RandomStream(seed: 7)

    func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in rng.nextFloat() * 2 - 1 } }
    func bits(_ v: [Float]) -> [UInt32] { v.map { $0.bitPattern } }

    func assertClose(_ a: [Float], _ b: [Double], tol: Double, _ msg: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, msg, file: file, line: line)
        let worst = zip(a, b).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tol, "\(msg): worst relative error \(worst)", file: file, line: line)
    }

    /// The LoRA backward's four-at-once weighted row sums and register-held outer-product sums: each
    /// output has the bits of the one-row kernels they replace (combineRows; a run of axpy calls) and is
    /// close to a Double loop, on sizes that exercise the 16-, 8-wide and scalar parts.
    func testCombineRows4AndOuterProductsKeepTheOneRowBits() {
        for (m, n) in [(1, 1), (5, 7), (17, 16), (33, 25), (100, 40)] {
            let M = randoms(m * n), cStride = 3, cNext = 2
            let c = randoms(cStride * m + 3 * cNext)
            var y4 = [Float](repeating: .nan, count: 4 * (n + 1))
            c.withUnsafeBufferPointer { cb in M.withUnsafeBufferPointer { mb in y4.withUnsafeMutableBufferPointer { yb in
                Vec.combineRows4(yb.baseAddress!, yStride: n + 1, cb.baseAddress!, cStride: cStride, cNext: cNext,
                                 mb.baseAddress!, ldm: n, m: m, n: n)
            } } }
            for q in 0..<4 {
                var y1 = [Float](repeating: 0, count: n)
                c.withUnsafeBufferPointer { cb in M.withUnsafeBufferPointer { mb in y1.withUnsafeMutableBufferPointer { yb in
                    Vec.combineRows(yb.baseAddress!, cb.baseAddress! + q * cNext, cStride: cStride, mb.baseAddress!, ldm: n, m: m, n: n)
                } } }
                XCTAssertEqual(bits(Array(y4[(q * (n + 1))..<(q * (n + 1) + n)])), bits(y1), "combineRows4 m=\(m) n=\(n) q=\(q)")
                var ref = [Double](repeating: 0, count: n)
                for j in 0..<n { for i in 0..<m { ref[j] += Double(c[q * cNext + i * cStride]) * Double(M[i * n + j]) } }
                assertClose(y1, ref, tol: 1e-5, "combineRows m=\(m) n=\(n)")
            }
            // y[j, :] += sum_t c[t * ldc + j * cj] x[t, :], against the axpy loop it replaces, in both layouts.
            for (r, ldc, cj) in [(6, 6, 1), (5, 1, m)] {
                let x = randoms(m * n), cc = randoms(max(m * ldc, r * cj) + r), y0 = randoms(r * n)
                var fast = y0, slow = y0
                cc.withUnsafeBufferPointer { cb in x.withUnsafeBufferPointer { xb in
                    fast.withUnsafeMutableBufferPointer { yb in
                        Vec.addOuterProducts(yb.baseAddress!, ldy: n, cb.baseAddress!, ldc: ldc, cj: cj, xb.baseAddress!, ldx: n, m: m, r: r, n: n)
                    }
                    slow.withUnsafeMutableBufferPointer { yb in
                        for t in 0..<m { for j in 0..<r { Vec.axpy(yb.baseAddress! + j * n, cb[t * ldc + j * cj], xb.baseAddress! + t * n, n) } }
                    }
                } }
                XCTAssertEqual(bits(fast), bits(slow), "addOuterProducts m=\(m) n=\(n) r=\(r)")
                var ref = y0.map(Double.init)
                for j in 0..<r { for i in 0..<n { for t in 0..<m { ref[j * n + i] += Double(cc[t * ldc + j * cj]) * Double(x[t * n + i]) } } }
                assertClose(fast, ref, tol: 1e-5, "addOuterProducts m=\(m) n=\(n)")
            }
        }
    }
}
