// timm's ViTamin (vitamin_*: open_clip's ViTamin-S ... ViTamin-XL configs): a hybrid ViT whose patch embedding is
// a convolutional backbone (timm's HybridEmbed with MbConvStages, proj=False, patch size 1):
//   stem:    3x3 stride-2 conv, LayerNorm2d + GELU, 3x3 conv;
//   stages:  two stages of pre-norm MBConv blocks (LayerNorm2d, 1x1 expand x4, GELU, depthwise 3x3 (stride 2 in a
//            stage's first block), GELU, 1x1 project, plus the shortcut: a 3x3 stride-2 average pool
//            (count_include_pad=False) and a 1x1 conv when the width changes);
//   pool:    LayerNorm2d, 3x3 stride-2 conv to the ViT width,
// so a 16x smaller grid of tokens. The ViT after it is timm's VisionTransformer with GeGLU MLPs (GeGluMlp: its own
// LayerNorm, GELU(w0 x) * w1 x, w2), no class token, a learned position embedding (none for the XL variants), the
// average pool and fc_norm; open_clip's head.proj projects. Every convolution pads by 1 on each side, as timm's
// create_conv2d does for a 3x3 kernel. Maps are channels-last, so LayerNorm2d is a row LayerNorm.
import Layers
import Tensors

/// The convolutional stem of a ViTamin trunk (timm VitCfg: embed_dim[0...2], depths[0...1], stem_width).
public struct ViTaminStemConfig: Sendable, Equatable {
    public var stemWidth: Int
    /// The two MBConv stages' widths and depths.
    public var stageWidths: [Int]
    public var stageDepths: [Int]
    /// embed_dim[2]: the ViT width the final strided conv produces.
    public var outWidth: Int
    /// LayerNorm2d eps of the stem, the blocks and the pool (timm's defaults for these modules).
    public var normEps: Float = 1e-6

    /// Every stride-2 step (stem, two stages, pool) rounds up; open_clip's sizes are multiples of 16.
    public func gridSize(imageSize s: Int) -> Int {
        var g = s
        for _ in 0..<4 { g = (g + 1) / 2 }
        return g
    }

    /// timm's make_divisible(out * 4, 8): the MBConv hidden width.
    static func hiddenWidth(_ out: Int) -> Int {
        let v = Double(out) * 4, d = 8
        var n = max(d, Int(v + Double(d) / 2) / d * d)
        if Double(n) < 0.9 * v { n += d }
        return n
    }
}

struct MbConvBlockWeights: Sendable {
    var stride: Int
    var shortcutConv: Linear?     // 1x1 conv after the pool (stride 2) or alone (stride 1) when the width changes
    var preNorm: LayerNormWeights
    var expand: Linear            // 1x1 to the hidden width
    var depthwise: DepthwiseConv2D
    var project: Linear           // 1x1 back to the block width
}

struct ViTaminStemWeights: Sendable {
    var conv1: Conv2D
    var norm1: LayerNormWeights
    var conv2: Conv2D
    var blocks: [MbConvBlockWeights]   // both stages, in order
    var poolNorm: LayerNormWeights
    var poolConv: Conv2D
}

struct ViTaminStem: Sendable {
    let config: ViTaminStemConfig
    let weights: ViTaminStemWeights

