// ALIGN's image tower, transformers' AlignVisionModel: an EfficientNet without its classifier head.
// stem: ZeroPad2d(0, 1, 0, 1), 3x3 stride-2 convolution, BN, swish;
// blocks (MBConv): [1x1 expansion, BN, swish] -> depthwise k x k (stride 2 after correct_pad's ZeroPad2d,
//   else "same"), BN, swish -> squeeze-and-excitation (channel means, 1x1 reduce, swish, 1x1 expand,
//   sigmoid, scale) -> 1x1 projection, BN [+ the block input, for every block but a stage's first];
// pooled: the mean over the last map (AvgPool2d with a kernel larger than the map, ceil_mode), which is
// the image embedding itself (ALIGN has no visual projection).
// Feature maps are channels-last, one image at a time (a 289 px image already makes GEMMs of 20k rows);
// every BatchNorm is folded into its convolution at load.
import Layers
import Tensors

struct MBConvWeights: Sendable {
    var block: ALIGNConfig.MBConvBlock
    var expand: Linear?        // [E, C_in], BN folded
    var depthwise: DepthwiseConv2D
    var seReduce: Linear       // [S, E]
    var seExpand: Linear       // [E, S]
    var project: Linear        // [C_out, E], BN folded
}

struct EfficientNetWeights: Sendable {
    var stem: Conv2D
    var blocks: [MBConvWeights]
}

struct EfficientNetTower: Sendable {
    let config: ALIGNConfig.Vision
    let weights: EfficientNetWeights

    /// The spatial sizes through the tower for an h x w input, and the largest map (floats) any step holds.
    func plan(height h: Int, width w: Int) -> (sizes: [(Int, Int)], largest: Int) {
        var (ch, cw) = weights.stem.geometry.outputSize(height: h, width: w)
        var largest = ch * cw * max(config.stemChannels, 27)
        var sizes = [(ch, cw)]
        for b in weights.blocks {
            largest = max(largest, ch * cw * b.block.expandedDim)
            (ch, cw) = b.depthwise.geometry.outputSize(height: ch, width: cw)
            largest = max(largest, ch * cw * max(b.block.expandedDim, b.block.outDim))
            sizes.append((ch, cw))
        }
        return (sizes, largest)
    }

    /// The pooled embedding of one preprocessed image, CHW 3 x h x w.
    func embed(_ chw: [Float], height h: Int, width w: Int) throws -> [Float] {
        let (sizes, largest) = plan(height: h, width: w)
        guard let last = sizes.last, last.0 > 0, last.1 > 0, sizes.allSatisfy({ $0.0 > 0 && $0.1 > 0 }) else {
            throw CLIPError.badInput("a \(h)x\(w) image is too small for this EfficientNet (a map shrinks to nothing)")
        }
        let stemGeo = weights.stem.geometry
        let (sh, sw) = stemGeo.outputSize(height: h, width: w)
        var a = [Float](repeating: 0, count: largest), b = a, c = a
        var hwc = [Float](repeating: 0, count: h * w * 3)
        for y in 0..<h { for x in 0..<w { for ch in 0..<3 { hwc[(y * w + x) * 3 + ch] = chw[ch * h * w + y * w + x] } } }
        var columns = [Float](repeating: 0, count: weights.stem.columnCount(height: h, width: w))
        var pooled = [Float]()
        a.withUnsafeMutableBufferPointer { ab in b.withUnsafeMutableBufferPointer { bb in c.withUnsafeMutableBufferPointer { cb in
            var cur = ab.baseAddress!, t1 = bb.baseAddress!, t2 = cb.baseAddress!
            hwc.withUnsafeBufferPointer { x in columns.withUnsafeMutableBufferPointer { col in
                weights.stem.forward(cur, x.baseAddress!, height: h, width: w, columns: col.baseAddress!)
            } }
            CLIPActivation.apply(config.activation, cur, count: sh * sw * config.stemChannels)
            var (ch, cw) = (sh, sw)
            for blk in weights.blocks {
                let d = blk.block
                let pixels = ch * cw
                // Expansion (or the input itself).
                var expanded = UnsafePointer(cur)
                if let e = blk.expand {
                    e.forward(t1, cur, rows: pixels)
                    CLIPActivation.apply(config.activation, t1, count: pixels * d.expandedDim)
                    expanded = UnsafePointer(t1)
                }
                // Depthwise into t2.
                let (oh, ow) = blk.depthwise.geometry.outputSize(height: ch, width: cw)
                blk.depthwise.forward(t2, expanded, height: ch, width: cw)
                let outPixels = oh * ow
                CLIPActivation.apply(config.activation, t2, count: outPixels * d.expandedDim)
                squeezeExcite(t2, pixels: outPixels, blk)
                // Projection into t1, residual from cur.
                blk.project.forward(t1, t2, rows: outPixels)
                if d.residual {
                    let n = outPixels * d.outDim
                    nonisolated(unsafe) let dst = t1, src = cur
                    parallelChunks(n, minPerChunk: 1 << 15) { r in Vec.add(dst + r.lowerBound, src + r.lowerBound, r.count) }
                }
                swap(&cur, &t1)
                (ch, cw) = (oh, ow)
            }
            pooled = channelMeans(cur, pixels: ch * cw, channels: config.outputChannels)
        } } }
        return pooled
    }

