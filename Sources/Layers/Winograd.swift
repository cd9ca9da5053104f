// Winograd's F(2x2, 3x3) for the stride-1, pad-1 3x3 convolutions of the convolutional towers (ModifiedResNet's
// bottleneck and stem convolutions, ViTamin's stem): each 2x2 output tile comes from a 4x4 input tile as
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A,
// so the 9 multiply-adds per output and input channel of the direct convolution become 16 per 2x2 tile, i.e. 4:
// 2.25x fewer FLOPs. The element-wise product over channels is 16 GEMMs of [tiles, C_in] x [C_in, C_out], one per
// tile position; the transforms only add, subtract and halve, so the result differs from the direct convolution
// by float rounding (relative 1e-6). Maps are channels-last, so every transform runs over contiguous channel vectors.
import Tensors

/// F(2x2, 3x3) weights: the 16 transformed kernels U = G g G^T, each a [C_out, C_in] Linear (the last one with the
/// bias, which the output transform adds once).
struct WinogradWeights: Sendable {
    let inChannels: Int, outChannels: Int
    let kernels: [Linear]
    let bias: [Float]

    /// `weight` as PyTorch stores a 3x3 kernel, [C_out, C_in, 3, 3] flattened.
    init(weight: [Float], bias: [Float]?, inChannels cin: Int, outChannels cout: Int) {
        inChannels = cin; outChannels = cout
        var u = [[Float]](repeating: [Float](repeating: 0, count: cout * cin), count: 16)
        for o in 0..<cout { for i in 0..<cin {
            let g = (0..<9).map { Double(weight[(o * cin + i) * 9 + $0]) }
            // G g: [4, 3]
            var gg = [Double](repeating: 0, count: 12)
            for c in 0..<3 {
                let g0 = g[c], g1 = g[3 + c], g2 = g[6 + c]
                gg[c] = g0; gg[3 + c] = 0.5 * (g0 + g1 + g2); gg[6 + c] = 0.5 * (g0 - g1 + g2); gg[9 + c] = g2
            }
            // (G g) G^T: [4, 4]
            for r in 0..<4 {
                let a = gg[r * 3], b = gg[r * 3 + 1], c = gg[r * 3 + 2]
                let row = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
                for col in 0..<4 { u[r * 4 + col][o * cin + i] = Float(row[col]) }
            }
        } }
        kernels = u.map { Linear(dense: $0, out: cout, in: cin) }
        self.bias = bias ?? [Float](repeating: 0, count: cout)
    }

    static func tiles(height h: Int, width w: Int) -> (rows: Int, cols: Int) { ((h + 1) / 2, (w + 1) / 2) }

    /// Floats of scratch for `images` h x w maps: the transformed input and the 16 GEMM outputs.
    func scratchCount(height h: Int, width w: Int, images: Int) -> Int {
        let (th, tw) = Self.tiles(height: h, width: w)
        return 16 * images * th * tw * (inChannels + outChannels)
    }

