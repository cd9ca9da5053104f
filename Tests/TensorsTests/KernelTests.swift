// Each fast kernel against a plain Double-precision loop written from the textbook formula, on odd sizes
// (1, 3, 7, 17, 33, ...) so every SIMD tail runs. Tolerances are relative to the values' scale.
import Foundation
import Tensors
import XCTest

final class KernelTests: XCTestCase {
    let sizes = [1, 3, 7, 8, 17, 33, 100]
    var rng = RandomStream(seed: 42)

    func randoms(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in (rng.nextFloat() * 2 - 1) * scale } }

    func assertClose(_ a: [Float], _ b: [Double], tol: Double, _ msg: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, msg, file: file, line: line)
        let worst = zip(a, b).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tol, "\(msg): worst relative error \(worst)", file: file, line: line)
    }

    func testGEMMAllTranspositions() {
        for (m, n, k) in [(1, 1, 1), (3, 7, 17), (17, 33, 7), (33, 3, 100)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    let a = randoms(m * k), b = randoms(k * n), c0 = randoms(m * n)
                    var c = c0
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                        BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: ap.baseAddress!, lda: ta ? m : k,
                                  b: bp.baseAddress!, ldb: tb ? k : n, beta: 2, c: cp.baseAddress!, ldc: n)
                    } } }
                    var ref = [Double](repeating: 0, count: m * n)
                    for i in 0..<m {
                        for j in 0..<n {
                            var s = 0.0
                            for p in 0..<k {
                                let av = ta ? a[p * m + i] : a[i * k + p]
                                let bv = tb ? b[j * k + p] : b[p * n + j]
                                s += Double(av) * Double(bv)
                            }
                            ref[i * n + j] = 0.5 * s + 2 * Double(c0[i * n + j])
                        }
                    }
                    assertClose(c, ref, tol: 1e-5, "gemm m=\(m) n=\(n) k=\(k) ta=\(ta) tb=\(tb)")
                }
            }
        }
    }

    func testLinearWithBias() {
        let m = 5, n = 17, k = 33
        let x = randoms(m * k), w = randoms(n * k), b = randoms(n)
        var y = [Float](repeating: 0, count: m * n)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in b.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { yp in
            BLAS.linear(yp.baseAddress!, xp.baseAddress!, wp.baseAddress!, bias: bp.baseAddress!, m: m, n: n, k: k)
        } } } }
        var ref = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            ref[i * n + j] = Double(b[j]) + (0..<k).reduce(0.0) { $0 + Double(x[i * k + $1]) * Double(w[j * k + $1]) }
        } }
        assertClose(y, ref, tol: 1e-5, "linear")
    }

    func testPackedAndSmallBatchGEMMAgainstNaive() {
        // Odd shapes: rows not a multiple of 6 (packed) or 2 (small batch), outputs not a multiple of 16 or 4.
        for (m, n, k) in [(1, 1, 8), (5, 17, 24), (7, 33, 40), (13, 16, 8), (32, 50, 64)] {
            let x = randoms(m * k), w = randoms(n * k), b = randoms(n)
            var ref = [Double](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n {
                ref[i * n + j] = Double(b[j]) + (0..<k).reduce(0.0) { $0 + Double(x[i * k + $1]) * Double(w[j * k + $1]) }
            } }
            let packed = w.withUnsafeBufferPointer { wp in
                nonisolated(unsafe) let base = wp.baseAddress!
                return PackedWeight(n: n, k: k) { r, dst in dst.update(from: base + r * k, count: k) }
            }
            var y1 = [Float](repeating: .nan, count: m * n), y2 = y1
            x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in b.withUnsafeBufferPointer { bp in
                y1.withUnsafeMutableBufferPointer { PackedGEMM.linear($0.baseAddress!, xp.baseAddress!, packed, bias: bp.baseAddress!, m: m) }
                y2.withUnsafeMutableBufferPointer { SmallBatchGEMM.linear($0.baseAddress!, xp.baseAddress!, wp.baseAddress!, bias: bp.baseAddress!, m: m, n: n, k: k) }
            } } }
            assertClose(y1, ref, tol: 1e-5, "packed m=\(m) n=\(n) k=\(k)")
            assertClose(y2, ref, tol: 1e-5, "small batch m=\(m) n=\(n) k=\(k)")
            var row = [Float](repeating: 0, count: k)
            row.withUnsafeMutableBufferPointer { packed.row(n - 1, into: $0.baseAddress!) }
            XCTAssertEqual(row, Array(w[(n - 1) * k..<n * k]), "row gathered back from the panels")
        }
    }

    func testVectorHelpers() {
        for n in sizes {
            let a = randoms(n), b = randoms(n)
            let dot = a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { Vec.dot(ap.baseAddress!, $0.baseAddress!, n) } }
            XCTAssertEqual(Double(dot), zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }, accuracy: 1e-5, "dot n=\(n)")
            let mx = a.withUnsafeBufferPointer { Vec.max($0.baseAddress!, n) }
            XCTAssertEqual(mx, a.max()!, "max n=\(n)")
            var y = a
            y.withUnsafeMutableBufferPointer { yp in b.withUnsafeBufferPointer { Vec.axpy(yp.baseAddress!, 0.25, $0.baseAddress!, n) } }
            assertClose(y, zip(a, b).map { Double($0) + 0.25 * Double($1) }, tol: 1e-6, "axpy n=\(n)")
        }
    }

    func testRMSNorm() {
        for dim in sizes {
            let rows = 3, eps: Float = 1e-6
            let x = randoms(rows * dim, scale: 3), w = randoms(dim)
            var out = [Float](repeating: 0, count: rows * dim), rstd = [Float](repeating: 0, count: rows)
            x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in out.withUnsafeMutableBufferPointer { op in rstd.withUnsafeMutableBufferPointer { rp in
                Norms.rmsNorm(op.baseAddress!, rstd: rp.baseAddress!, xp.baseAddress!, weight: wp.baseAddress!, rows: rows, dim: dim, eps: eps)
            } } } }
            var ref = [Double]()
            for r in 0..<rows {
                let row = x[r * dim..<(r + 1) * dim].map(Double.init)
                let s = 1 / (row.reduce(0) { $0 + $1 * $1 } / Double(dim) + Double(eps)).squareRoot()
                XCTAssertEqual(Double(rstd[r]), s, accuracy: 1e-5 * s)
                ref += row.enumerated().map { $0.element * s * Double(w[$0.offset]) }
            }
            assertClose(out, ref, tol: 1e-5, "rmsnorm dim=\(dim)")
        }
    }

    func testLayerNorm() {
        for dim in sizes {
            let rows = 2, eps: Float = 1e-5
            let x = randoms(rows * dim, scale: 50).map { $0 + 100 }, w = randoms(dim), b = randoms(dim)
            var out = [Float](repeating: 0, count: rows * dim)
            x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in b.withUnsafeBufferPointer { bp in out.withUnsafeMutableBufferPointer { op in
                Norms.layerNorm(op.baseAddress!, xp.baseAddress!, weight: wp.baseAddress!, bias: bp.baseAddress!, rows: rows, dim: dim, eps: eps)
            } } } }
            var ref = [Double]()
            for r in 0..<rows {
                let row = x[r * dim..<(r + 1) * dim].map(Double.init)
                let mean = row.reduce(0, +) / Double(dim)
                let v = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(dim)
                ref += row.enumerated().map { ($0.element - mean) / (v + Double(eps)).squareRoot() * Double(w[$0.offset]) + Double(b[$0.offset]) }
            }
            assertClose(out, ref, tol: 1e-4, "layernorm dim=\(dim)")
        }
    }

    func testSoftmaxAndLogSumExp() {
        for n in sizes {
            var x = randoms(n, scale: 20)
            let lse = x.withUnsafeBufferPointer { Softmax.logSumExp($0.baseAddress!, n) }
            let m = Double(x.max()!)
            let refLSE = m + log(x.reduce(0.0) { $0 + exp(Double($1) - m) })
            XCTAssertEqual(Double(lse), refLSE, accuracy: 1e-5 * max(1, abs(refLSE)), "logsumexp n=\(n)")
            let ref = x.map { exp(Double($0) - refLSE) }
            x.withUnsafeMutableBufferPointer { Softmax.softmax($0.baseAddress!, rows: 1, n: n) }
            assertClose(x, ref, tol: 1e-6, "softmax n=\(n)")
        }
        var masked: [Float] = [-.infinity, -.infinity]
        masked.withUnsafeMutableBufferPointer { Softmax.softmaxRow($0.baseAddress!, 2) }
        XCTAssertEqual(masked, [0, 0], "a fully masked row gives zeros, not NaN")
    }

    func testActivationsAndDerivatives() {
        let xs: [Float] = [-6, -2.5, -1, -0.3, 0, 0.2, 1, 3.7, 8]
        for x in xs {
            let d = Double(x)
            XCTAssertEqual(Double(Activation.silu.apply(x)), d / (1 + exp(-d)), accuracy: 1e-6)
            XCTAssertEqual(Double(Activation.gelu.apply(x)), 0.5 * d * (1 + erf(d / 2.0.squareRoot())), accuracy: 1e-6)
            XCTAssertEqual(Double(Activation.geluTanh.apply(x)),
                           0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d))), accuracy: 1e-6)
            XCTAssertEqual(Double(Activation.quickGelu.apply(x)), d / (1 + exp(-1.702 * d)), accuracy: 1e-6)
            for act in [Activation.silu, .gelu, .geluTanh, .quickGelu] {
                let h: Float = 1e-2
                let fd = (Double(act.apply(x + h)) - Double(act.apply(x - h))) / Double(2 * h)
                XCTAssertEqual(Double(act.derivative(x)), fd, accuracy: 2e-3, "\(act) derivative at \(x)")
            }
        }
        XCTAssertEqual(Activation(configName: "gelu_pytorch_tanh"), .geluTanh)
        XCTAssertNil(Activation(configName: "relu6"))
    }

    func testGatedActivationsVectorisedPaths() {
        // The SIMD paths (SiLU, tanh-GELU) and the scalar tail against the Double formulas, odd widths.
        for act in [Activation.silu, .geluTanh, .gelu, .quickGelu] {
            for n in sizes {
                let rows = 2
                let g = randoms(rows * n, scale: 6), u = randoms(rows * n)
                var out = [Float](repeating: 0, count: rows * n)
                g.withUnsafeBufferPointer { gp in u.withUnsafeBufferPointer { up in out.withUnsafeMutableBufferPointer { op in
                    act.gated(op.baseAddress!, gate: gp.baseAddress!, gateStride: n, up: up.baseAddress!, upStride: n, rows: rows, n: n)
                } } }
                let ref = zip(g, u).map { (gv, uv) -> Double in
                    let x = Double(gv)
                    let a: Double
                    switch act {
                    case .silu: a = x / (1 + exp(-x))
                    case .gelu: a = 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
                    case .geluTanh: a = 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
                    case .quickGelu: a = x / (1 + exp(-1.702 * x))
                    }
                    return a * Double(uv)
                }
                assertClose(out, ref, tol: 2e-6, "gated \(act) n=\(n)")
            }
        }
    }

    func testRoPEConventionsAgreeUnderThePermutation() {
        // llama.cpp's converter stores q rows so that rotate-half pairs (i, i+d/2) become adjacent pairs
        // (2i, 2i+1); rotating either layout must give the same vector up to that permutation.
        let heads = 3, hd = 8, rows = 4
        let rope = RoPE(rotaryDim: hd, base: 10000, convention: .rotateHalf)
        let ropeI = RoPE(rotaryDim: hd, base: 10000, convention: .interleaved)
        let x = randoms(rows * heads * hd)
        var perm = [Int](repeating: 0, count: hd)
        for i in 0..<hd / 2 { perm[2 * i] = i; perm[2 * i + 1] = i + hd / 2 }
        var a = x
        var b = x.indices.map { j -> Float in let (r, c) = (j / hd, j % hd); return x[r * hd + perm[c]] }
        let positions = [0, 1, 5, 1000]
        positions.withUnsafeBufferPointer { p in
            a.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, rows: rows, stride: heads * hd, heads: heads, headDim: hd, positions: p.baseAddress!) }
            b.withUnsafeMutableBufferPointer { ropeI.apply($0.baseAddress!, rows: rows, stride: heads * hd, heads: heads, headDim: hd, positions: p.baseAddress!) }
        }
        for j in a.indices {
            let (r, c) = (j / hd, j % hd)
            XCTAssertEqual(b[j], a[r * hd + perm[c]], accuracy: 1e-6)
        }
        // And rotate-half against the formula in Double.
        for r in 0..<rows { for h in 0..<heads { for i in 0..<hd / 2 {
            let theta = Double(positions[r]) * pow(10000.0, -Double(2 * i) / Double(hd))
            let base = r * heads * hd + h * hd
            let x1 = Double(x[base + i]), x2 = Double(x[base + i + hd / 2])
            XCTAssertEqual(Double(a[base + i]), x1 * cos(theta) - x2 * sin(theta), accuracy: 2e-3)
            XCTAssertEqual(Double(a[base + i + hd / 2]), x2 * cos(theta) + x1 * sin(theta), accuracy: 2e-3)
        } } }
    }

    func testAttentionGroupedCausalWindowedAgainstNaive() {
        let heads = 4, kvHeads = 2, hd = 7, L = 9
        let shape = AttentionShape(heads: heads, kvHeads: kvHeads, headDim: hd)
        let q = randoms(L * heads * hd), k = randoms(L * kvHeads * hd), v = randoms(L * kvHeads * hd)
        let positions = Array(0..<L)
        for (window, keyStart) in [(nil, 0), (3, 0), (nil, 2), (4, 1)] as [(Int?, Int)] {
            var out = [Float](repeating: 0, count: L * heads * hd)
            q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                out.withUnsafeMutableBufferPointer { op in positions.withUnsafeBufferPointer { pp in
                    Attention.forward(op.baseAddress!, outStride: heads * hd, q: qp.baseAddress!, qStride: heads * hd,
                                      keys: kp.baseAddress!, values: vp.baseAddress!, kvStride: kvHeads * hd,
                                      queryPositions: pp.baseAddress!, rows: L, shape: shape, scale: 0.4,
                                      window: window, keyStart: keyStart)
                } }
            } } }
            var ref = [Double](repeating: 0, count: L * heads * hd)
            for t in 0..<L { for h in 0..<heads {
                let g = h / (heads / kvHeads)
                let keys = (0...t).filter { $0 >= keyStart && (window == nil || t - $0 < window!) }
                if keys.isEmpty { continue }
                let scores = keys.map { j in 0.4 * (0..<hd).reduce(0.0) { $0 + Double(q[t * heads * hd + h * hd + $1]) * Double(k[j * kvHeads * hd + g * hd + $1]) } }
                let m = scores.max()!
                let e = scores.map { exp($0 - m) }, s = e.reduce(0, +)
                for i in 0..<hd {
                    ref[t * heads * hd + h * hd + i] = zip(keys, e).reduce(0.0) { $0 + $1.1 / s * Double(v[$1.0 * kvHeads * hd + g * hd + i]) }
                }
            } }
            assertClose(out, ref, tol: 1e-5, "attention window=\(String(describing: window)) keyStart=\(keyStart)")
        }
    }

    func testHalfPrecisionConversions() {
        // IEEE 754 binary16 and bfloat16 bit patterns.
        XCTAssertEqual(halfToFloat(0x3C00), 1)
        XCTAssertEqual(halfToFloat(0xC000), -2)
        XCTAssertEqual(halfToFloat(0x7BFF), 65504)
        XCTAssertEqual(halfToFloat(0x0001), 5.9604645e-8)  // smallest subnormal
        XCTAssertTrue(halfToFloat(0x7C00).isInfinite)
        XCTAssertEqual(floatToHalf(1), 0x3C00)
        XCTAssertEqual(floatToHalf(65520), 0x7C00, "rounds to infinity past the largest finite half")
        XCTAssertEqual(bf16ToFloat(0x3F80), 1)
        XCTAssertEqual(floatToBF16(1.00390625), 0x3F80, "ties round to even")
        XCTAssertEqual(floatToBF16(1.01171875), 0x3F82, "ties round to even (up)")
        XCTAssertTrue(bf16ToFloat(floatToBF16(.nan)).isNaN)
    }

    func testRandomStreamsAreReproducibleAndUniform() {
        var a = RandomStream(seed: 7), b = RandomStream(seed: 7), c = RandomStream(seed: 8)
        let xa = (0..<5).map { _ in a.next() }, xb = (0..<5).map { _ in b.next() }, xc = (0..<5).map { _ in c.next() }
        XCTAssertEqual(xa, xb)
        XCTAssertNotEqual(xa, xc)
        var r = RandomStream(seed: 1)
        let u = (0..<20000).map { _ in r.nextDouble() }
        XCTAssertTrue(u.allSatisfy { $0 >= 0 && $0 < 1 })
        XCTAssertEqual(u.reduce(0, +) / Double(u.count), 0.5, accuracy: 0.01)
    }

    func testParallelForCoversEveryIndexOnce() {
        for n in [0, 1, 2, 3, 1001] {
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
            counts.initialize(repeating: 0, count: max(n, 1))
            nonisolated(unsafe) let c = counts
            parallelFor(n) { c[$0] += 1 }
            XCTAssertTrue((0..<n).allSatisfy { counts[$0] == 1 }, "n=\(n)")
            counts.deallocate()
        }
    }

    func testWorkerPoolUnderNestingConcurrentCallersAndParking() {
        // A loop inside a loop, loops started from several threads at once, and loops after the workers
        // were parked (as a BLAS call does) must each run every index exactly once and return.
        let n = 64, m = 37
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: n * m)
        counts.initialize(repeating: 0, count: n * m)
        defer { counts.deallocate() }
        nonisolated(unsafe) let c = counts
        parallelFor(n) { i in parallelFor(m) { j in c[i * m + j] += 1 } }
        XCTAssertTrue((0..<(n * m)).allSatisfy { counts[$0] == 1 }, "nested loops")

        let callers = 6, per = 5000
        let sums = UnsafeMutablePointer<Int>.allocate(capacity: callers * per)
        sums.initialize(repeating: 0, count: callers * per)
        defer { sums.deallocate() }
        nonisolated(unsafe) let s = sums
        DispatchQueue.concurrentPerform(iterations: callers) { t in
            for _ in 0..<20 { parallelFor(per, minPerChunk: 64) { s[t * per + $0] += 1 } }
        }
        XCTAssertTrue((0..<(callers * per)).allSatisfy { sums[$0] == 20 }, "concurrent callers")

        let x = [Float](repeating: 1, count: 4)
        var y = x
        for round in 0..<50 {
            if round % 2 == 0 {  // parks the workers
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                    BLAS.gemm(m: 2, n: 2, k: 1, a: xp.baseAddress!, lda: 1, b: xp.baseAddress!, ldb: 2, c: yp.baseAddress!, ldc: 2)
                } }
            }
            var hits = [Int](repeating: 0, count: 8)
            hits.withUnsafeMutableBufferPointer { h in
                nonisolated(unsafe) let hp = h.baseAddress!
                parallelFor(8) { hp[$0] += 1 }
            }
            XCTAssertEqual(hits, [Int](repeating: 1, count: 8), "round \(round) after parking")
        }
        XCTAssertEqual(y, [1, 1, 1, 1], "the BLAS call itself")
    }
}

