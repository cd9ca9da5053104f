// Finite-difference checks of every backward kernel, in Double: each test writes a plain-loop Double
// reference of the forward, differentiates the loss L = sum(c * y) numerically (central differences on the
// Double reference, so the oracle carries no Float noise) and compares the Float backward kernel's
// gradient. Shapes are tiny and odd: rows 1, 3, 7; GQA groups of 1 and 3; head dims 8 and 16; sliding
// windows; sequences of different lengths.
import Foundation
import XCTest
@testable import Tensors

private struct Rng {
    var r: RandomStream
    init(_ seed: UInt64) { r = RandomStream(seed: seed) }
    mutating func vec(_ n: Int, scale: Double = 1) -> [Double] { (0..<n).map { _ in Double(r.nextGaussian()) * scale } }
}

/// Numerical gradient of f at x by central differences (f in Double).
private func numericGradient(_ x: [Double], eps: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
    var g = [Double](repeating: 0, count: x.count)
    var xp = x
    for i in x.indices {
        xp[i] = x[i] + eps; let a = f(xp)
        xp[i] = x[i] - eps; let b = f(xp)
        xp[i] = x[i]
        g[i] = (a - b) / (2 * eps)
    }
    return g
}

/// |analytic - numeric| <= tol * max(1, |numeric|) everywhere, with the worst entry named.
private func assertGradient(_ analytic: [Float], _ numeric: [Double], tol: Double, _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(analytic.count, numeric.count, "\(what): sizes", file: file, line: line)
    var worst = 0.0, at = -1
    for i in numeric.indices {
        let e = abs(Double(analytic[i]) - numeric[i]) / max(1, abs(numeric[i]))
        if e > worst { worst = e; at = i }
    }
    XCTAssertLessThanOrEqual(worst, tol, "\(what): worst relative error \(worst) at \(at) (analytic \(at >= 0 ? analytic[at] : 0), numeric \(at >= 0 ? numeric[at] : 0))",
                             file: file, line: line)
    // The check must see a real gradient, not zeros on both sides.
    XCTAssertGreaterThan(numeric.map(abs).max() ?? 0, 1e-3, "\(what): gradient is all zero", file: file, line: line)
}

private func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

final class BackwardTests: XCTestCase {
    func testRMSNormBackward() {
        for (rows, dim) in [(1, 8), (3, 17), (7, 33)] {
            for withWeight in [true, false] {
                var g = Rng(UInt64(rows * 100 + dim))
                let x = g.vec(rows * dim), w = g.vec(dim).map { 1 + 0.3 * $0 }, c = g.vec(rows * dim)
                let eps = 1e-5
                func forward(_ x: [Double]) -> [Double] {
                    var y = [Double](repeating: 0, count: x.count)
                    for r in 0..<rows {
                        let ms = (0..<dim).reduce(0.0) { $0 + x[r * dim + $1] * x[r * dim + $1] } / Double(dim)
                        let s = 1 / (ms + eps).squareRoot()
                        for i in 0..<dim { y[r * dim + i] = x[r * dim + i] * s * (withWeight ? w[i] : 1) }
                    }
                    return y
                }
                let numeric = numericGradient(x) { dot(forward($0), c) }
                let xf = x.map(Float.init), wf = w.map(Float.init), cf = c.map(Float.init)
                var out = [Float](repeating: 0, count: x.count), rstd = [Float](repeating: 0, count: rows)
                var dx = [Float](repeating: 0, count: x.count)
                wf.withUnsafeBufferPointer { wp in
                    Norms.rmsNorm(&out, rstd: &rstd, xf, weight: withWeight ? wp.baseAddress : nil, rows: rows, dim: dim, eps: Float(eps))
                    Norms.rmsNormBackward(&dx, cf, x: xf, rstd: rstd, weight: withWeight ? wp.baseAddress : nil, rows: rows, dim: dim)
                }
                assertGradient(dx, numeric, tol: 1e-4, "rmsNorm rows \(rows) dim \(dim) weight \(withWeight)")
                // accumulate adds to what is there.
                var acc = [Float](repeating: 1, count: x.count)
                wf.withUnsafeBufferPointer { wp in
                    Norms.rmsNormBackward(&acc, cf, x: xf, rstd: rstd, weight: withWeight ? wp.baseAddress : nil, rows: rows, dim: dim, accumulate: true)
                }
                for i in acc.indices { XCTAssertEqual(acc[i], 1 + dx[i], accuracy: 1e-5) }
                // in place (dx is dy) gives the same as out of place.
                var inPlace = cf
                wf.withUnsafeBufferPointer { wp in
                    inPlace.withUnsafeMutableBufferPointer { ip in
                        Norms.rmsNormBackward(ip.baseAddress!, ip.baseAddress!, x: xf, rstd: rstd, weight: withWeight ? wp.baseAddress : nil, rows: rows, dim: dim)
                    }
                }
                XCTAssertEqual(inPlace, dx)
            }
        }
    }

