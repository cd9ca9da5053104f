// A BERT encoder (transformers' BertModel, and AlignTextModel which copies it): word + position +
// token-type embeddings and a LayerNorm, then post-LN blocks
//     x = LN1(x + out(attention(x)));  x = LN2(x + down(act(up(x))))
// with bidirectional attention over each sequence. Texts run unpadded and packed row after row: with the
// attention mask transformers applies, padding changes nothing for the real tokens (masked keys get
// exp(min_float) = 0 weight), so skipping it gives the same [CLS] state at a fraction of the cost.
import Layers
import Tensors

struct BERTLayerWeights: Sendable {
    var qkv: Linear                  // [3H, H]: query, key, value stacked
    var attentionOut: Linear         // [H, H]
    var norm1: LayerNormWeights      // attention.output.LayerNorm
    var up: Linear                   // intermediate.dense [I, H]
    var down: Linear                 // output.dense [H, I]
    var norm2: LayerNormWeights      // output.LayerNorm
}

struct BERTWeights: Sendable {
    var wordEmbeddings: [Float]      // [V, H]
    var positionEmbeddings: [Float]  // [P, H]
    var tokenType0: [Float]          // [H]: token type 0, the only one single texts use
    var embeddingNorm: LayerNormWeights
    var layers: [BERTLayerWeights]
}

struct BERTTower: Sendable {
    let config: ALIGNConfig.Text
    let weights: BERTWeights

    /// The final hidden state of each sequence's first token ([CLS]), [texts][H].
    func firstTokenStates(_ batch: [[Int]]) throws -> [[Float]] {
        let (x, segments) = try encode(batch)
        let h = config.hiddenSize
        return segments.map { Array(x[($0.lowerBound * h)..<($0.lowerBound * h + h)]) }
    }

    /// The mean of each sequence's final hidden states (open_clip's MeanPooler over the real tokens), [texts][H].
    func meanStates(_ batch: [[Int]]) throws -> [[Float]] {
        let (x, segments) = try encode(batch)
        let h = config.hiddenSize
        return segments.map { seg in
            var acc = [Double](repeating: 0, count: h)
            for r in seg { for i in 0..<h { acc[i] += Double(x[r * h + i]) } }
            return acc.map { Float($0 / Double(seg.count)) }
        }
    }

    /// The final hidden states of the packed sequences and their row ranges.
    private func encode(_ batch: [[Int]]) throws -> (x: [Float], segments: [Range<Int>]) {
        if batch.isEmpty { return ([], []) }
        let c = config, h = c.hiddenSize
        for ids in batch {
            guard !ids.isEmpty else { throw CLIPError.badInput("an empty token sequence") }
            guard ids.count + c.positionOffset <= c.maxPositionEmbeddings else {
                throw CLIPError.badInput("\(ids.count) tokens, more than the \(c.maxPositionEmbeddings - c.positionOffset) positions of this BERT; truncate with the tokenizer")
            }
            if let bad = ids.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
                throw CLIPError.badInput("token id \(bad) outside the vocabulary of \(c.vocabSize)")
            }
        }
        var segments: [Range<Int>] = []
        var rows = 0
        for ids in batch { segments.append(rows..<(rows + ids.count)); rows += ids.count }
        var x = [Float](repeating: 0, count: rows * h)
        var qkv = [Float](repeating: 0, count: rows * 3 * h)
        var att = [Float](repeating: 0, count: rows * h)
        var tmp = [Float](repeating: 0, count: rows * h)
        var inner = [Float](repeating: 0, count: rows * c.intermediateSize)
        let scale = 1 / Float(h / c.heads).squareRoot()
        x.withUnsafeMutableBufferPointer { xb in qkv.withUnsafeMutableBufferPointer { qb in
        att.withUnsafeMutableBufferPointer { ab in tmp.withUnsafeMutableBufferPointer { tb in
        inner.withUnsafeMutableBufferPointer { ib in
            let xp = xb.baseAddress!, qp = qb.baseAddress!, ap = ab.baseAddress!, tp = tb.baseAddress!, ip = ib.baseAddress!
            weights.wordEmbeddings.withUnsafeBufferPointer { word in
            weights.positionEmbeddings.withUnsafeBufferPointer { pos in
            weights.tokenType0.withUnsafeBufferPointer { type0 in
                for (ids, seg) in zip(batch, segments) {
                    for (i, id) in ids.enumerated() {
                        let row = xp + (seg.lowerBound + i) * h
                        // transformers: (word + token type) + position.
                        row.update(from: word.baseAddress! + id * h, count: h)
                        Vec.add(row, type0.baseAddress!, h)
                        Vec.add(row, pos.baseAddress! + (i + c.positionOffset) * h, h)
                    }
                }
            } } }
            layerNorm(xp, xp, weights.embeddingNorm, rows: rows, dim: h, eps: c.layerNormEps)
            for layer in weights.layers {
                layer.qkv.forward(qp, xp, rows: rows)
                CLIPAttention.forward(ap, qkv: qp, width: h, heads: c.heads, segments: segments, causal: false, scale: scale)
                addLinear(xp, ap, layer.attentionOut, rows: rows, scratch: tp)  // the residual add runs on every core
                layerNorm(xp, xp, layer.norm1, rows: rows, dim: h, eps: c.layerNormEps)
                layer.up.forward(ip, xp, rows: rows)
                CLIPActivation.apply(c.activation, ip, count: rows * c.intermediateSize)
                addLinear(xp, ip, layer.down, rows: rows, scratch: tp)
                layerNorm(xp, xp, layer.norm2, rows: rows, dim: h, eps: c.layerNormEps)
            }
        } } } } }
        return (x, segments)
    }

    /// Reads the encoder under `prefix` ("text_model."); the pooler (dense + tanh) is not part of it.
    static func read(_ c: ALIGNConfig.Text, _ r: inout StrictWeightReader, prefix p: String) throws -> BERTWeights {
        let h = c.hiddenSize
        let typeTable = try r.take(p + "embeddings.token_type_embeddings.weight", [c.typeVocabSize, h])
        let layers: [BERTLayerWeights] = try (0..<c.layers).map { i in
            let l = p + "encoder.layer.\(i)."
            let q = try r.linear(l + "attention.self.query", out: h, in: h)
            let k = try r.linear(l + "attention.self.key", out: h, in: h)
            let v = try r.linear(l + "attention.self.value", out: h, in: h)
            return BERTLayerWeights(
                qkv: Linear(stacking: [q, k, v]),
                attentionOut: try r.linear(l + "attention.output.dense", out: h, in: h),
                norm1: try r.norm(l + "attention.output.LayerNorm", h),
                up: try r.linear(l + "intermediate.dense", out: c.intermediateSize, in: h),
                down: try r.linear(l + "output.dense", out: h, in: c.intermediateSize),
                norm2: try r.norm(l + "output.LayerNorm", h))
        }
        return BERTWeights(
            wordEmbeddings: try r.take(p + "embeddings.word_embeddings.weight", [c.vocabSize, h]),
            positionEmbeddings: try r.take(p + "embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, h]),
            tokenType0: Array(typeTable[0..<h]),
            embeddingNorm: try r.norm(p + "embeddings.LayerNorm", h),
            layers: layers)
    }
}