final class VectorExpTests: XCTestCase {
    func testExp8MatchesFoundationWithinTwoULP() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88.2 {
            let v = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0137 })
            let e = Vec.exp8(v)
            for i in 0..<8 {
                let ref = Foundation.exp(Double(v[i]))
                let ulp = Double(Float(ref).ulp)
                worst = max(worst, Float(abs(Double(e[i]) - ref) / ulp))
            }
            x += 0.173
        }
        XCTAssertLessThanOrEqual(worst, 2, "exp8 error in ulp")
        let edge = Vec.exp8(SIMD8<Float>(-1000, -88, 0, 1, 89, 1000, -.infinity, 0.5))
        XCTAssertEqual(edge[0], 0); XCTAssertEqual(edge[2], 1); XCTAssertEqual(edge[3], Float(M_E), accuracy: 1e-6)
        XCTAssertTrue(edge[4].isInfinite && edge[5].isInfinite); XCTAssertEqual(edge[6], 0)
    }
}

final class QuantPanelTests: XCTestCase {
    func testQuantPanelsEqualFloatPanelsBitForBitAtEveryRowCount() {
        // Same weights, same accumulation order: the Int8-panel kernel and the Float-panel kernel must
        // agree exactly, and a row's result must not depend on the other rows of the call.
        var rng = RandomStream(seed: 5)
        let n = 37, k = 48
        var q = [Int8](repeating: 0, count: n * k)
        for i in q.indices { q[i] = Int8(truncatingIfNeeded: rng.next() % 31) - 15 }
        let scales = (0..<(n * k / 16)).map { _ in rng.nextFloat() * 0.1 }, offsets = (0..<(n * k / 16)).map { _ in rng.nextFloat() - 0.5 }
        let weight = { (r: Int, c: Int) -> Float in Float(q[r * k + c]) * scales[(r * k + c) / 16] + offsets[(r * k + c) / 16] }
        let qp = QuantPanelWeight(n: n, k: k) { r, qs, s, o in
            for c in 0..<k { qs[c] = q[r * k + c] }
            for g in 0..<(k / 16) { s[g] = scales[(r * k) / 16 + g]; o[g] = offsets[(r * k) / 16 + g] }
        }
        let fp = PackedWeight(n: n, k: k) { r, dst in for c in 0..<k { dst[c] = weight(r, c) } }
        let m = 11
        let x = (0..<(m * k)).map { _ in rng.nextFloat() * 2 - 1 }
        var yq = [Float](repeating: 0, count: m * n), yf = yq, y1 = [Float](repeating: 0, count: n)
        x.withUnsafeBufferPointer { xp in
            yq.withUnsafeMutableBufferPointer { QuantPanelGEMM.linear($0.baseAddress!, xp.baseAddress!, qp, bias: nil, m: m) }
            yf.withUnsafeMutableBufferPointer { PackedGEMM.linear($0.baseAddress!, xp.baseAddress!, fp, bias: nil, m: m) }
            y1.withUnsafeMutableBufferPointer { QuantPanelGEMM.linear($0.baseAddress!, xp.baseAddress! + 7 * k, qp, bias: nil, m: 1) }
        }
        XCTAssertEqual(yq.map(\.bitPattern), yf.map(\.bitPattern), "Int8 panels vs Float panels")
        XCTAssertEqual(Array(yq[7 * n..<8 * n]).map(\.bitPattern), y1.map(\.bitPattern), "row 7 alone vs in a batch of 11")
        for i in 0..<m { for j in 0..<n {
            let ref = (0..<k).reduce(0.0) { $0 + Double(x[i * k + $1]) * Double(weight(j, $1)) }
            XCTAssertEqual(Double(yq[i * n + j]), ref, accuracy: 1e-4)
        } }
    }

