// PIL's `Image.resize` for 8-bit RGB images, reproduced bit for bit (Pillow 13's libImaging/Resample.c): a
// separable convolution in two passes through an 8-bit intermediate image; a pass is skipped when its size
// does not change. Horizontal goes first unless the height shrinks by more than twice as many pixels as the
// width (Pillow 13 then runs vertical first for speed; Pillow <= 12 always went horizontal first, so the
// two disagree by one step on some pixels of such resizes). Filter taps are computed in Double with the support widened by the
// downscale factor (antialiasing), normalised to sum 1, then turned into fixed point with 22 fractional bits
// (32 - 8 - 2: room for 8-bit pixels and for filters whose partial sums leave [0, 1]), accumulated in Int32
// from a half-unit bias and clipped to [0, 255]. CLIP's reference preprocessors (transformers'
// CLIPImageProcessor and open_clip via torchvision) both call this PIL code, so matching it makes our crops
// byte-identical to theirs.
import Foundation

/// The PIL resampling filters (raw values are PIL's / transformers' `resample` codes). NEAREST (0, the
/// EfficientNet processor's default) is not a convolution in PIL: it picks pixels through an affine map.
public enum ResampleFilter: Int, Sendable, Codable, CaseIterable {
    case nearest = 0, lanczos = 1, bilinear = 2, bicubic = 3, box = 4, hamming = 5

    var support: Double {
        switch self {
        case .nearest, .box: return 0.5
        case .bilinear, .hamming: return 1
        case .bicubic: return 2
        case .lanczos: return 3
        }
    }

    func weight(_ t: Double) -> Double {
        switch self {
        case .nearest, .box:
            return t > -0.5 && t <= 0.5 ? 1 : 0
        case .bilinear:
            let x = abs(t)
            return x < 1 ? 1 - x : 0
        case .hamming:
            let x = abs(t)
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            let px = x * Double.pi
            // PIL writes these constants as C floats, so they carry float rounding.
            return sin(px) / px * (Double(Float(0.54)) + Double(Float(0.46)) * cos(px))
        case .bicubic:
            // Keys' cubic convolution with a = -0.5, the same polynomial and evaluation order as PIL.
            let a = -0.5
            let x = abs(t)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            guard t >= -3 && t < 3 else { return 0 }
            func sinc(_ v: Double) -> Double {
                if v == 0 { return 1 }
                let pv = v * Double.pi
                return sin(pv) / pv
            }
            return sinc(t) * sinc(t / 3)
        }
    }
}

/// Fixed-point filter taps for resampling one axis from `inSize` to `outSize` samples.
struct ResampleCoefficients {
    static let precisionBits = 32 - 8 - 2

    /// Taps reserved per output sample.
    let kernelSize: Int
    /// For output i: first input index `bounds[2i]` and number of taps `bounds[2i + 1]`.
    let bounds: [Int32]
    /// `outSize * kernelSize` fixed-point weights; unused taps are zero.
    let weights: [Int32]

    init(inSize: Int, outSize: Int, filter: ResampleFilter) {
        // PIL passes the box edges as C floats; for whole-image boxes that is exact.
        let scale = Double(Float(inSize)) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int32](repeating: 0, count: outSize * 2)
        var weights = [Int32](repeating: 0, count: outSize * ksize)
        var taps = [Double](repeating: 0, count: ksize)
        let ss = 1.0 / filterScale
        let one = Double(1 << Self.precisionBits)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            // C's (int) cast truncates toward zero, so clamp after truncation exactly like PIL.
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var sum = 0.0
            for x in 0..<xmax {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * ss)
                taps[x] = w
                sum += w
            }
            for x in 0..<xmax {
                var w = taps[x]
                if sum != 0 { w /= sum }
                weights[xx * ksize + x] = Int32(w < 0 ? -0.5 + w * one : 0.5 + w * one)
            }
            bounds[2 * xx] = Int32(xmin)
            bounds[2 * xx + 1] = Int32(xmax)
        }
        self.kernelSize = ksize
        self.bounds = bounds
        self.weights = weights
    }
}

extension RGBImage {
    /// This image resized to `width` x `height` exactly as PIL's `Image.resize((width, height), filter)` does on
    /// an RGB image.
    public func resized(width outW: Int, height outH: Int, filter: ResampleFilter = .bicubic) -> RGBImage {
        precondition(outW > 0 && outH > 0, "resize to \(outW)x\(outH)")
        if outW == width && outH == height { return self }
        if filter == .nearest { return nearestResized(width: outW, height: outH) }
        let vertical = ResampleCoefficients(inSize: height, outSize: outH, filter: filter)
        let horizontal = ResampleCoefficients(inSize: width, outSize: outW, filter: filter)
        let shrinkY = height - outH, shrinkX = width - outW
        let horizontalFirst = !(shrinkY > 0 && shrinkY > shrinkX * 2)
        if !horizontalFirst {
            var out = outH == height ? self : resampleColumns(vertical, outHeight: outH, rowOffset: 0)
            if outW != width { out = out.resampleRows(horizontal, outWidth: outW, rows: 0..<outH) }
            return out
        }
        // The horizontal pass only needs the rows the vertical pass will read.
        let firstRow = Int(vertical.bounds[0])
        let lastRow = Int(vertical.bounds[2 * outH - 2] + vertical.bounds[2 * outH - 1])
        var source = self
        var rowOffset = 0
        if outW != width {
            source = resampleRows(horizontal, outWidth: outW, rows: firstRow..<lastRow)
            rowOffset = firstRow
        }
        if outH == height { return source }
        return source.resampleColumns(vertical, outHeight: outH, rowOffset: rowOffset)
    }