    func testRoPEInverseIsTheBackward() {
        for hd in [8, 16] {
            let rows = 7, heads = 3, stride = heads * hd + 5  // padded rows: the stride is honoured
            var g = Rng(UInt64(hd))
            let x = g.vec(rows * stride), c = g.vec(rows * stride)
            let positions = [0, 1, 2, 5, 9, 30, 77]
            let rope = RoPE(rotaryDim: hd, base: 10000)
            func forward(_ x: [Double]) -> [Double] {
                var y = x
                for r in 0..<rows { for h in 0..<heads { for i in 0..<hd / 2 {
                    let a = Double(Float(positions[r]) * rope.invFreq[i])
                    let o = r * stride + h * hd
                    y[o + i] = x[o + i] * cos(a) - x[o + i + hd / 2] * sin(a)
                    y[o + i + hd / 2] = x[o + i + hd / 2] * cos(a) + x[o + i] * sin(a)
                } } }
                return y
            }
            let numeric = numericGradient(x) { dot(forward($0), c) }
            var dy = c.map(Float.init)
            positions.withUnsafeBufferPointer { p in
                rope.apply(&dy, rows: rows, stride: stride, heads: heads, headDim: hd, positions: p.baseAddress!, inverse: true)
            }
            assertGradient(dy, numeric, tol: 1e-5, "RoPE inverse hd \(hd)")
        }
    }

    func testGatedActivationBackward() {
        for act in [Activation.silu, .geluTanh, .gelu] {
            for (rows, n) in [(1, 8), (3, 17), (7, 33)] {
                var g = Rng(UInt64(rows * 7 + n))
                let gate = g.vec(rows * n, scale: 2), up = g.vec(rows * n), c = g.vec(rows * n)
                func a(_ x: Double) -> Double {
                    switch act {
                    case .silu: return x / (1 + exp(-x))
                    case .geluTanh: return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
                    case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
                    case .quickGelu: return x / (1 + exp(-1.702 * x))
                    }
                }
                let both = gate + up
                let numeric = numericGradient(both) { v in
                    (0..<(rows * n)).reduce(0.0) { $0 + a(v[$1]) * v[rows * n + $1] * c[$1] }
                }
                var dGate = [Float](repeating: 0, count: rows * n), dUp = dGate
                act.gatedBackward(dGate: &dGate, dUp: &dUp, dOut: c.map(Float.init), gate: gate.map(Float.init), up: up.map(Float.init), rows: rows, n: n)
                assertGradient(dGate + dUp, numeric, tol: 2e-5, "\(act) gated rows \(rows) n \(n)")
                // dOut may be dGate's own buffer.
                var shared = c.map(Float.init), dUp2 = [Float](repeating: 0, count: rows * n)
                shared.withUnsafeMutableBufferPointer { sp in
                    act.gatedBackward(dGate: sp.baseAddress!, dUp: &dUp2, dOut: sp.baseAddress!, gate: gate.map(Float.init), up: up.map(Float.init), rows: rows, n: n)
                }
                XCTAssertEqual(shared, dGate); XCTAssertEqual(dUp2, dUp)
            }
        }
    }

    func testLogProbAndEntropyAndBackward() {
        for n in [1, 7, 33, 1030] {
            var g = Rng(UInt64(n))
            let z = g.vec(n, scale: 3)
            let target = n / 3, a = 0.7, b = -1.3
            func parts(_ z: [Double]) -> (Double, Double) {
                let m = z.max()!
                let s = z.reduce(0) { $0 + exp($1 - m) }
                let lse = m + log(s)
                let h = -z.reduce(0) { $0 + exp($1 - lse) * ($1 - lse) }
                return (z[target] - lse, h)
            }
            let (lp, h) = parts(z)
            let (lpf, hf) = Softmax.logProbAndEntropy(z.map(Float.init), n, target: target)
            XCTAssertEqual(Double(lpf), lp, accuracy: 1e-5)
            XCTAssertEqual(Double(hf), h, accuracy: 1e-5)
            let numeric = numericGradient(z) { v in let (p, e) = parts(v); return a * p + b * e }
            var dz = z.map(Float.init)
            Softmax.logProbAndEntropyBackward(&dz, n, target: target, dLogProb: Float(a), dEntropy: Float(b))
            if n == 1 {
                XCTAssertEqual(dz, [0])  // one class: log p = 0 and H = 0 whatever z is
            } else {
                assertGradient(dz, numeric, tol: 1e-5, "log-prob/entropy n \(n)")
            }
        }
    }

