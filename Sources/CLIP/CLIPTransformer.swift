// The pre-LN transformer stack both CLIP towers share, run over a batch of sequences packed row after row
// (ragged: no padding rows). Every projection is one GEMM over all rows of the batch; only attention,
// which mixes rows, works sequence by sequence. Causal towers let each query see keys up to itself;
// bidirectional ones (vision, CLIPA text) let it see the whole sequence.
import Layers
import Tensors

/// Work buffers for one forward call, sized once for its row count and reused by every layer.
struct TransformerScratch {
    var normed: [Float]   // [rows, W]
    var qkv: [Float]      // [rows, 3W]
    var attended: [Float] // [rows, W]
    var hidden: [Float]   // [rows, M]
    var gates: [Float]    // [rows, 2M]: both GeGLU branches (empty for a plain MLP)

    init(rows: Int, config c: CLIPTransformerConfig) {
        normed = [Float](repeating: 0, count: rows * c.width)
        qkv = [Float](repeating: 0, count: rows * 3 * c.width)
        attended = [Float](repeating: 0, count: rows * c.width)
        hidden = [Float](repeating: 0, count: rows * c.mlpWidth)
        gates = [Float](repeating: 0, count: c.gatedMLP ? rows * 2 * c.mlpWidth : 0)
    }
}

struct CLIPTransformer: Sendable {
    let config: CLIPTransformerConfig
    let blocks: [BlockWeights]

    /// x [rows, W] is updated in place; `segments` are the row ranges of the sequences, in order.
    func forward(_ x: UnsafeMutablePointer<Float>, rows: Int, segments: [Range<Int>], causal: Bool, keyMasks: [[Bool]]? = nil) {
        let w = config.width, m = config.mlpWidth, hd = config.headDim
        var s = TransformerScratch(rows: rows, config: config)
        let scale = 1 / Float(hd).squareRoot()

        s.normed.withUnsafeMutableBufferPointer { normed in
        s.qkv.withUnsafeMutableBufferPointer { qkv in
        s.attended.withUnsafeMutableBufferPointer { att in
        s.hidden.withUnsafeMutableBufferPointer { hidden in
        s.gates.withUnsafeMutableBufferPointer { gates in
            let nb = normed.baseAddress!, qb = qkv.baseAddress!, ab = att.baseAddress!, hb = hidden.baseAddress!
            nonisolated(unsafe) let gb = gates.baseAddress!, hp = hb
            for block in blocks {
                // Attention half.
                block.norm1.weight.withUnsafeBufferPointer { g in block.norm1.bias.withUnsafeBufferPointer { b in
                    Norms.layerNorm(nb, x, weight: g.baseAddress!, bias: b.baseAddress!, rows: rows, dim: w, eps: config.layerNormEps)
                } }
                linear(qb, nb, block.qkv, rows: rows)
                CLIPAttention.forward(ab, qkv: qb, width: w, heads: config.heads, segments: segments, causal: causal, scale: scale,
                                      keyMasks: keyMasks)
                addLinear(x, ab, block.out, rows: rows, scratch: nb, gamma: block.scale1)  // LN1's output is used up
                // MLP half.
                block.norm2.weight.withUnsafeBufferPointer { g in block.norm2.bias.withUnsafeBufferPointer { b in
                    Norms.layerNorm(nb, x, weight: g.baseAddress!, bias: b.baseAddress!, rows: rows, dim: w, eps: config.layerNormEps)
                } }
                if let mlpNorm = block.mlpNorm { layerNorm(nb, nb, mlpNorm, rows: rows, dim: w, eps: 1e-6) }
                if config.gatedMLP {
                    // GeGLU: one GEMM for both branches [rows, 2M], then act(first half) * second half into hidden.
                    linear(gb, nb, block.fc1, rows: rows)
                    parallelFor(rows, minPerChunk: max(1, 16384 / max(m, 1))) { r in (hp + r * m).update(from: gb + r * 2 * m, count: m) }
                    CLIPActivation.apply(config.activation, hb, count: rows * m)
                    parallelFor(rows, minPerChunk: max(1, 16384 / max(m, 1))) { r in
                        let h = hp + r * m, g = gb + r * 2 * m + m
                        for i in 0..<m { h[i] *= g[i] }
                    }
                } else {
                    linear(hb, nb, block.fc1, rows: rows)
                    CLIPActivation.apply(config.activation, hb, count: rows * m)
                }
                addLinear(x, hb, block.fc2, rows: rows, scratch: nb, gamma: block.scale2)  // LN2's output is used up
            }
        } } } } }
    }
}

/// y[rows, out] = x W^T + b (PackedGEMM: CLIP's layers are dense Float panels).
func linear(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ l: Linear, rows: Int) {
    l.forward(y, x, rows: rows)
}

/// y[rows, out] += gamma * (x W^T + b) (gamma: a LayerScale per output, nil for 1): the GEMM writes `scratch`
/// ([rows, out], free for reuse), then the residual add.
func addLinear(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ l: Linear, rows: Int,
               scratch: UnsafeMutablePointer<Float>, gamma: [Float]? = nil) {
    let n = l.outFeatures
    linear(scratch, x, l, rows: rows)
    guard let gamma else {
        parallelFor(rows, minPerChunk: max(1, 16384 / max(n, 1))) { r in Vec.add(y + r * n, scratch + r * n, n) }
        return
    }
    gamma.withUnsafeBufferPointer { gb in
        nonisolated(unsafe) let g = gb.baseAddress!
        parallelFor(rows, minPerChunk: max(1, 16384 / max(n, 1))) { r in
            let yr = y + r * n, sr = scratch + r * n
            for i in 0..<n { yr[i] += g[i] * sr[i] }
        }
    }
}

/// out[r] = LayerNorm(x[r]) for `rows` rows of width `dim`.
func layerNorm(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: LayerNormWeights,
               rows: Int, dim: Int, eps: Float) {
    n.weight.withUnsafeBufferPointer { g in n.bias.withUnsafeBufferPointer { b in
        Norms.layerNorm(out, x, weight: g.baseAddress!, bias: b.baseAddress!, rows: rows, dim: dim, eps: eps)
    } }
}
