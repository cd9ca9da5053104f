// Small SIMD building blocks the other kernels share: dot products, scaled adds, sums and maxima over
// contiguous Float runs. Eight lanes match AVX2; every loop has a scalar tail for odd sizes.

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) func store8(_ p: UnsafeMutablePointer<Float>, _ v: SIMD8<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

public enum Vec {
    /// sum_i a[i] * b[i]
    @inline(__always)
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
    @inline(__always)
    public static func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
        let av = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n { store8(y + i, load8(y + i).addingProduct(av, load8(x + i))); i += 8 }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    /// y[i] += x[i]
    @inline(__always)
    public static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store8(y + i, load8(y + i) + load8(x + i)); i += 8 }
        while i < n { y[i] += x[i]; i += 1 }
    }

    /// x[i] *= alpha
    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ alpha: Float, _ n: Int) {
        let av = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n { store8(x + i, load8(x + i) * av); i += 8 }
        while i < n { x[i] *= alpha; i += 1 }
    }

    @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n { acc += load8(x + i); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    @inline(__always)
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

    @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity
        var i = 0
        if n >= 8 {
            var acc = SIMD8<Float>(repeating: -.infinity)
            while i + 8 <= n { acc = pointwiseMax(acc, load8(x + i)); i += 8 }
            m = acc.max()
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }
}
