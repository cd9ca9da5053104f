// OpenAI's ModifiedResNet image tower (open_clip's RN50, RN101, RN50x4, ...): a ResNet with
// - a stem of three 3x3 convolutions (the first at stride 2), each BN + ReLU, then a 2x2 average pool;
// - Bottleneck blocks (1x1, 3x3, 1x1 with BN, ReLU) whose striding is anti-aliased: a stride-s block
//   average-pools s x s after its 3x3 convolution instead of striding it, and its shortcut average-pools
//   before the 1x1 projection;
// - attention pooling instead of a mean: the mean of the final map's tokens is prepended, position embeddings
//   added, and that first token's multi-head attention over all of them, through c_proj, is the embedding.
// Feature maps are channels-last, one image at a time; every BatchNorm is folded into its convolution.
import Layers
import Tensors

public struct ModifiedResNetConfig: Sendable, Equatable {
    public var layers: [Int]
    public var width: Int
    public var heads: Int
    public var imageSize: Int
    public var outputDim: Int

    /// width * 32: the channels of the last stage and of the attention pool.
    public var featureDim: Int { width * 32 }
    /// image_size // 32: the side of the last map (which the position embedding is sized for).
    public var spatial: Int { imageSize / 32 }
}

struct BottleneckWeights: Sendable {
    var conv1: Linear          // 1x1, BN folded
    var conv2: Conv2D          // 3x3 pad 1, BN folded
    var conv3: Linear          // 1x1, BN folded
    var downsample: Linear?    // 1x1 after the pool, BN folded
    var stride: Int
    var planes: Int
}

struct ModifiedResNetWeights: Sendable {
    var stem: [Conv2D]                  // three 3x3 convolutions, BN folded
    var blocks: [BottleneckWeights]
    var positionEmbedding: [Float]      // [spatial^2 + 1, C]
    var q: Linear, k: Linear, v: Linear, c: Linear
}

/// Checks that every image is CHW 3 x size x size, then embeds them a few at a time: the late stages' GEMMs
/// (49 rows an image at 224 px) share each weight read, while the early maps stay within memory.
func embedInPasses(_ images: [[Float]], imageSize s: Int, perPass: Int = 4, _ batch: ([[Float]]) -> [[Float]]) throws -> [[Float]] {
    for (i, im) in images.enumerated() where im.count != 3 * s * s {
        throw CLIPError.badInput("image \(i) has \(im.count) values; the model takes 3 x \(s) x \(s) = \(3 * s * s) (check the preprocessing size)")
    }
    var out: [[Float]] = []
    for start in stride(from: 0, to: images.count, by: perPass) {
        out += batch(Array(images[start..<min(images.count, start + perPass)]))
    }
    return out
}

struct ModifiedResNetTower: Sendable {
    let config: ModifiedResNetConfig
    let weights: ModifiedResNetWeights

    func embed(_ images: [[Float]]) throws -> [[Float]] {
        try embedInPasses(images, imageSize: config.imageSize, embedBatch)
    }

    /// The largest map (floats) and im2col buffer any step needs for one s x s image.
    private func sizes() -> (map: Int, columns: Int) {
        var h = config.imageSize, map = 3 * h * h, cols = 0
        for conv in weights.stem {
            cols = max(cols, conv.columnCount(height: h, width: h))
            h = conv.geometry.outputSize(height: h, width: h).height
            map = max(map, h * h * conv.outChannels)
        }
        h /= 2
        var inDim = config.width
        for b in weights.blocks {
            map = max(map, h * h * max(b.planes, inDim), h * h * b.planes * 4)
            cols = max(cols, b.conv2.columnCount(height: h, width: h))
            h /= b.stride
            inDim = b.planes * 4
        }
        return (map, cols)
    }

