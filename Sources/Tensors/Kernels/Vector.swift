// Small SIMD building blocks the other kernels share: dot products, scaled adds, sums and maxima over
// contiguous Float runs. Eight lanes match AVX2; every loop has a scalar tail for odd sizes.

@usableFromInline @inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@usableFromInline @inline(__always) func store8(_ p: UnsafeMutablePointer<Float>, _ v: SIMD8<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

public enum Vec {
    /// sum_i a[i] * b[i]
    @inlinable @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
        var i = 0
        while i + 32 <= n {
            acc0.addProduct(load8(a + i), load8(b + i))
            acc1.addProduct(load8(a + i + 8), load8(b + i + 8))
            acc2.addProduct(load8(a + i + 16), load8(b + i + 16))
            acc3.addProduct(load8(a + i + 24), load8(b + i + 24))
            i += 32
        }
        while i + 8 <= n { acc0.addProduct(load8(a + i), load8(b + i)); i += 8 }
        var s = ((acc0 + acc1) + (acc2 + acc3)).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y[i] += alpha * x[i]
    @inlinable @inline(__always)
    public static func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
        let av = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n { store8(y + i, load8(y + i).addingProduct(av, load8(x + i))); i += 8 }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    /// y[0 ..< n] = sum over i < m (in order) of c[i * cStride] * M[i * ldm ..< i * ldm + n]: a weighted sum
    /// of m rows, for narrow n (a LoRA rank), with up to 32 columns at a time held in registers and stored
    /// once (a run of `axpy`s would load and store y for every row).
    @inlinable
    public static func combineRows(_ y: UnsafeMutablePointer<Float>, _ c: UnsafePointer<Float>, cStride: Int,
                                   _ M: UnsafePointer<Float>, ldm: Int, m: Int, n: Int) {
        var j = 0
        while j + 32 <= n {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            for i in 0..<m {
                let w = SIMD8<Float>(repeating: c[i * cStride]), row = M + i * ldm + j
                a0.addProduct(w, load8(row)); a1.addProduct(w, load8(row + 8))
                a2.addProduct(w, load8(row + 16)); a3.addProduct(w, load8(row + 24))
            }
            store8(y + j, a0); store8(y + j + 8, a1); store8(y + j + 16, a2); store8(y + j + 24, a3)
            j += 32
        }
        while j + 8 <= n {
            var a0 = SIMD8<Float>()
            for i in 0..<m { a0.addProduct(SIMD8<Float>(repeating: c[i * cStride]), load8(M + i * ldm + j)) }
            store8(y + j, a0)
            j += 8
        }
        while j < n {
            var a: Float = 0
            for i in 0..<m { a += c[i * cStride] * M[i * ldm + j] }
            y[j] = a
            j += 1
        }
    }

    /// Four `combineRows` over the same M at once: y[q * yStride ..< q * yStride + n] = sum over i < m (in
    /// order) of c[q * cNext + i * cStride] * M[i * ldm ..< i * ldm + n] for q < 4. Each output keeps
    /// combineRows' chain (from zero, one fused multiply-add per i in order, the same scalar tail), so the
    /// bits are combineRows'; the four chains share M's loads and hide the FMA latency that one narrow
    /// chain (a LoRA rank of 16 is two vectors) leaves exposed.
    @inlinable
    public static func combineRows4(_ y: UnsafeMutablePointer<Float>, yStride: Int, _ c: UnsafePointer<Float>, cStride: Int,
                                    cNext: Int, _ M: UnsafePointer<Float>, ldm: Int, m: Int, n: Int) {
        let c0 = c, c1 = c + cNext, c2 = c + 2 * cNext, c3 = c + 3 * cNext
        var j = 0
        while j + 16 <= n {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), b0 = SIMD8<Float>(), b1 = SIMD8<Float>()
            var d0 = SIMD8<Float>(), d1 = SIMD8<Float>(), e0 = SIMD8<Float>(), e1 = SIMD8<Float>()
            for i in 0..<m {
                let row = M + i * ldm + j, r0 = load8(row), r1 = load8(row + 8), ci = i * cStride
                let w0 = SIMD8<Float>(repeating: c0[ci]), w1 = SIMD8<Float>(repeating: c1[ci])
                let w2 = SIMD8<Float>(repeating: c2[ci]), w3 = SIMD8<Float>(repeating: c3[ci])
                a0.addProduct(w0, r0); a1.addProduct(w0, r1); b0.addProduct(w1, r0); b1.addProduct(w1, r1)
                d0.addProduct(w2, r0); d1.addProduct(w2, r1); e0.addProduct(w3, r0); e1.addProduct(w3, r1)
            }
            store8(y + j, a0); store8(y + j + 8, a1)
            store8(y + yStride + j, b0); store8(y + yStride + j + 8, b1)
            store8(y + 2 * yStride + j, d0); store8(y + 2 * yStride + j + 8, d1)
            store8(y + 3 * yStride + j, e0); store8(y + 3 * yStride + j + 8, e1)
            j += 16
        }
        while j + 8 <= n {
            var a0 = SIMD8<Float>(), b0 = SIMD8<Float>(), d0 = SIMD8<Float>(), e0 = SIMD8<Float>()
            for i in 0..<m {
                let r0 = load8(M + i * ldm + j), ci = i * cStride
                a0.addProduct(SIMD8<Float>(repeating: c0[ci]), r0); b0.addProduct(SIMD8<Float>(repeating: c1[ci]), r0)
                d0.addProduct(SIMD8<Float>(repeating: c2[ci]), r0); e0.addProduct(SIMD8<Float>(repeating: c3[ci]), r0)
            }
            store8(y + j, a0); store8(y + yStride + j, b0); store8(y + 2 * yStride + j, d0); store8(y + 3 * yStride + j, e0)
            j += 8
        }
        while j < n {
            for q in 0..<4 {
                let cq = c + q * cNext
                var a: Float = 0
                for i in 0..<m { a += cq[i * cStride] * M[i * ldm + j] }
                y[q * yStride + j] = a
            }
            j += 1
        }
    }

    /// y[j * ldy + i] += sum over t < m (in order) of c[t * ldc + j * cj] * x[t * ldx + i] for j < r, i < n:
    /// a sum of outer products (a LoRA A gradient; or, with the roles swapped, rows of dz A), with the
    /// bits of m * r `axpy` calls (y[j] += c[t, j] x[t] for t in order; fused multiply-adds on the vector
    /// part of each row, plain ones on its tail) but with y held in registers across t.
    @inlinable
    public static func addOuterProducts(_ y: UnsafeMutablePointer<Float>, ldy: Int, _ c: UnsafePointer<Float>, ldc: Int, cj: Int = 1,
                                        _ x: UnsafePointer<Float>, ldx: Int, m: Int, r: Int, n: Int) {
        let vectorEnd = n / 8 * 8
        var i = 0
        while i + 16 <= vectorEnd {
            var j = 0
            while j + 4 <= r {
                let y0 = y + j * ldy + i, y1 = y0 + ldy, y2 = y1 + ldy, y3 = y2 + ldy
                var a0 = load8(y0), a1 = load8(y0 + 8), b0 = load8(y1), b1 = load8(y1 + 8)
                var d0 = load8(y2), d1 = load8(y2 + 8), e0 = load8(y3), e1 = load8(y3 + 8)
                for t in 0..<m {
                    let xt = x + t * ldx + i, x0 = load8(xt), x1 = load8(xt + 8), ct = c + t * ldc + j * cj
                    let w0 = SIMD8<Float>(repeating: ct[0]), w1 = SIMD8<Float>(repeating: ct[cj])
                    let w2 = SIMD8<Float>(repeating: ct[2 * cj]), w3 = SIMD8<Float>(repeating: ct[3 * cj])
                    a0.addProduct(w0, x0); a1.addProduct(w0, x1); b0.addProduct(w1, x0); b1.addProduct(w1, x1)
                    d0.addProduct(w2, x0); d1.addProduct(w2, x1); e0.addProduct(w3, x0); e1.addProduct(w3, x1)
                }
                store8(y0, a0); store8(y0 + 8, a1); store8(y1, b0); store8(y1 + 8, b1)
                store8(y2, d0); store8(y2 + 8, d1); store8(y3, e0); store8(y3 + 8, e1)
                j += 4
            }
            while j < r {
                let y0 = y + j * ldy + i
                var a0 = load8(y0), a1 = load8(y0 + 8)
                for t in 0..<m {
                    let xt = x + t * ldx + i, w = SIMD8<Float>(repeating: c[t * ldc + j * cj])
                    a0.addProduct(w, load8(xt)); a1.addProduct(w, load8(xt + 8))
                }
                store8(y0, a0); store8(y0 + 8, a1)
                j += 1
            }
            i += 16
        }
        while i < vectorEnd {
            for j in 0..<r {
                let y0 = y + j * ldy + i
                var a0 = load8(y0)
                for t in 0..<m { a0.addProduct(SIMD8<Float>(repeating: c[t * ldc + j * cj]), load8(x + t * ldx + i)) }
                store8(y0, a0)
            }
            i += 8
        }
        if i < n {
            for j in 0..<r {
                for t in 0..<m {
                    let a = c[t * ldc + j * cj], xt = x + t * ldx
                    for q in i..<n { y[j * ldy + q] += a * xt[q] }
                }
            }
        }
    }

    /// y[i] += x[i]
    @inlinable @inline(__always)
    public static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store8(y + i, load8(y + i) + load8(x + i)); i += 8 }
        while i < n { y[i] += x[i]; i += 1 }
    }

    /// y[i] *= x[i]
    @inlinable @inline(__always)
    public static func mul(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store8(y + i, load8(y + i) * load8(x + i)); i += 8 }
        while i < n { y[i] *= x[i]; i += 1 }
    }

    /// x[i] *= alpha
    @inlinable @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ alpha: Float, _ n: Int) {
        let av = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n { store8(x + i, load8(x + i) * av); i += 8 }
        while i < n { x[i] *= alpha; i += 1 }
    }

    @inlinable @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n { acc += load8(x + i); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    @inlinable @inline(__always)
    public static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            let a = load8(x + i), b = load8(x + i + 8)
            acc0.addProduct(a, a); acc1.addProduct(b, b); i += 16
        }
        while i + 8 <= n { let a = load8(x + i); acc0.addProduct(a, a); i += 8 }
        var s = (acc0 + acc1).sum()
        while i < n { s += x[i] * x[i]; i += 1 }
        return s
    }

    @inlinable @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity
        var i = 0
        if n >= 8 {
            var acc = SIMD8<Float>(repeating: -.infinity)
            // replace(with:where:) inlines to one vmaxps; the stdlib's pointwiseMax stays an out-of-line call.
            while i + 8 <= n { let v = load8(x + i); acc.replace(with: v, where: v .> acc); i += 8 }
            m = acc.max()
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }
}

