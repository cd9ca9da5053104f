// Convolutions for the convolutional image towers (EfficientNet in ALIGN, and the ResNets and ConvNeXts
// to come), on channels-last feature maps: an image is [H * W, C], row (y * W + x), so a 1x1 convolution is
// a Linear over the pixel rows (one GEMM), a depthwise convolution walks contiguous channel vectors, and
// a dense k x k convolution unfolds its receptive fields into rows (im2col) for the same GEMM.
// Padding is given per side (PyTorch's "same", ZeroPad2d, correct_pad): taps outside the map read zero.
// An eval-mode BatchNorm after a convolution is folded into its weights and bias once, at load.
import Tensors

/// The geometry of one convolution over an H x W map.
public struct ConvGeometry: Sendable, Equatable {
    public var kernel: Int
    public var stride: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int

    public init(kernel: Int, stride: Int, padTop: Int, padLeft: Int, padBottom: Int, padRight: Int) {
        self.kernel = kernel; self.stride = stride
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
    }

    /// Symmetric padding of k / 2 (PyTorch's padding="same" for an odd kernel at stride 1).
    public static func same(kernel: Int) -> ConvGeometry {
        ConvGeometry(kernel: kernel, stride: 1, padTop: kernel / 2, padLeft: kernel / 2, padBottom: kernel / 2, padRight: kernel / 2)
    }

    /// floor((n + pads - k) / stride) + 1 (0 when the kernel does not fit).
    public func outputSize(height h: Int, width w: Int) -> (height: Int, width: Int) {
        let ph = h + padTop + padBottom - kernel, pw = w + padLeft + padRight - kernel
        guard ph >= 0, pw >= 0 else { return (0, 0) }
        return (ph / stride + 1, pw / stride + 1)
    }
}

/// Eval-mode BatchNorm2d parameters, to fold into the convolution before it.
public struct BatchNormParameters: Sendable {
    public var weight: [Float], bias: [Float], runningMean: [Float], runningVar: [Float]
    public var eps: Float

    public init(weight: [Float], bias: [Float], runningMean: [Float], runningVar: [Float], eps: Float) {
        self.weight = weight; self.bias = bias; self.runningMean = runningMean; self.runningVar = runningVar; self.eps = eps
    }

    /// Per channel (scale, shift): BN(y) = scale * y + shift, computed in Double.
    public var affine: (scale: [Float], shift: [Float]) {
        var scale = [Float](repeating: 0, count: weight.count), shift = scale
        for c in weight.indices {
            let s = Double(weight[c]) / (Double(runningVar[c]) + Double(eps)).squareRoot()
            scale[c] = Float(s)
            shift[c] = Float(Double(bias[c]) - Double(runningMean[c]) * s)
        }
        return (scale, shift)
    }

    /// Folds BN into a convolution with output-major weights [out, rest] and an optional bias.
    public func fold(weights: [Float], outputs: Int, bias: [Float]?) -> (weights: [Float], bias: [Float]) {
        let (scale, shift) = affine
        let rest = weights.count / outputs
        var w = weights
        var b = [Float](repeating: 0, count: outputs)
        for o in 0..<outputs {
            let s = scale[o]
            for i in 0..<rest { w[o * rest + i] = Float(Double(weights[o * rest + i]) * Double(s)) }
            b[o] = Float(Double(shift[o]) + Double(bias?[o] ?? 0) * Double(s))
        }
        return (w, b)
    }
}

extension StrictWeightReader {
    /// An eval-mode BatchNorm2d under `prefix`: weight, bias, running_mean, running_var of `n` channels.
    public mutating func batchNorm(_ prefix: String, _ n: Int, eps: Float) throws -> BatchNormParameters {
        BatchNormParameters(weight: try take(prefix + ".weight", [n]), bias: try take(prefix + ".bias", [n]),
                            runningMean: try take(prefix + ".running_mean", [n]), runningVar: try take(prefix + ".running_var", [n]),
                            eps: eps)
    }

    /// A bias-free convolution `conv` [out, in, k, k] and the BatchNorm `norm` after it, folded into one
    /// weight and bias (`in` is 1 for a depthwise convolution).
    public mutating func convolutionWithBatchNorm(_ conv: String, _ norm: String, out: Int, in k: Int, kernel: Int,
                                                  eps: Float) throws -> (weights: [Float], bias: [Float]) {
        let w = try take(conv + ".weight", [out, k, kernel, kernel])
        return try batchNorm(norm, out, eps: eps).fold(weights: w, outputs: out, bias: nil)
    }
}

/// Per channel, the mean over `pixels` channels-last rows (accumulated in Double, as a mean over hundreds of
/// pixels in Float drifts from torch's).
public func channelMeans(_ x: UnsafePointer<Float>, pixels: Int, channels c: Int) -> [Float] {
    var acc = [Double](repeating: 0, count: c)
    for p in 0..<pixels {
        let row = x + p * c
        for i in 0..<c { acc[i] += Double(row[i]) }
    }
    return acc.map { Float($0 / Double(pixels)) }
}