    private func squeezeExcite(_ x: UnsafeMutablePointer<Float>, pixels: Int, _ blk: MBConvWeights) {
        let e = blk.block.expandedDim, s = blk.block.squeezeDim
        var mean = channelMeans(x, pixels: pixels, channels: e)
        var reduced = [Float](repeating: 0, count: s)
        var gate = [Float](repeating: 0, count: e)
        mean.withUnsafeMutableBufferPointer { m in reduced.withUnsafeMutableBufferPointer { r in gate.withUnsafeMutableBufferPointer { g in
            blk.seReduce.forward(r.baseAddress!, m.baseAddress!, rows: 1)
            CLIPActivation.apply(config.activation, r.baseAddress!, count: s)
            blk.seExpand.forward(g.baseAddress!, r.baseAddress!, rows: 1)
            CLIPActivation.sigmoid(g.baseAddress!, count: e)
            nonisolated(unsafe) let gp = g.baseAddress!, xp = x
            parallelFor(pixels, minPerChunk: max(1, 8192 / max(1, e))) { p in Vec.mul(xp + p * e, gp, e) }
        } } }
    }
}

extension EfficientNetTower {
    /// Reads the tower under `prefix` ("vision_model."), folding every BatchNorm into its convolution.
    static func read(_ cfg: ALIGNConfig.Vision, _ r: inout StrictWeightReader, prefix: String) throws -> EfficientNetWeights {
        let eps = cfg.batchNormEps
        func pointwise(_ conv: String, _ norm: String, out: Int, in k: Int) throws -> Linear {
            let f = try r.convolutionWithBatchNorm(conv, norm, out: out, in: k, kernel: 1, eps: eps)
            return Linear(dense: f.weights, out: out, in: k, bias: f.bias)
        }
        let stemOut = cfg.stemChannels
        let stemF = try r.convolutionWithBatchNorm(prefix + "embeddings.convolution", prefix + "embeddings.batchnorm",
                                                   out: stemOut, in: 3, kernel: 3, eps: eps)
        let stem = Conv2D(weight: stemF.weights, bias: stemF.bias, inChannels: 3, outChannels: stemOut,
                          geometry: ConvGeometry(kernel: 3, stride: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1))
        var blocks: [MBConvWeights] = []
        for (i, d) in cfg.blocks.enumerated() {
            let p = prefix + "encoder.blocks.\(i)."
            let e = d.expandedDim
            let expand = d.expandRatio != 1
                ? try pointwise(p + "expansion.expand_conv", p + "expansion.expand_bn", out: e, in: d.inDim) : nil
            let k = d.kernel
            let geo: ConvGeometry
            if d.stride == 2 {
                // correct_pad: (left, right, top, bottom) = adjust ? (k/2 - 1, k/2, k/2 - 1, k/2) : (k/2, ...).
                let before = d.adjustPadding ? k / 2 - 1 : k / 2
                geo = ConvGeometry(kernel: k, stride: 2, padTop: before, padLeft: before, padBottom: k / 2, padRight: k / 2)
            } else {
                geo = .same(kernel: k)
            }
            let dwF = try r.convolutionWithBatchNorm(p + "depthwise_conv.depthwise_conv", p + "depthwise_conv.depthwise_norm",
                                                     out: e, in: 1, kernel: k, eps: eps)
            let s = d.squeezeDim
            let reduceW = try r.take(p + "squeeze_excite.reduce.weight", [s, e, 1, 1])
            let expandW = try r.take(p + "squeeze_excite.expand.weight", [e, s, 1, 1])
            blocks.append(MBConvWeights(
                block: d, expand: expand,
                depthwise: DepthwiseConv2D(weight: dwF.weights, bias: dwF.bias, channels: e, geometry: geo),
                seReduce: Linear(dense: reduceW, out: s, in: e, bias: try r.take(p + "squeeze_excite.reduce.bias", [s])),
                seExpand: Linear(dense: expandW, out: e, in: s, bias: try r.take(p + "squeeze_excite.expand.bias", [e])),
                project: try pointwise(p + "projection.project_conv", p + "projection.project_bn", out: d.outDim, in: e)))
        }
        return EfficientNetWeights(stem: stem, blocks: blocks)
    }
}