    /// PIL's NEAREST resize (an affine scale): source column floor(a/2 + x a), a = in / out, with the position
    /// accumulated step by step (so its rounding is PIL's: a row at exactly n.0 can come out n - 1), and the
    /// same for rows. Checked against Pillow 13 on 300 random size pairs.
    private func nearestResized(width outW: Int, height outH: Int) -> RGBImage {
        let ax = Double(width) / Double(outW), ay = Double(height) / Double(outH)
        var columns = [Int](repeating: -1, count: outW)
        var xo = ax * 0.5
        for x in 0..<outW {
            let xin = xo < 0 ? -1 : Int(xo)
            if xin >= 0 && xin < width { columns[x] = xin }
            xo += ax
        }
        var out = [UInt8](repeating: 0, count: outW * outH * 3)
        var yo = ay * 0.5
        for y in 0..<outH {
            let yi = yo < 0 ? -1 : Int(yo)
            yo += ay
            guard yi >= 0 && yi < height else { continue }
            for x in 0..<outW where columns[x] >= 0 {
                let src = (yi * width + columns[x]) * 3, dst = (y * outW + x) * 3
                out[dst] = pixels[src]; out[dst + 1] = pixels[src + 1]; out[dst + 2] = pixels[src + 2]
            }
        }
        return RGBImage(width: outW, height: outH, pixels: out)
    }

    /// Horizontal pass over `rows`, producing an image of `rows.count` rows.
    private func resampleRows(_ c: ResampleCoefficients, outWidth: Int, rows: Range<Int>) -> RGBImage {
        var out = [UInt8](repeating: 0, count: outWidth * rows.count * 3)
        let ksize = c.kernelSize
        let half = Int32(1 << (ResampleCoefficients.precisionBits - 1))
        let inRow = width * 3
        pixels.withUnsafeBufferPointer { src in
            c.weights.withUnsafeBufferPointer { kk in
                c.bounds.withUnsafeBufferPointer { bounds in
                    out.withUnsafeMutableBufferPointer { dst in
                        for (r, y) in rows.enumerated() {
                            let line = src.baseAddress! + y * inRow
                            var o = dst.baseAddress! + r * outWidth * 3
                            for xx in 0..<outWidth {
                                let xmin = Int(bounds[2 * xx]), n = Int(bounds[2 * xx + 1])
                                let k = kk.baseAddress! + xx * ksize
                                var p = line + xmin * 3
                                var s0 = half, s1 = half, s2 = half
                                for t in 0..<n {
                                    let w = k[t]
                                    s0 &+= Int32(p[0]) &* w
                                    s1 &+= Int32(p[1]) &* w
                                    s2 &+= Int32(p[2]) &* w
                                    p += 3
                                }
                                o[0] = clip8(s0); o[1] = clip8(s1); o[2] = clip8(s2)
                                o += 3
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(width: outWidth, height: rows.count, pixels: out)
    }

    /// Vertical pass; output row yy reads input rows `bounds[2yy] - rowOffset ...`.
    private func resampleColumns(_ c: ResampleCoefficients, outHeight: Int, rowOffset: Int) -> RGBImage {
        let rowLen = width * 3
        var out = [UInt8](repeating: 0, count: rowLen * outHeight)
        var acc = [Int32](repeating: 0, count: rowLen)
        let ksize = c.kernelSize
        let half = Int32(1 << (ResampleCoefficients.precisionBits - 1))
        pixels.withUnsafeBufferPointer { src in
            c.weights.withUnsafeBufferPointer { kk in
                acc.withUnsafeMutableBufferPointer { acc in
                    out.withUnsafeMutableBufferPointer { dst in
                        for yy in 0..<outHeight {
                            let ymin = Int(c.bounds[2 * yy]) - rowOffset, n = Int(c.bounds[2 * yy + 1])
                            // Integer sums are order-independent, so accumulating whole rows (which
                            // vectorises) gives PIL's per-pixel result exactly.
                            for i in 0..<rowLen { acc[i] = half }
                            for t in 0..<n {
                                let w = kk[yy * ksize + t]
                                let line = src.baseAddress! + (ymin + t) * rowLen
                                for i in 0..<rowLen { acc[i] &+= Int32(line[i]) &* w }
                            }
                            let o = dst.baseAddress! + yy * rowLen
                            for i in 0..<rowLen { o[i] = clip8(acc[i]) }
                        }
                    }
                }
            }
        }
        return RGBImage(width: width, height: outHeight, pixels: out)
    }
}

@inline(__always)
private func clip8(_ v: Int32) -> UInt8 {
    let s = v >> Int32(ResampleCoefficients.precisionBits)  // arithmetic shift floors, as in C
    return UInt8(clamping: s)
}