/// A depthwise convolution (groups == channels, one k x k filter per channel) on channels-last maps.
public struct DepthwiseConv2D: Sendable {
    public let channels: Int
    public let geometry: ConvGeometry
    /// [k * k, C]: tap-major so the channels of one tap are contiguous.
    let taps: [Float]
    let bias: [Float]

    /// `weight` as PyTorch stores it, [C, 1, k, k] flattened.
    public init(weight: [Float], bias: [Float]?, channels: Int, geometry: ConvGeometry) {
        let k = geometry.kernel
        precondition(weight.count == channels * k * k)
        var t = [Float](repeating: 0, count: k * k * channels)
        for c in 0..<channels { for i in 0..<(k * k) { t[i * channels + c] = weight[c * k * k + i] } }
        taps = t
        self.bias = bias ?? [Float](repeating: 0, count: channels)
        self.channels = channels
        self.geometry = geometry
    }

    /// out [oh * ow, C] from x [h * w, C].
    public func forward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, height h: Int, width w: Int) {
        let g = geometry, k = g.kernel, c = channels
        let (oh, ow) = g.outputSize(height: h, width: w)
        taps.withUnsafeBufferPointer { tb in bias.withUnsafeBufferPointer { bb in
            nonisolated(unsafe) let t = tb.baseAddress!, b = bb.baseAddress!
            nonisolated(unsafe) let xp = x, op = out
            parallelFor(oh, minPerChunk: max(1, 4096 / max(1, ow * c / 8))) { oy in
                let y0 = oy * g.stride - g.padTop
                let ky0 = max(0, -y0), ky1 = min(k, h - y0)
                for ox in 0..<ow {
                    let x0 = ox * g.stride - g.padLeft
                    let kx0 = max(0, -x0), kx1 = min(k, w - x0)
                    let o = op + (oy * ow + ox) * c
                    var ch = 0
                    while ch + 16 <= c {
                        var a0 = load(b + ch), a1 = load(b + ch + 8)
                        for ky in ky0..<max(ky0, ky1) {
                            let row = xp + ((y0 + ky) * w + x0) * c + ch
                            let trow = t + (ky * k) * c + ch
                            for kx in kx0..<max(kx0, kx1) {
                                let xi = row + kx * c, ti = trow + kx * c
                                a0.addProduct(load(xi), load(ti)); a1.addProduct(load(xi + 8), load(ti + 8))
                            }
                        }
                        store(a0, o + ch); store(a1, o + ch + 8)
                        ch += 16
                    }
                    while ch < c {
                        var a = b[ch]
                        for ky in ky0..<max(ky0, ky1) { for kx in kx0..<max(kx0, kx1) {
                            a += xp[((y0 + ky) * w + x0 + kx) * c + ch] * t[(ky * k + kx) * c + ch]
                        } }
                        o[ch] = a
                        ch += 1
                    }
                }
            }
        } }
    }
}

/// A dense k x k convolution: im2col rows in (ky, kx, c_in) order (each tap's channels are one contiguous copy
/// from the channels-last map) times the weight, permuted once to that order, as one Linear. A stride-1, pad-1
/// 3x3 convolution with at least 16 input and output channels runs as Winograd F(2x2, 3x3) instead (Winograd.swift).
public struct Conv2D: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let geometry: ConvGeometry
    let linear: Linear?
    let winograd: WinogradWeights?

    /// `weight` as PyTorch stores it, [C_out, C_in, k, k] flattened. `winograd: false` keeps the im2col GEMM.
    public init(weight: [Float], bias: [Float]?, inChannels: Int, outChannels: Int, geometry: ConvGeometry, winograd: Bool = true) {
        let k = geometry.kernel
        precondition(weight.count == outChannels * inChannels * k * k)
        self.inChannels = inChannels; self.outChannels = outChannels; self.geometry = geometry
        let g = geometry
        if winograd, k == 3, g.stride == 1, g.padTop == 1, g.padLeft == 1, g.padBottom == 1, g.padRight == 1,
           inChannels >= 16, outChannels >= 16 {
            self.winograd = WinogradWeights(weight: weight, bias: bias, inChannels: inChannels, outChannels: outChannels)
            linear = nil
            return
        }
        self.winograd = nil
        let kk = inChannels * k * k
        var permuted = [Float](repeating: 0, count: weight.count)
        for o in 0..<outChannels { for ci in 0..<inChannels { for t in 0..<(k * k) {
            permuted[o * kk + t * inChannels + ci] = weight[o * kk + ci * k * k + t]
        } } }
        linear = Linear(dense: permuted, out: outChannels, in: kk, bias: bias)
    }

    /// True when this convolution runs as Winograd F(2x2, 3x3).
    public var usesWinograd: Bool { winograd != nil }

    /// Floats of scratch `forward` needs for `images` h x w inputs.
    public func columnCount(height h: Int, width w: Int, images: Int = 1) -> Int {
        if let winograd { return winograd.scratchCount(height: h, width: w, images: images) }
        let (oh, ow) = geometry.outputSize(height: h, width: w)
        return images * oh * ow * inChannels * geometry.kernel * geometry.kernel
    }

    /// out [images, oh * ow, C_out] from x [images, h * w, C_in] (one GEMM for all images); `columns` holds at
    /// least columnCount(height:width:images:) floats.
    public func forward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, height h: Int, width w: Int,
                        images: Int = 1, columns: UnsafeMutablePointer<Float>) {
        if let winograd {
            winograd.forward(out, x, height: h, width: w, images: images, scratch: columns)
            return
        }
        let g = geometry, k = g.kernel, cin = inChannels
        let (oh, ow) = g.outputSize(height: h, width: w)
        let kk = cin * k * k
        nonisolated(unsafe) let xbase = x, cols = columns
        parallelFor(images * oh) { task in
            let img = task / oh, oy = task % oh
            let xp = xbase + img * h * w * cin
            for ox in 0..<ow {
                let row = cols + ((img * oh + oy) * ow + ox) * kk
                let y0 = oy * g.stride - g.padTop, x0 = ox * g.stride - g.padLeft
                for ky in 0..<k {
                    let y = y0 + ky
                    for kx in 0..<k {
                        let xx = x0 + kx
                        let dst = row + (ky * k + kx) * cin
                        if y >= 0 && y < h && xx >= 0 && xx < w {
                            dst.update(from: xp + (y * w + xx) * cin, count: cin)
                        } else {
                            dst.update(repeating: 0, count: cin)
                        }
                    }
                }
            }
        }
        linear!.forward(out, columns, rows: images * oh * ow)
    }
}