    /// Random Int8 panels (full Int8 range, per-16 scales and offsets) and the weights they hold.
    func randomQuantWeight(n: Int, k: Int, _ rng: inout RandomStream) -> (QuantPanelWeight, (Int, Int) -> Float) {
        var q = [Int8](repeating: 0, count: n * k)
        for i in q.indices { q[i] = Int8(truncatingIfNeeded: rng.next() % 255) }
        let scales = (0..<(n * k / 16)).map { _ in rng.nextFloat() * 0.05 }
        let offsets = (0..<(n * k / 16)).map { _ in rng.nextFloat() * 0.2 - 0.1 }
        let qp = QuantPanelWeight(n: n, k: k) { r, qs, sc, o in
            for c in 0..<k { qs[c] = q[r * k + c] }
            for g in 0..<(k / 16) { sc[g] = scales[(r * k) / 16 + g]; o[g] = offsets[(r * k) / 16 + g] }
        }
        return (qp, { r, c in Float(q[r * k + c]) * scales[(r * k + c) / 16] + offsets[(r * k + c) / 16] })
    }

    func testInt8PanelsEqualFloatPanelsOnAVX2AtModelSizes() {
        // The AVX2 kernels run on every x86 machine, with or without AVX-512: Int8 panels must give Float
        // panels' bits at the models' k (576, and 1040 for a non-power-of-two) for slab-sized and larger
        // batches (the AVX-512 comparison above is skipped on AVX2-only CPUs).
        let saved = KernelISA.avx512
        defer { KernelISA.avx512 = saved }
        KernelISA.avx512 = false
        var rng = RandomStream(seed: 13)
        // (24, 8208): past PackedGEMM.longK, where the Float kernel runs k in ranges resuming its tiles.
        for (n, k) in [(40, 576), (24, 1040), (24, 8208)] {
            let (qp, weight) = randomQuantWeight(n: n, k: k, &rng)
            let fp = PackedWeight(n: n, k: k) { r, dst in for c in 0..<k { dst[c] = weight(r, c) } }
            for m in [9, 32, 200] {
                let x = (0..<(m * k)).map { _ in rng.nextFloat() * 2 - 1 }
                var yq = [Float](repeating: .nan, count: m * n), yf = yq
                x.withUnsafeBufferPointer { xp in
                    yq.withUnsafeMutableBufferPointer { QuantPanelGEMM.linear($0.baseAddress!, xp.baseAddress!, qp, bias: nil, m: m) }
                    yf.withUnsafeMutableBufferPointer { PackedGEMM.linear($0.baseAddress!, xp.baseAddress!, fp, bias: nil, m: m) }
                }
                let differing = zip(yq, yf).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "n=\(n) k=\(k) m=\(m): outputs differing between Int8 and Float panels")
            }
        }
    }

    func testInputGradientThroughPanelsAgainstNaive() {
        // dX = dY · W through both panel formats, overwriting and accumulating, against a Double loop.
        var rng = RandomStream(seed: 11)
        for (n, k) in [(37, 48), (80, 96), (16, 16)] {
            let (qp, weight) = randomQuantWeight(n: n, k: k, &rng)
            // Float panels also take a k that is not a multiple of 16 (the last 3 columns dropped).
            let kf = k - 3
            let fp = PackedWeight(n: n, k: kf) { r, dst in for c in 0..<kf { dst[c] = weight(r, c) } }
            for m in [1, 5, 13, 40] {
                let dy = (0..<(m * n)).map { _ in rng.nextFloat() * 2 - 1 }
                let start = (0..<(m * k)).map { _ in rng.nextFloat() }
                for (kk, quant) in [(k, true), (kf, false)] {
                    for accumulate in [false, true] {
                        var dx = Array(start.prefix(m * kk))
                        dy.withUnsafeBufferPointer { yp in dx.withUnsafeMutableBufferPointer { xp in
                            if quant { PanelBackward.inputGradient(xp.baseAddress!, yp.baseAddress!, qp, m: m, accumulate: accumulate) }
                            else { PanelBackward.inputGradient(xp.baseAddress!, yp.baseAddress!, fp, m: m, accumulate: accumulate) }
                        } }
                        var worst = 0.0
                        for r in 0..<m { for c in 0..<kk {
                            var ref = accumulate ? Double(start[r * kk + c]) : 0
                            for j in 0..<n { ref += Double(dy[r * n + j]) * Double(weight(j, c)) }
                            worst = max(worst, abs(Double(dx[r * kk + c]) - ref))
                        } }
                        XCTAssertLessThan(worst, 1e-4, "n=\(n) k=\(kk) m=\(m) int8=\(quant) accumulate=\(accumulate)")
                    }
                }
            }
        }
    }

    func testAVX512KernelsEqualAVX2KernelsBitForBit() throws {
        // The AVX-512 copies must give the AVX2 kernels' exact bits (and stay independent of the batch),
        // or batched sampling would differ between machines. Shapes cover an odd panel count (n = 80),
        // partial panels (n = 37), 1..8 rows (weights rebuilt in registers) and more (panels expanded).
        guard KernelISA.cpuHasAVX512 else {
            throw XCTSkip("this CPU has no AVX-512: only the AVX2 kernels can run here")
        }
        func sameBits(_ a: [UInt32], _ b: [UInt32], _ what: String, line: UInt = #line) {
            let differing = zip(a, b).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
            XCTAssertTrue(a.count == b.count && differing.isEmpty,
                          "\(what): \(differing.count) of \(a.count) outputs differ, first at \(differing.first ?? -1)", line: line)
        }
        let saved = KernelISA.avx512
        defer { KernelISA.avx512 = saved }
        var rng = RandomStream(seed: 9)
        // (37, 8208): k past PackedGEMM.longK, where the AVX-512 Float kernel runs k in ranges.
        for (n, k) in [(37, 48), (80, 96), (576, 576), (37, 8208)] {
            let (qp, weight) = randomQuantWeight(n: n, k: k, &rng)
            let fp = PackedWeight(n: n, k: k) { r, dst in
                for c in 0..<k { dst[c] = weight(r, c) }
            }
            let bias = (0..<n).map { _ in rng.nextFloat() - 0.5 }
            for m in [1, 3, 8, 9, 32, 200] {
                let x = (0..<(m * k)).map { _ in rng.nextFloat() * 2 - 1 }
                for withBias in [false, true] {
                    func run(_ avx512: Bool, packed: Bool, rows: Int, from: Int = 0) -> [UInt32] {
                        KernelISA.avx512 = avx512
                        var y = [Float](repeating: .nan, count: rows * n)
                        x.withUnsafeBufferPointer { xp in bias.withUnsafeBufferPointer { bp in
                            y.withUnsafeMutableBufferPointer { yp in
                                let b = withBias ? bp.baseAddress! : nil, xs = xp.baseAddress! + from * k
                                if packed { PackedGEMM.linear(yp.baseAddress!, xs, fp, bias: b, m: rows) }
                                else { QuantPanelGEMM.linear(yp.baseAddress!, xs, qp, bias: b, m: rows) }
                            }
                        } }
                        return y.map(\.bitPattern)
                    }
                    let what = "n=\(n) k=\(k) m=\(m) bias=\(withBias)"
                    let quant2 = run(false, packed: false, rows: m), quant512 = run(true, packed: false, rows: m)
                    sameBits(quant512, quant2, "Int8 panels, AVX-512 vs AVX2, \(what)")
                    sameBits(run(true, packed: true, rows: m), run(false, packed: true, rows: m), "Float panels, AVX-512 vs AVX2, \(what)")
                    sameBits(run(true, packed: true, rows: m), quant512, "Float vs Int8 panels on AVX-512, \(what)")
                    let last = m - 1
                    sameBits(run(true, packed: false, rows: 1, from: last), Array(quant512[last * n..<m * n]),
                             "AVX-512: last row alone vs in the batch, \(what)")
                }
            }
        }
    }
}