    /// out [images, h * w, C_out] from x [images, h * w, C_in].
    func forward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, height h: Int, width w: Int, images: Int,
                 scratch: UnsafeMutablePointer<Float>) {
        let (th, tw) = Self.tiles(height: h, width: w)
        let tiles = images * th * tw, cin = inChannels, cout = outChannels
        nonisolated(unsafe) let v = scratch, m = scratch + 16 * tiles * cin, xp = x, op = out
        // Input transform: V[xi][tile][c] = (B^T d B)[xi], d the 4x4 input tile at (2 ty - 1, 2 tx - 1).
        parallelFor(images * th) { task in
            let img = task / th, ty = task % th
            let src = xp + img * h * w * cin
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: 16) { taps in
                for tx in 0..<tw {
                    let tile = (img * th + ty) * tw + tx
                    for r in 0..<4 { for c in 0..<4 {
                        let y = 2 * ty - 1 + r, xx = 2 * tx - 1 + c
                        taps[r * 4 + c] = (y >= 0 && y < h && xx >= 0 && xx < w) ? UnsafePointer(src + (y * w + xx) * cin) : nil
                    } }
                    Self.inputTransform(taps.baseAddress!, v + tile * cin, stride: tiles * cin, channels: cin)
                }
            }
        }
        // The 16 products.
        for xi in 0..<16 { kernels[xi].forward(m + xi * tiles * cout, v + xi * tiles * cin, rows: tiles) }
        // Output transform: the 2x2 tile A^T M A plus the bias, cropped to the map.
        bias.withUnsafeBufferPointer { bb in
            nonisolated(unsafe) let bp = bb.baseAddress!
            parallelFor(images * th) { task in
                let img = task / th, ty = task % th
                let dst = op + img * h * w * cout
                for tx in 0..<tw {
                    let tile = (img * th + ty) * tw + tx
                    let y0 = 2 * ty, x0 = 2 * tx
                    let o00 = dst + (y0 * w + x0) * cout
                    let o01: UnsafeMutablePointer<Float>? = x0 + 1 < w ? o00 + cout : nil
                    let o10: UnsafeMutablePointer<Float>? = y0 + 1 < h ? o00 + w * cout : nil
                    let o11: UnsafeMutablePointer<Float>? = (x0 + 1 < w && y0 + 1 < h) ? o00 + (w + 1) * cout : nil
                    Self.outputTransform(m + tile * cout, stride: tiles * cout, bias: bp, o00, o01, o10, o11, channels: cout)
                }
            }
        }
    }

    @inline(__always)
    private static func inputTransform(_ taps: UnsafeMutablePointer<UnsafePointer<Float>?>, _ v: UnsafeMutablePointer<Float>,
                                       stride: Int, channels cin: Int) {
        var c = 0
        while c < cin {
            let lanes = min(8, cin - c)
            @inline(__always) func d(_ i: Int) -> SIMD8<Float> { taps[i].map { loadPartial($0 + c, lanes) } ?? SIMD8<Float>() }
            // Row r of B^T d, as its four columns, then that row times B: V[4r ... 4r + 3].
            @inline(__always) func emit(_ r: Int, _ a0: SIMD8<Float>, _ a1: SIMD8<Float>, _ a2: SIMD8<Float>, _ a3: SIMD8<Float>) {
                storePartial(a0 - a2, v + (r * 4) * stride + c, lanes)
                storePartial(a1 + a2, v + (r * 4 + 1) * stride + c, lanes)
                storePartial(a2 - a1, v + (r * 4 + 2) * stride + c, lanes)
                storePartial(a1 - a3, v + (r * 4 + 3) * stride + c, lanes)
            }
            let d00 = d(0), d01 = d(1), d02 = d(2), d03 = d(3), d10 = d(4), d11 = d(5), d12 = d(6), d13 = d(7)
            let d20 = d(8), d21 = d(9), d22 = d(10), d23 = d(11), d30 = d(12), d31 = d(13), d32 = d(14), d33 = d(15)
            emit(0, d00 - d20, d01 - d21, d02 - d22, d03 - d23)
            emit(1, d10 + d20, d11 + d21, d12 + d22, d13 + d23)
            emit(2, d20 - d10, d21 - d11, d22 - d12, d23 - d13)
            emit(3, d10 - d30, d11 - d31, d12 - d32, d13 - d33)
            c += 8
        }
    }

    @inline(__always)
    private static func outputTransform(_ m: UnsafePointer<Float>, stride: Int, bias: UnsafePointer<Float>,
                                        _ o00: UnsafeMutablePointer<Float>, _ o01: UnsafeMutablePointer<Float>?,
                                        _ o10: UnsafeMutablePointer<Float>?, _ o11: UnsafeMutablePointer<Float>?, channels cout: Int) {
        var c = 0
        while c < cout {
            let lanes = min(8, cout - c)
            @inline(__always) func ld(_ i: Int) -> SIMD8<Float> { loadPartial(m + i * stride + c, lanes) }
            // s = A^T M over rows (s0 = m0 + m1 + m2, s1 = m1 - m2 - m3), column by column; then Y = s A.
            let m0 = ld(0), m1 = ld(1), m2 = ld(2), m3 = ld(3), m4 = ld(4), m5 = ld(5), m6 = ld(6), m7 = ld(7)
            let m8 = ld(8), m9 = ld(9), m10 = ld(10), m11 = ld(11), m12 = ld(12), m13 = ld(13), m14 = ld(14), m15 = ld(15)
            let s00 = m0 + m4 + m8, s01 = m1 + m5 + m9, s02 = m2 + m6 + m10, s03 = m3 + m7 + m11
            let s10 = m4 - m8 - m12, s11 = m5 - m9 - m13, s12 = m6 - m10 - m14, s13 = m7 - m11 - m15
            let b = loadPartial(bias + c, lanes)
            storePartial(s00 + s01 + s02 + b, o00 + c, lanes)
            if let o01 { storePartial(s01 - s02 - s03 + b, o01 + c, lanes) }
            if let o10 { storePartial(s10 + s11 + s12 + b, o10 + c, lanes) }
            if let o11 { storePartial(s11 - s12 - s13 + b, o11 + c, lanes) }
            c += 8
        }
    }
}

@inline(__always) private func loadPartial(_ p: UnsafePointer<Float>, _ lanes: Int) -> SIMD8<Float> {
    if lanes == 8 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
    var v = SIMD8<Float>()
    for i in 0..<lanes { v[i] = p[i] }
    return v
}

@inline(__always) private func loadPartial(_ p: UnsafeMutablePointer<Float>, _ lanes: Int) -> SIMD8<Float> {
    loadPartial(UnsafePointer(p), lanes)
}

@inline(__always) private func storePartial(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self); return }
    for i in 0..<lanes { p[i] = v[i] }
}