    private func embedBatch(_ images: [[Float]]) -> [[Float]] {
        let s = config.imageSize, n = images.count
        let (mapSize, colSize) = sizes()
        var a0 = [Float](repeating: 0, count: n * mapSize), a1 = a0, a2 = a0, a3 = a0
        var columns = [Float](repeating: 0, count: n * colSize)
        var result: [[Float]] = []
        a0.withUnsafeMutableBufferPointer { b0 in a1.withUnsafeMutableBufferPointer { b1 in
        a2.withUnsafeMutableBufferPointer { b2 in a3.withUnsafeMutableBufferPointer { b3 in
        columns.withUnsafeMutableBufferPointer { cb in
            var cur = b0.baseAddress!, t1 = b1.baseAddress!, t2 = b2.baseAddress!, t3 = b3.baseAddress!
            let col = cb.baseAddress!
            for (i, chw) in images.enumerated() {
                let dst = cur + i * s * s * 3
                for y in 0..<s { for x in 0..<s { for ch in 0..<3 { dst[(y * s + x) * 3 + ch] = chw[ch * s * s + y * s + x] } } }
            }
            var h = s, c = 3
            for conv in weights.stem {
                conv.forward(t1, cur, height: h, width: h, images: n, columns: col)
                h = conv.geometry.outputSize(height: h, width: h).height
                c = conv.outChannels
                relu(t1, count: n * h * h * c)
                swap(&cur, &t1)
            }
            averagePool(t1, cur, height: h, width: h, channels: c, kernel: 2, images: n)
            h /= 2
            swap(&cur, &t1)
            for b in weights.blocks {
                let p = b.planes, out = p * 4, pixels = n * h * h
                b.conv1.forward(t1, cur, rows: pixels)
                relu(t1, count: pixels * p)
                b.conv2.forward(t2, t1, height: h, width: h, images: n, columns: col)
                relu(t2, count: pixels * p)
                var oh = h
                var body = t2
                if b.stride > 1 {
                    averagePool(t1, t2, height: h, width: h, channels: p, kernel: b.stride, images: n)
                    oh = h / b.stride
                    body = t1
                }
                let outPixels = n * oh * oh
                b.conv3.forward(t3, body, rows: outPixels)
                // Shortcut: identity, or pool + 1x1 projection (into t2, free now).
                if let ds = b.downsample {
                    var src = UnsafePointer(cur)
                    if b.stride > 1 {
                        averagePool(t2, cur, height: h, width: h, channels: c, kernel: b.stride, images: n)
                        src = UnsafePointer(t2)
                    }
                    ds.forward(t1, src, rows: outPixels)
                    Vec.add(t3, t1, outPixels * out)
                } else {
                    Vec.add(t3, cur, outPixels * out)
                }
                relu(t3, count: outPixels * out)
                swap(&cur, &t3)
                h = oh
                c = out
            }
            result = (0..<n).map { attentionPool(cur + $0 * h * h * c, tokens: h * h) }
        } } } } }
        return result
    }

    /// The attention pool's output for one image's final map x [tokens, C].
    private func attentionPool(_ x: UnsafePointer<Float>, tokens n: Int) -> [Float] {
        let c = config.featureDim, heads = config.heads, hd = c / heads
        let rows = n + 1
        var seq = [Float](repeating: 0, count: rows * c)
        var keys = [Float](repeating: 0, count: rows * c), values = keys
        var q = [Float](repeating: 0, count: c), attended = q
        var out = [Float](repeating: 0, count: config.outputDim)
        seq.withUnsafeMutableBufferPointer { sb in
            let sp = sb.baseAddress!
            // Row 0: the mean token.
            sp.update(from: channelMeans(x, pixels: n, channels: c), count: c)
            (sp + c).update(from: x, count: n * c)
            weights.positionEmbedding.withUnsafeBufferPointer { pos in Vec.add(sp, pos.baseAddress!, rows * c) }
            keys.withUnsafeMutableBufferPointer { weights.k.forward($0.baseAddress!, sp, rows: rows) }
            values.withUnsafeMutableBufferPointer { weights.v.forward($0.baseAddress!, sp, rows: rows) }
            q.withUnsafeMutableBufferPointer { weights.q.forward($0.baseAddress!, sp, rows: 1) }
        }
        let scale = 1 / Float(hd).squareRoot()
        keys.withUnsafeBufferPointer { kb in values.withUnsafeBufferPointer { vb in q.withUnsafeBufferPointer { qb in
        attended.withUnsafeMutableBufferPointer { ab in
            nonisolated(unsafe) let kp = kb.baseAddress!, vp = vb.baseAddress!, qp = qb.baseAddress!, ap = ab.baseAddress!
            parallelFor(heads) { h in
                var scores = [Float](repeating: 0, count: rows)
                for j in 0..<rows { scores[j] = scale * Vec.dot(qp + h * hd, kp + j * c + h * hd, hd) }
                scores.withUnsafeMutableBufferPointer { Softmax.softmaxRow($0.baseAddress!, rows) }
                let o = ap + h * hd
                o.update(repeating: 0, count: hd)
                for j in 0..<rows { Vec.axpy(o, scores[j], vp + j * c + h * hd, hd) }
            }
        } } } }
        attended.withUnsafeBufferPointer { a in out.withUnsafeMutableBufferPointer { weights.c.forward($0.baseAddress!, a.baseAddress!, rows: 1) } }
        return out
    }
}

