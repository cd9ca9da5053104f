// timm's ConvNeXt as open_clip's TimmModel wraps it (convnext_tiny ... convnext_xxlarge): a 4x4 stride-4
// patchify convolution and LayerNorm; four stages, each after the first opened by LayerNorm + a 2x2 stride-2
// convolution; blocks of depthwise 7x7 convolution, LayerNorm, Linear-GELU-Linear, a per-channel layer scale
// (gamma) and the residual. The head (timm_pool "": the trunk keeps its own average pool and head.norm) is
// the mean over the final map, LayerNorm, then open_clip's projection: Linear without bias ("linear"), or
// Linear-GELU-Linear ("mlp"). Maps are channels-last, so every LayerNorm2d is a row LayerNorm.
import Layers
import Tensors

public struct ConvNeXtConfig: Sendable, Equatable {
    public var timmName: String
    public var depths: [Int]
    public var dims: [Int]
    public var normEps: Float
    public var imageSize: Int
    public var embedDim: Int
    /// "linear" or "mlp".
    public var projection: String
    public var projectionBias: Bool

    /// timm's registered variants that open_clip configs name.
    static let variants: [String: (depths: [Int], dims: [Int], eps: Float)] = [
        "convnext_tiny": ([3, 3, 9, 3], [96, 192, 384, 768], 1e-6),
        "convnext_small": ([3, 3, 27, 3], [96, 192, 384, 768], 1e-6),
        "convnext_base": ([3, 3, 27, 3], [128, 256, 512, 1024], 1e-6),
        "convnext_large": ([3, 3, 27, 3], [192, 384, 768, 1536], 1e-6),
        "convnext_xlarge": ([3, 3, 27, 3], [256, 512, 1024, 2048], 1e-6),
        "convnext_xxlarge": ([3, 4, 30, 3], [384, 768, 1536, 3072], 1e-5),
    ]
}

struct ConvNeXtBlockWeights: Sendable {
    var depthwise: DepthwiseConv2D
    var norm: LayerNormWeights
    var fc1: Linear, fc2: Linear
    var gamma: [Float]
}

struct ConvNeXtWeights: Sendable {
    var stem: Conv2D
    var stemNorm: LayerNormWeights
    var downsample: [(norm: LayerNormWeights, conv: Conv2D)?]   // per stage; nil for the first
    var blocks: [[ConvNeXtBlockWeights]]
    var headNorm: LayerNormWeights
    var projection: Linear
    var projection2: Linear?                                    // the "mlp" head's second Linear
}

struct ConvNeXtTower: Sendable {
    let config: ConvNeXtConfig
    let weights: ConvNeXtWeights
    func embed(_ images: [[Float]]) throws -> [[Float]] {
        try embedInPasses(images, imageSize: config.imageSize, embedBatch)
    }

