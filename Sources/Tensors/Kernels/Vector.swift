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