extension ModifiedResNetTower {
    /// Reads `visual.` of an open_clip ModifiedResNet state dict.
    static func read(_ cfg: ModifiedResNetConfig, _ r: inout StrictWeightReader) throws -> ModifiedResNetWeights {
        func conv3(_ conv: String, _ norm: String, in cin: Int, out: Int, stride: Int) throws -> Conv2D {
            let f = try r.convolutionWithBatchNorm(conv, norm, out: out, in: cin, kernel: 3, eps: 1e-5)
            return Conv2D(weight: f.weights, bias: f.bias, inChannels: cin, outChannels: out,
                          geometry: ConvGeometry(kernel: 3, stride: stride, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1))
        }
        func conv1(_ conv: String, _ norm: String, in cin: Int, out: Int) throws -> Linear {
            let f = try r.convolutionWithBatchNorm(conv, norm, out: out, in: cin, kernel: 1, eps: 1e-5)
            return Linear(dense: f.weights, out: out, in: cin, bias: f.bias)
        }
        let w = cfg.width
        let stem = [try conv3("visual.conv1", "visual.bn1", in: 3, out: w / 2, stride: 2),
                    try conv3("visual.conv2", "visual.bn2", in: w / 2, out: w / 2, stride: 1),
                    try conv3("visual.conv3", "visual.bn3", in: w / 2, out: w, stride: 1)]
        var blocks: [BottleneckWeights] = []
        var inplanes = w
        for (stage, count) in cfg.layers.enumerated() {
            let planes = w << stage
            for j in 0..<count {
                let p = "visual.layer\(stage + 1).\(j)"
                let stride = (stage > 0 && j == 0) ? 2 : 1
                let needsDown = stride > 1 || inplanes != planes * 4
                blocks.append(BottleneckWeights(
                    conv1: try conv1(p + ".conv1", p + ".bn1", in: inplanes, out: planes),
                    conv2: try conv3(p + ".conv2", p + ".bn2", in: planes, out: planes, stride: 1),
                    conv3: try conv1(p + ".conv3", p + ".bn3", in: planes, out: planes * 4),
                    downsample: needsDown ? try conv1(p + ".downsample.0", p + ".downsample.1", in: inplanes, out: planes * 4) : nil,
                    stride: stride, planes: planes))
                inplanes = planes * 4
            }
        }
        let c = cfg.featureDim
        let n = cfg.spatial * cfg.spatial + 1
        return ModifiedResNetWeights(
            stem: stem, blocks: blocks,
            positionEmbedding: try r.take("visual.attnpool.positional_embedding", [n, c]),
            q: try r.linear("visual.attnpool.q_proj", out: c, in: c),
            k: try r.linear("visual.attnpool.k_proj", out: c, in: c),
            v: try r.linear("visual.attnpool.v_proj", out: c, in: c),
            c: try r.linear("visual.attnpool.c_proj", out: cfg.outputDim, in: c))
    }
}