extension Vec {
    /// e^x for eight lanes (Cephes-style: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, scale by 2^n);
    /// within 2 ulp of exp for x in [-87.3, 88.3]; 0 below, +inf above (softmax only feeds it x <= 0).
    @inlinable @inline(__always)
    public static func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let hi = SIMD8<Float>(repeating: 88.3762626647949), lo = SIMD8<Float>(repeating: -87.3365447505531)
        var xc = x  // clamped to [lo, hi] (masked blends: pointwiseMin/Max are out-of-line calls)
        xc.replace(with: lo, where: x .< lo)
        xc.replace(with: hi, where: x .> hi)
        let fx = (xc * 1.44269504088896341 + 0.5).rounded(.down)
        var r = xc - fx * 0.693359375
        r = r + fx * 2.12194440e-4
        let r2 = r * r
        var p = SIMD8<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * r2 + r + 1
        // 2^n through the exponent bits, without an int conversion (the stdlib's SIMD conversions are
        // out-of-line calls): fx + 1.5*2^23 holds n in its low mantissa bits.
        let magic = unsafeBitCast(fx + 12582912.0, to: SIMD8<UInt32>.self)
        let scale = unsafeBitCast((magic &- 0x4B40_0000 &+ 127) &<< 23, to: SIMD8<Float>.self)
        var out = y * scale
        out.replace(with: 0, where: x .< lo)
        out.replace(with: .infinity, where: x .> hi)
        return out
    }
}
