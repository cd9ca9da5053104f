// The CLIP text tower: token + position embeddings, the causal transformer, the final LayerNorm at the
// pooled position, and the projection into the joint space. A causal tower's pooled output depends only on
// the tokens up to the pooled position, so each text runs only that far: a batch of short texts costs what
// their tokens cost, not 77 positions each. Bidirectional towers (and "last" pooling) see the padded context,
// so they run it whole, as the reference does.
import Tensors

struct TextTower: Sendable {
    let config: CLIPTextConfig
    let embedDim: Int
    let weights: TextTowerWeights
    let transformer: CLIPTransformer

    init(config: CLIPTextConfig, embedDim: Int, weights: TextTowerWeights) {
        self.config = config
        self.embedDim = embedDim
        self.weights = weights
        self.transformer = CLIPTransformer(config: config.transformer, blocks: weights.blocks)
    }

    /// The ids a sequence runs with and the row its embedding is read from.
    static func plan(_ ids: [Int], config c: CLIPTextConfig) throws -> (ids: [Int], pooled: Int) {
        guard !ids.isEmpty else { throw CLIPError.badInput("an empty token sequence") }
        guard ids.count <= c.contextLength else {
            throw CLIPError.badInput("\(ids.count) tokens, more than the context length \(c.contextLength); truncate with the tokenizer")
        }
        if let bad = ids.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw CLIPError.badInput("token id \(bad) outside the vocabulary of \(c.vocabSize)")
        }
        let needsFullContext = !c.causal || c.pooling == .last || c.appendedClassToken
        let run = needsFullContext ? ids + [Int](repeating: c.padTokenId, count: c.contextLength - ids.count) : ids
        // CoCa: the padded context, then the class token's row (its id slot is never looked up), which is pooled.
        if c.appendedClassToken { return (run, c.contextLength) }
        let pooled: Int
        switch c.pooling {
        case .first: pooled = 0
        case .last: pooled = run.count - 1
        case .argmax:
            // torch.argmax returns the first maximal position.
            var best = 0
            for (i, t) in run.enumerated() where t > run[best] { best = i }
            pooled = best
        case .firstToken(let eos):
            // transformers falls back to position 0 (argmax of an all-false mask) when EOS is absent.
            pooled = run.firstIndex(of: eos) ?? 0
        }
        return (needsFullContext ? run : Array(run[...pooled]), pooled)
    }

    /// Unnormalised embeddings [texts][embedDim] for token id sequences (BOS ... EOS, unpadded).
    func embed(_ batch: [[Int]]) throws -> [[Float]] {
        if batch.isEmpty { return [] }
        let plans = try batch.map { try Self.plan($0, config: config) }
        let w = config.transformer.width
        let extra = config.appendedClassToken ? 1 : 0
        var segments: [Range<Int>] = []
        var rows = 0
        for p in plans { segments.append(rows..<(rows + p.ids.count + extra)); rows += p.ids.count + extra }
        // open_clip's legacy CoCa mask: the class token's slot is put first, so key j > 0 follows token j - 1.
        let keyMasks: [[Bool]]? = config.appendedClassToken
            ? plans.map { [false] + $0.ids.map { $0 == config.padTokenId } } : nil
        var x = [Float](repeating: 0, count: rows * w)
        x.withUnsafeMutableBufferPointer { xb in
            let xp = xb.baseAddress!
            weights.tokenEmbedding.withUnsafeBufferPointer { tok in
                weights.positionEmbedding.withUnsafeBufferPointer { pos in
                    for (p, seg) in zip(plans, segments) {
                        for (i, id) in p.ids.enumerated() {
                            let row = xp + (seg.lowerBound + i) * w
                            row.update(from: tok.baseAddress! + id * w, count: w)
                            Vec.add(row, pos.baseAddress! + i * w, w)
                        }
                        if let cls = weights.classEmbedding {
                            let row = xp + (seg.upperBound - 1) * w
                            row.update(from: cls, count: w)
                            Vec.add(row, pos.baseAddress! + (seg.count - 1) * w, w)
                        }
                    }
                }
            }
            transformer.forward(xp, rows: rows, segments: segments, causal: config.causal, keyMasks: keyMasks)
        }
        // LayerNorm is per row, so normalising only the pooled rows equals normalising all, then pooling.
        var pooled = [Float](repeating: 0, count: batch.count * w)
        for (b, (p, seg)) in zip(plans, segments).enumerated() {
            let r = seg.lowerBound + p.pooled
            pooled.replaceSubrange(b * w..<(b + 1) * w, with: x[r * w..<(r + 1) * w])
        }
        return project(pooled, count: batch.count)
    }

    private func project(_ pooled: [Float], count: Int) -> [[Float]] {
        let w = config.transformer.width
        var normed = [Float](repeating: 0, count: count * w)
        pooled.withUnsafeBufferPointer { p in normed.withUnsafeMutableBufferPointer { n in
            layerNorm(n.baseAddress!, p.baseAddress!, weights.finalNorm, rows: count, dim: w, eps: config.transformer.layerNormEps)
        } }
        guard let projection = weights.projection else {
            return (0..<count).map { Array(normed[$0 * w..<($0 + 1) * w]) }
        }
        var out = [Float](repeating: 0, count: count * embedDim)
        normed.withUnsafeBufferPointer { n in out.withUnsafeMutableBufferPointer { o in
            linear(o.baseAddress!, n.baseAddress!, projection, rows: count)
        } }
        return (0..<count).map { Array(out[$0 * embedDim..<($0 + 1) * embedDim]) }
    }
}