    /// Attention of one sequence against a Double reference: probabilities and the three input gradients.
    func testAttentionBackwardGQAWindowsAndLengths() {
        for (heads, kvHeads, hd) in [(2, 2, 8), (3, 1, 16), (6, 2, 8)] {
            for (L, window) in [(1, nil), (3, nil), (7, nil), (7, 3), (5, 1)] as [(Int, Int?)] {
                var g = Rng(UInt64(heads * 1000 + L * 10 + (window ?? 0)))
                let shape = AttentionShape(heads: heads, kvHeads: kvHeads, headDim: hd)
                let qDim = heads * hd, kvDim = kvHeads * hd, group = heads / kvHeads
                let scale = 1 / Double(hd).squareRoot()
                let q = g.vec(L * qDim), k = g.vec(L * kvDim), v = g.vec(L * kvDim), c = g.vec(L * qDim)
                func forward(_ q: [Double], _ k: [Double], _ v: [Double]) -> [Double] {
                    var out = [Double](repeating: 0, count: L * qDim)
                    for t in 0..<L { for h in 0..<heads {
                        let kv = (h / group) * hd
                        let lo = window.map { max(0, t - $0 + 1) } ?? 0
                        var s = [Double]()
                        for j in lo...t { s.append((0..<hd).reduce(0.0) { $0 + q[t * qDim + h * hd + $1] * k[j * kvDim + kv + $1] } * scale) }
                        let m = s.max()!, e = s.map { exp($0 - m) }, z = e.reduce(0, +)
                        for (jj, j) in (lo...t).enumerated() { for i in 0..<hd { out[t * qDim + h * hd + i] += e[jj] / z * v[j * kvDim + kv + i] } }
                    } }
                    return out
                }
                let all = q + k + v
                let numeric = numericGradient(all) { x in
                    dot(forward(Array(x[0..<(L * qDim)]), Array(x[(L * qDim)..<(L * qDim + L * kvDim)]), Array(x[(L * qDim + L * kvDim)...])), c)
                }
                // Forward with the engine's kernel (it saves the weights), then the backward per key/value head.
                let qf = q.map(Float.init), kf = k.map(Float.init), vf = v.map(Float.init)
                var out = [Float](repeating: 0, count: L * qDim), probs = [Float](repeating: 0, count: heads * L * L)
                out.withUnsafeMutableBufferPointer { o in probs.withUnsafeMutableBufferPointer { p in qf.withUnsafeBufferPointer { qp in
                    for t in 0..<L { for h in 0..<heads {
                        Attention.attendHead(o.baseAddress! + t * qDim + h * hd, q: qp.baseAddress! + t * qDim + h * hd,
                                             keys: kf, values: vf, kvStride: kvDim, kvOffset: (h / group) * hd, position: t, headDim: hd,
                                             scale: Float(scale), window: window, probs: p.baseAddress! + (h * L + t) * L, probsCount: L)
                    } }
                } } }
                let ref = forward(q, k, v)
                for i in ref.indices { XCTAssertEqual(Double(out[i]), ref[i], accuracy: 1e-5) }
                var dq = [Float](repeating: .nan, count: L * qDim), dk = [Float](repeating: .nan, count: L * kvDim), dv = dk
                let cf = c.map(Float.init)
                for gi in 0..<kvHeads {
                    Attention.backwardGroup(dq: &dq, dk: &dk, dv: &dv, dOut: cf, q: qf, qStride: qDim, keys: kf, values: vf, kvStride: kvDim,
                                            probs: probs, length: L, kvHead: gi, shape: shape, scale: Float(scale), window: window)
                }
                let what = "attention heads \(heads)/\(kvHeads) hd \(hd) L \(L) window \(window.map(String.init) ?? "none")"
                // With one key per query (L 1, window 1) the weights are 1 whatever q and k are: dq, dk are zero.
                assertGradient(dq + dk + dv, numeric, tol: 1e-4, what)
            }
        }
    }
}