    /// Tokens [images, grid * grid, outWidth] (row-major grid) of CHW s x s images, written to `out`; the work
    /// buffers are sized once and reused image after image.
    func forward(_ out: UnsafeMutablePointer<Float>, images: [[Float]], size s: Int) {
        let eps = config.normEps
        // Four buffers of the largest map: the input, the stem's output, or a stage's hidden width at the stage's
        // input resolution (its first block expands before the strided depthwise conv).
        let h1 = (s + 1) / 2
        var largest = max(3 * s * s, h1 * h1 * config.stemWidth)
        var h = h1
        for width in config.stageWidths {
            let hidden = ViTaminStemConfig.hiddenWidth(width)
            largest = max(largest, h * h * hidden)   // the first block's expand runs at the input resolution
            h = (h + 1) / 2
            largest = max(largest, h * h * hidden)
        }
        var a = [Float](repeating: 0, count: largest), b = a, c = a, d = a
        var columns = [Float](repeating: 0, count: max(weights.conv1.columnCount(height: s, width: s),
                                                       weights.conv2.columnCount(height: h1, width: h1),
                                                       weights.poolConv.columnCount(height: h, width: h)))
        a.withUnsafeMutableBufferPointer { ab in b.withUnsafeMutableBufferPointer { bb in
        c.withUnsafeMutableBufferPointer { cb in d.withUnsafeMutableBufferPointer { db in
        columns.withUnsafeMutableBufferPointer { colb in
            let t = cb.baseAddress!, u = db.baseAddress!, cols = colb.baseAddress!
            let tokens = config.gridSize(imageSize: s) * config.gridSize(imageSize: s) * config.outWidth
            for (i, chw) in images.enumerated() {
                var x = ab.baseAddress!, y = bb.baseAddress!
                channelsLast(x, chw: chw, size: s)
                weights.conv1.forward(y, x, height: s, width: s, columns: cols)
                var h = h1, width = config.stemWidth
                layerNorm(y, y, weights.norm1, rows: h * h, dim: width, eps: eps)
                CLIPActivation.apply(.gelu, y, count: h * h * width)
                weights.conv2.forward(x, y, height: h, width: h, columns: cols)
                for block in weights.blocks {
                    let out = block.project.outFeatures, hidden = block.expand.outFeatures
                    let oh = block.depthwise.geometry.outputSize(height: h, width: h).height
                    // The shortcut into y.
                    if block.stride == 2 {
                        averagePool(t, x, height: h, width: h, channels: width, kernel: 3, stride: 2, padding: 1)
                        if let conv = block.shortcutConv { conv.forward(y, t, rows: oh * oh) } else { y.update(from: t, count: oh * oh * width) }
                    } else if let conv = block.shortcutConv {
                        conv.forward(y, x, rows: h * h)
                    } else {
                        y.update(from: x, count: h * h * width)
                    }
                    layerNorm(t, x, block.preNorm, rows: h * h, dim: width, eps: eps)
                    block.expand.forward(u, t, rows: h * h)
                    CLIPActivation.apply(.gelu, u, count: h * h * hidden)
                    block.depthwise.forward(t, u, height: h, width: h)
                    CLIPActivation.apply(.gelu, t, count: oh * oh * hidden)
                    block.project.forward(u, t, rows: oh * oh)
                    Vec.add(y, u, oh * oh * out)
                    swap(&x, &y)
                    h = oh
                    width = out
                }
                layerNorm(t, x, weights.poolNorm, rows: h * h, dim: width, eps: eps)
                weights.poolConv.forward(out + i * tokens, t, height: h, width: h, columns: cols)
            }
        } } } } }
    }
}

extension ViTaminStem {
    /// timm's names under `prefix` (visual.trunk.patch_embed.backbone.).
    static func read(_ c: ViTaminStemConfig, prefix p: String, _ r: inout StrictWeightReader) throws -> ViTaminStemWeights {
        func conv3x3(_ name: String, out: Int, in k: Int, stride: Int) throws -> Conv2D {
            Conv2D(weight: try r.take(name + ".weight", [out, k, 3, 3]), bias: try r.take(name + ".bias", [out]), inChannels: k,
                   outChannels: out, geometry: ConvGeometry(kernel: 3, stride: stride, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1))
        }
        func conv1x1(_ name: String, out: Int, in k: Int) throws -> Linear {
            Linear(dense: try r.take(name + ".weight", [out, k, 1, 1]), out: out, in: k, bias: try r.take(name + ".bias", [out]))
        }
        let stem = c.stemWidth
        let conv1 = try conv3x3(p + "stem.conv1", out: stem, in: 3, stride: 2)
        let norm1 = try r.norm(p + "stem.norm1", stem)
        let conv2 = try conv3x3(p + "stem.conv2", out: stem, in: stem, stride: 1)
        var blocks: [MbConvBlockWeights] = []
        var width = stem
        for (s, out) in c.stageWidths.enumerated() {
            for d in 0..<c.stageDepths[s] {
                let bp = p + "stages.\(s).\(d).", stride = d == 0 ? 2 : 1, hidden = ViTaminStemConfig.hiddenWidth(out)
                let shortcut: Linear?
                if width == out { shortcut = nil }
                else if stride == 2 { shortcut = try conv1x1(bp + "shortcut.expand", out: out, in: width) }
                else { shortcut = try conv1x1(bp + "shortcut", out: out, in: width) }
                blocks.append(MbConvBlockWeights(
                    stride: stride, shortcutConv: shortcut, preNorm: try r.norm(bp + "pre_norm", width),
                    expand: try conv1x1(bp + "conv1_1x1", out: hidden, in: width),
                    depthwise: DepthwiseConv2D(weight: try r.take(bp + "conv2_kxk.weight", [hidden, 1, 3, 3]),
                                               bias: try r.take(bp + "conv2_kxk.bias", [hidden]), channels: hidden,
                                               geometry: ConvGeometry(kernel: 3, stride: stride, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)),
                    project: try conv1x1(bp + "conv3_1x1", out: out, in: hidden)))
                width = out
            }
        }
        return ViTaminStemWeights(conv1: conv1, norm1: norm1, conv2: conv2, blocks: blocks,
                                  poolNorm: try r.norm(p + "pool.norm", width),
                                  poolConv: try conv3x3(p + "pool.proj", out: c.outWidth, in: width, stride: 2))
    }
}