    private func embedBatch(_ images: [[Float]]) -> [[Float]] {
        let c = config, s = c.imageSize, n = images.count, eps = c.normEps
        let stemGeo = weights.stem.geometry
        let h0 = stemGeo.outputSize(height: s, width: s).height
        // The largest map: the first stage's hidden MLP width (4 x dims[0]) at h0 x h0.
        var largest = 3 * s * s, h = h0
        for (i, d) in c.dims.enumerated() {
            if i > 0 { h /= 2 }
            largest = max(largest, h * h * 4 * d)
        }
        var a0 = [Float](repeating: 0, count: n * largest), a1 = a0, a2 = a0
        var columns = [Float](repeating: 0, count: n * weights.stem.columnCount(height: s, width: s))
        var pooled = [Float](repeating: 0, count: n * c.dims.last!)
        var out = [Float](repeating: 0, count: n * c.embedDim)
        a0.withUnsafeMutableBufferPointer { b0 in a1.withUnsafeMutableBufferPointer { b1 in a2.withUnsafeMutableBufferPointer { b2 in
        columns.withUnsafeMutableBufferPointer { cb in
            var cur = b0.baseAddress!, t1 = b1.baseAddress!
            let hidden = b2.baseAddress!
            for (i, chw) in images.enumerated() {
                let dst = t1 + i * s * s * 3
                channelsLast(dst, chw: chw, size: s)
            }
            weights.stem.forward(cur, t1, height: s, width: s, images: n, columns: cb.baseAddress!)
            var h = h0
            layerNorm(cur, cur, weights.stemNorm, rows: n * h * h, dim: c.dims[0], eps: eps)
            for (stage, d) in c.dims.enumerated() {
                if let ds = weights.downsample[stage] {
                    let prev = c.dims[stage - 1]
                    layerNorm(cur, cur, ds.norm, rows: n * h * h, dim: prev, eps: eps)
                    // A 2x2 stride-2 convolution: the im2col rows are the four taps' channels side by side.
                    ds.conv.forward(t1, cur, height: h, width: h, images: n, columns: hidden)
                    h /= 2
                    swap(&cur, &t1)
                }
                let rows = n * h * h
                for blk in weights.blocks[stage] {
                    for i in 0..<n { blk.depthwise.forward(t1 + i * h * h * d, cur + i * h * h * d, height: h, width: h) }
                    layerNorm(t1, t1, blk.norm, rows: rows, dim: d, eps: eps)
                    blk.fc1.forward(hidden, t1, rows: rows)
                    CLIPActivation.apply(.gelu, hidden, count: rows * 4 * d)
                    blk.fc2.forward(t1, hidden, rows: rows)
                    blk.gamma.withUnsafeBufferPointer { g in
                        nonisolated(unsafe) let gp = g.baseAddress!, tp = t1, cp = cur
                        parallelFor(rows, minPerChunk: max(1, 8192 / d)) { r in
                            let o = tp + r * d, x = cp + r * d
                            for k in 0..<d { x[k] += o[k] * gp[k] }
                        }
                    }
                }
            }
            let d = c.dims.last!, pixels = h * h
            pooled.withUnsafeMutableBufferPointer { pb in
                let pp = pb.baseAddress!
                for i in 0..<n { (pp + i * d).update(from: channelMeans(cur + i * pixels * d, pixels: pixels, channels: d), count: d) }
                layerNorm(pp, pp, weights.headNorm, rows: n, dim: d, eps: eps)
                out.withUnsafeMutableBufferPointer { ob in
                    if let second = weights.projection2 {
                        var mid = [Float](repeating: 0, count: n * weights.projection.outFeatures)
                        mid.withUnsafeMutableBufferPointer { mb in
                            weights.projection.forward(mb.baseAddress!, pp, rows: n)
                            CLIPActivation.apply(.gelu, mb.baseAddress!, count: n * weights.projection.outFeatures)
                            second.forward(ob.baseAddress!, mb.baseAddress!, rows: n)
                        }
                    } else {
                        weights.projection.forward(ob.baseAddress!, pp, rows: n)
                    }
                }
            }
        } } } }
        return (0..<n).map { Array(out[($0 * c.embedDim)..<(($0 + 1) * c.embedDim)]) }
    }
}

extension ConvNeXtTower {
    static func read(_ c: ConvNeXtConfig, _ r: inout StrictWeightReader) throws -> ConvNeXtWeights {
        let p = "visual.trunk."
        let d0 = c.dims[0]
        let stem = Conv2D(weight: try r.take(p + "stem.0.weight", [d0, 3, 4, 4]), bias: try r.take(p + "stem.0.bias", [d0]),
                          inChannels: 3, outChannels: d0,
                          geometry: ConvGeometry(kernel: 4, stride: 4, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0))
        var downsample: [(norm: LayerNormWeights, conv: Conv2D)?] = []
        var blocks: [[ConvNeXtBlockWeights]] = []
        for (i, d) in c.dims.enumerated() {
            let sp = p + "stages.\(i)."
            if i > 0 {
                let prev = c.dims[i - 1]
                downsample.append((try r.norm(sp + "downsample.0", prev),
                                   Conv2D(weight: try r.take(sp + "downsample.1.weight", [d, prev, 2, 2]),
                                          bias: try r.take(sp + "downsample.1.bias", [d]), inChannels: prev, outChannels: d,
                                          geometry: ConvGeometry(kernel: 2, stride: 2, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0))))
            } else {
                downsample.append(nil)
            }
            blocks.append(try (0..<c.depths[i]).map { j in
                let bp = sp + "blocks.\(j)."
                return ConvNeXtBlockWeights(
                    depthwise: DepthwiseConv2D(weight: try r.take(bp + "conv_dw.weight", [d, 1, 7, 7]), bias: try r.take(bp + "conv_dw.bias", [d]),
                                               channels: d, geometry: .same(kernel: 7)),
                    norm: try r.norm(bp + "norm", d),
                    fc1: try r.linear(bp + "mlp.fc1", out: 4 * d, in: d),
                    fc2: try r.linear(bp + "mlp.fc2", out: d, in: 4 * d),
                    gamma: try r.take(bp + "gamma", [d]))
            })
        }
        let last = c.dims.last!
        let headNorm = try r.norm(p + "head.norm", last)
        let projection: Linear, second: Linear?
        if c.projection == "mlp" {
            projection = try r.linear("visual.head.mlp.fc1", out: last, in: last)
            second = try r.linear("visual.head.mlp.fc2", out: c.embedDim, in: last, bias: c.projectionBias)
        } else {
            projection = try r.linear("visual.head.proj", out: c.embedDim, in: last, bias: c.projectionBias)
            second = nil
        }
        return ConvNeXtWeights(stem: stem, stemNorm: try r.norm(p + "stem.1", d0), downsample: downsample, blocks: blocks,
                               headNorm: headNorm, projection: projection, projection2: second)
    }
}
