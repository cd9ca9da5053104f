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
    var q: Linear
    var keyWeight: [Float], keyBias: [Float]       // k_proj [C, C] row-major, [C]: folded into the query per head
    var valueWeight: [Float], valueBias: [Float]   // v_proj, applied to each head's attention-weighted mean
    var c: Linear
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
        // Work buffers for one pass, allocated once per call and left uninitialised (every step writes before it
        // reads): zero-filling and faulting in ~80 MB per pass cost RN50 a tenth of its time.
        let perPass = 4, (mapSize, colSize) = sizes()
        let maps = UnsafeMutablePointer<Float>.allocate(capacity: 4 * perPass * mapSize)
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: perPass * colSize)
        defer { maps.deallocate(); columns.deallocate() }
        return try embedInPasses(images, imageSize: config.imageSize, perPass: perPass) { batch in
            embedBatch(batch, maps: (0..<4).map { maps + $0 * perPass * mapSize }, columns: columns)
        }
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

    /// `maps`: four buffers of the largest map for these images; `columns`: the largest im2col buffer for them.
    private func embedBatch(_ images: [[Float]], maps: [UnsafeMutablePointer<Float>], columns col: UnsafeMutablePointer<Float>) -> [[Float]] {
        let s = config.imageSize, n = images.count
        do {
            var cur = maps[0], t1 = maps[1], t2 = maps[2], t3 = maps[3]
            for (i, chw) in images.enumerated() {
                let dst = cur + i * s * s * 3
                channelsLast(dst, chw: chw, size: s)
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
                    addReLU(t3, t1, count: outPixels * out)
                } else {
                    addReLU(t3, cur, count: outPixels * out)
                }
                swap(&cur, &t3)
                h = oh
                c = out
            }
            return attentionPool(cur, images: n, tokens: h * h)
        }
    }

    /// The attention pool's outputs for `b` images' final maps x [b, tokens, C]: each image's sequence is its mean
    /// token then its tokens, plus the position embedding; the mean token's multi-head attention over the sequence,
    /// through c_proj. Only one query attends, so the key and value projections fold into it instead of running
    /// over every token: per head, score_j = (q_h Wk_h) . x_j + q_h . bk_h and out_h = Wv_h (sum_j p_j x_j) + bv_h
    /// (the same sums in another order), a C x C matrix-vector product per head instead of a [tokens, C] x [C, C]
    /// GEMM for each of k and v.
    private func attentionPool(_ x: UnsafePointer<Float>, images b: Int, tokens n: Int) -> [[Float]] {
        let c = config.featureDim, heads = config.heads, hd = c / heads, e = config.outputDim
        let rows = n + 1
        var seq = [Float](repeating: 0, count: b * rows * c)
        var means = [Float](repeating: 0, count: b * c), q = means, attended = means
        var out = [Float](repeating: 0, count: b * e)
        seq.withUnsafeMutableBufferPointer { sb in means.withUnsafeMutableBufferPointer { mb in
            let sp = sb.baseAddress!
            weights.positionEmbedding.withUnsafeBufferPointer { pos in
                for i in 0..<b {
                    let img = sp + i * rows * c, src = x + i * n * c
                    img.update(from: channelMeans(src, pixels: n, channels: c), count: c)
                    (img + c).update(from: src, count: n * c)
                    Vec.add(img, pos.baseAddress!, rows * c)
                    (mb.baseAddress! + i * c).update(from: img, count: c)
                }
            }
            q.withUnsafeMutableBufferPointer { weights.q.forward($0.baseAddress!, mb.baseAddress!, rows: b) }
        } }
        let scale = 1 / Float(hd).squareRoot()
        seq.withUnsafeBufferPointer { sb in q.withUnsafeBufferPointer { qb in attended.withUnsafeMutableBufferPointer { ab in
        weights.keyWeight.withUnsafeBufferPointer { wkb in weights.keyBias.withUnsafeBufferPointer { bkb in
        weights.valueWeight.withUnsafeBufferPointer { wvb in weights.valueBias.withUnsafeBufferPointer { bvb in
            nonisolated(unsafe) let sp = sb.baseAddress!, qp = qb.baseAddress!, ap = ab.baseAddress!
            nonisolated(unsafe) let wk = wkb.baseAddress!, bk = bkb.baseAddress!, wv = wvb.baseAddress!, bv = bvb.baseAddress!
            parallelFor(b * heads) { task in
                let i = task / heads, h = task % heads
                let xs = sp + i * rows * c, query = qp + i * c + h * hd
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * c + rows) { buf in
                    let qk = buf.baseAddress!, mix = qk + c, scores = mix + c
                    // qk = q_h Wk_h (the head's rows of Wk weighted by the query), scaled.
                    qk.update(repeating: 0, count: c)
                    for d in 0..<hd { Vec.axpy(qk, scale * query[d], wk + (h * hd + d) * c, c) }
                    let offset = scale * Vec.dot(query, bk + h * hd, hd)
                    for j in 0..<rows { scores[j] = Vec.dot(qk, xs + j * c, c) + offset }
                    Softmax.softmaxRow(scores, rows)
                    mix.update(repeating: 0, count: c)
                    for j in 0..<rows { Vec.axpy(mix, scores[j], xs + j * c, c) }
                    let o = ap + i * c + h * hd
                    for d in 0..<hd { o[d] = Vec.dot(wv + (h * hd + d) * c, mix, c) + bv[h * hd + d] }
                }
            }
        } } } } } } }
        attended.withUnsafeBufferPointer { a in out.withUnsafeMutableBufferPointer { weights.c.forward($0.baseAddress!, a.baseAddress!, rows: b) } }
        return (0..<b).map { Array(out[($0 * e)..<(($0 + 1) * e)]) }
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
            keyWeight: try r.take("visual.attnpool.k_proj.weight", [c, c]), keyBias: try r.take("visual.attnpool.k_proj.bias", [c]),
            valueWeight: try r.take("visual.attnpool.v_proj.weight", [c, c]), valueBias: try r.take("visual.attnpool.v_proj.bias", [c]),
            c: try r.linear("visual.attnpool.c_proj", out: cfg.outputDim, in: c))
    }
}
