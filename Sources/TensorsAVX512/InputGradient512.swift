// The backward product through a frozen linear layer, dX[m, k] = dY[m, n] · W[n, k], in AVX-512 (the
// AVX2 twin is PanelBackward.groupRows in Tensors, with the same bits). The weights come as 16-k slices
// of the forward's panels: E(p, j) is the 16-lane row W[16p ..< 16p + 16, 16g + j] of panel p in the
// slice of k-group g. Each output dX[r, 16g + j] is a 16-lane accumulator of dY[r, 16p + lane] * E(p, j)
// over the panels (one fused multiply-add per lane per panel, in panel order), folded by a fixed tree
// at the end and added to the output. A tile of 6 rows x 4 outputs keeps 24 accumulators in registers:
// per panel, 4 weight loads and 6 dY loads feed 24 multiply-adds.

@inline(__always) func fold16(_ a: SIMD16<Float>) -> Float {
    let v8 = a.lowHalf + a.highHalf
    let v4 = v8.lowHalf + v8.highHalf
    let v2 = v4.lowHalf + v4.highHalf
    return v2[0] + v2[1]
}

/// out[r * ldo + j] += sum_p sum_lane dy[r * ldy + 16p + lane] * e[p * panelStride + 16j + lane], for rows
/// rowLo ..< rowHi and j in 0 ..< 16, over `panels` full panels.
@inline(never)
public func inputGradientGroup512(_ out: UnsafeMutablePointer<Float>, ldo: Int, _ dy: UnsafePointer<Float>, ldy: Int,
                                  _ e: UnsafePointer<Float>, panelStride: Int, panels: Int, rowLo: Int, rowHi: Int) {
    var r0 = rowLo
    while r0 < rowHi {
        let mr = min(6, rowHi - r0)
        @inline(__always) func row(_ i: Int) -> UnsafePointer<Float> { dy + (r0 + (i < mr ? i : mr - 1)) * ldy }
        let y0 = row(0), y1 = row(1), y2 = row(2), y3 = row(3), y4 = row(4), y5 = row(5)
        var jb = 0
        while jb < 16 {
            var a00 = SIMD16<Float>(), a01 = SIMD16<Float>(), a02 = SIMD16<Float>(), a03 = SIMD16<Float>()
            var a10 = SIMD16<Float>(), a11 = SIMD16<Float>(), a12 = SIMD16<Float>(), a13 = SIMD16<Float>()
            var a20 = SIMD16<Float>(), a21 = SIMD16<Float>(), a22 = SIMD16<Float>(), a23 = SIMD16<Float>()
            var a30 = SIMD16<Float>(), a31 = SIMD16<Float>(), a32 = SIMD16<Float>(), a33 = SIMD16<Float>()
            var a40 = SIMD16<Float>(), a41 = SIMD16<Float>(), a42 = SIMD16<Float>(), a43 = SIMD16<Float>()
            var a50 = SIMD16<Float>(), a51 = SIMD16<Float>(), a52 = SIMD16<Float>(), a53 = SIMD16<Float>()
            for p in 0..<panels {
                let w = UnsafeRawPointer(e + p * panelStride + jb * 16)
                let w0 = load16(w), w1 = load16(w + 64), w2 = load16(w + 128), w3 = load16(w + 192)
                let q = 16 * p
                var d = load16(y0 + q); a00.addProduct(d, w0); a01.addProduct(d, w1); a02.addProduct(d, w2); a03.addProduct(d, w3)
                d = load16(y1 + q); a10.addProduct(d, w0); a11.addProduct(d, w1); a12.addProduct(d, w2); a13.addProduct(d, w3)
                d = load16(y2 + q); a20.addProduct(d, w0); a21.addProduct(d, w1); a22.addProduct(d, w2); a23.addProduct(d, w3)
                d = load16(y3 + q); a30.addProduct(d, w0); a31.addProduct(d, w1); a32.addProduct(d, w2); a33.addProduct(d, w3)
                d = load16(y4 + q); a40.addProduct(d, w0); a41.addProduct(d, w1); a42.addProduct(d, w2); a43.addProduct(d, w3)
                d = load16(y5 + q); a50.addProduct(d, w0); a51.addProduct(d, w1); a52.addProduct(d, w2); a53.addProduct(d, w3)
            }
            @inline(__always) func put(_ i: Int, _ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>) {
                guard i < mr else { return }
                let o = out + (r0 + i) * ldo + jb
                o[0] += fold16(a); o[1] += fold16(b); o[2] += fold16(c); o[3] += fold16(d)
            }
            put(0, a00, a01, a02, a03); put(1, a10, a11, a12, a13); put(2, a20, a21, a22, a23)
            put(3, a30, a31, a32, a33); put(4, a40, a41, a42, a43); put(5, a50, a51, a52, a53)
            jb += 4
        }
        r0 += mr
    }
}