/// Average pooling with a k x k window at stride k (PyTorch AvgPool2d(k): no padding, floor), channels-last,
/// over `images` maps one after another.
public func averagePool(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, height h: Int, width w: Int,
                        channels c: Int, kernel k: Int, images: Int = 1) {
    let oh = h / k, ow = w / k
    let inv = 1 / Float(k * k)
    nonisolated(unsafe) let xbase = x, obase = out
    parallelFor(images * oh) { task in
        let img = task / oh, oy = task % oh
        let xp = xbase + img * h * w * c, op = obase + img * oh * ow * c
        for ox in 0..<ow {
            let o = op + (oy * ow + ox) * c
            o.update(repeating: 0, count: c)
            for ky in 0..<k { for kx in 0..<k { Vec.add(o, xp + ((oy * k + ky) * w + ox * k + kx) * c, c) } }
            Vec.scale(o, inv, c)
        }
    }
}

/// Average pooling with a k x k window, stride and symmetric zero padding, dividing by the taps inside the map
/// (PyTorch AvgPool2d(k, stride, padding, count_include_pad=False), floor mode), channels-last, one map.
public func averagePool(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, height h: Int, width w: Int,
                        channels c: Int, kernel k: Int, stride: Int, padding pad: Int) {
    let geo = ConvGeometry(kernel: k, stride: stride, padTop: pad, padLeft: pad, padBottom: pad, padRight: pad)
    let (oh, ow) = geo.outputSize(height: h, width: w)
    nonisolated(unsafe) let xp = x, op = out
    parallelFor(oh) { oy in
        let y0 = oy * stride - pad, ky0 = max(0, -y0), ky1 = min(k, h - y0)
        for ox in 0..<ow {
            let x0 = ox * stride - pad, kx0 = max(0, -x0), kx1 = min(k, w - x0)
            let o = op + (oy * ow + ox) * c
            o.update(repeating: 0, count: c)
            for ky in ky0..<max(ky0, ky1) { for kx in kx0..<max(kx0, kx1) { Vec.add(o, xp + ((y0 + ky) * w + x0 + kx) * c, c) } }
            Vec.scale(o, 1 / Float(max(1, (ky1 - ky0) * (kx1 - kx0))), c)
        }
    }
}

/// A CHW s x s image into a channels-last [s * s, 3] map at `dst`.
public func channelsLast(_ dst: UnsafeMutablePointer<Float>, chw: [Float], size s: Int) {
    let pixels = s * s
    precondition(chw.count == 3 * pixels)
    chw.withUnsafeBufferPointer { src in
        let r = src.baseAddress!, g = r + pixels, b = g + pixels
        for i in 0..<pixels {
            dst[3 * i] = r[i]; dst[3 * i + 1] = g[i]; dst[3 * i + 2] = b[i]
        }
    }
}

/// y = max(y + x, 0) over n floats (a residual add and its ReLU in one pass).
public func addReLU(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) {
    nonisolated(unsafe) let yp = y, xp = x
    parallelChunks((n + 7) / 8, minPerChunk: 4096) { r in
        let start = r.lowerBound * 8, end = min(n, r.upperBound * 8)
        var i = start
        let zero = SIMD8<Float>()
        while i + 8 <= end {
            var v = load(yp + i) + load(xp + i)
            v.replace(with: zero, where: v .< zero)
            store(v, yp + i)
            i += 8
        }
        while i < end { yp[i] = max(yp[i] + xp[i], 0); i += 1 }
    }
}

/// max(x, 0) in place.
public func relu(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    nonisolated(unsafe) let xp = x
    parallelChunks(n, minPerChunk: 1 << 15) { r in
        for i in r where xp[i] < 0 { xp[i] = 0 }
    }
}

@inline(__always) private func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) private func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) private func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
