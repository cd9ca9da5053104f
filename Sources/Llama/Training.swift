// The training forward and backward of a decoder with LoRA adapters and a value head, as PPO needs them:
// over whole token sequences of different lengths (no padding), the log-probability of each scored
// position's next token, the entropy of its distribution and the value head's output, then the exact
// gradient of any loss of those three with respect to every adapter and value-head parameter. The base
// model stays frozen: gradients flow through its weight panels as dX = dY W and no gradient of a frozen
// weight is ever formed.
//
// The vocabulary projection runs only on scored positions, in chunks of rows. Small batches keep the
// logits for the backward (up to `keptLogitFloats`); larger ones never hold [rows, vocab] at once and the
// backward recomputes each chunk (one more lm-head GEMM instead of 4 x rows x vocab bytes). A loss that is
// a sum of per-position terms (PPO's) can give the forward its derivative instead (`HeadGradient`): each
// chunk of logits then turns into the lm head's input gradient while it is at hand, and the backward
// neither keeps nor recomputes logits (same products, same bits).
//
// The last token of each sequence gets no row: it predicts nothing scored and no earlier position attends
// to it, so no output depends on it.
import Foundation
import Layers
import Tensors

/// One training sequence: positions scoredFrom ..< tokens.count - 1 are scored, each predicting the next
/// token (PPO: query ++ response, scoredFrom = query length - 1).
public struct TrainingSequence: Sendable, Equatable {
    public var tokens: [Int]
    public var scoredFrom: Int
    public init(tokens: [Int], scoredFrom: Int) { self.tokens = tokens; self.scoredFrom = scoredFrom }
    public var scoredCount: Int { max(0, tokens.count - 1 - scoredFrom) }
    /// Rows the training forward computes: all but the last token, which predicts nothing scored and is
    /// attended to by no later position (one row, for a sequence that scores nothing).
    var rowCount: Int { max(1, tokens.count - 1) }
}

/// Per scored position, sequences in order: log p(next token), the entropy, and the value (empty when the
/// adapters carry no value head or none were passed).
public struct TrainingOutputs: Sendable, Equatable {
    public var logProbs: [Float]
    public var entropies: [Float]
    public var values: [Float]
    public init(logProbs: [Float], entropies: [Float], values: [Float]) {
        self.logProbs = logProbs; self.entropies = entropies; self.values = values
    }
}

/// The derivative of a loss made of one term per scored position: given position i (output order), its
/// log-probability and entropy, d loss / d log-prob and d loss / d entropy. Called from worker threads,
/// once per position.
public typealias HeadGradient = @Sendable (_ position: Int, _ logProb: Float, _ entropy: Float) -> (dLogProb: Float, dEntropy: Float)

/// Everything a training forward keeps for its backward, sized once for the largest batch seen and reused.
public final class TrainingArena: @unchecked Sendable {  // reason: owned by one trainer; one forward/backward at a time
    /// Rows of logits computed at once (a [chunk, vocab] buffer).
    public static let logitRows = 64
    /// Logits kept from the forward for the backward when they fit in this many Floats (128 MB by
    /// default: PPO's mini-batches of a few sequences); beyond it the backward recomputes them.
    public let keptLogitFloats: Int
    /// The backward rebuilds (or keeps) the lm head's W^T in Float panels when it takes at most this many
    /// bytes: SmolLM2's 113 MB does, Gemma 3's 262k-token vocabulary
    /// (671 MB at 270M) does not and keeps the reduction over its Int8 panels.
    public static let transposedHeadBytes = 160 << 20

    /// What the arena may hold in all, in bytes: when the frozen layers' W^T in Float panels (and the
    /// head's, within `transposedHeadBytes`) fit beside the buffers of the last reservation, they are
    /// built once and kept for the arena's life instead of being rebuilt at every backward (SmolLM2:
    /// 538 MB beside a few sequences' 150 MB; 32 sequences' 1 GB of activations rebuild as before).
    /// The same products run on the same panels either way: the budget never changes a number.
    public let memoryBudget: Int

    private var buffer: UnsafeMutablePointer<Float>?
    private var capacity = 0
    /// Bytes of the last reservation (the benchmark reports it).
    public private(set) var reservedBytes = 0

    // Layout of the batch of the last forward.
    var sequences: [TrainingSequence] = []
    var starts: [Int] = []             // first row of each sequence
    var positions: [Int] = []          // (T) position of each row inside its sequence
    var probStarts: [Int] = []         // per sequence: offset of its (heads, L, L) weights in a layer's probs
    var scoredRows: [Int] = []         // (S) the rows whose next token is scored
    var targets: [Int] = []            // (S) that next token
    var dropout: DropoutSettings?
    weak var adapters: LoRAState?
    var hasForward = false

    var io: [LayerIO] = []
    var records: [LayerRecord] = []
    let weightT = PackedWeight()
    /// Kept W^T of each layer's linears ([layer][LoRATarget.index]; nil where one cannot be transposed) and
    /// of the lm head, built for `residentModel`.
    private(set) var residentT: [[PackedWeight?]] = []
    private(set) var residentHeadT: PackedWeight?
    private weak var residentModel: DecoderModel?
    /// Whether the last backward ran on kept transposes (the benchmark reports it).
    public var keepsTransposes: Bool { !residentT.isEmpty }
    lazy var grads = LayerGradients(dh: TrainingArena.dangling, dO: TrainingArena.dangling, dAct: TrainingArena.dangling, dUp: TrainingArena.dangling,
                                    dq: TrainingArena.dangling, dAtt: TrainingArena.dangling, dk: TrainingArena.dangling, dv: TrainingArena.dangling,
                                    sum: TrainingArena.dangling, weightT: weightT)
    var dx = TrainingArena.dangling       // (T, H) gradient of the residual stream
    var finalIn = TrainingArena.dangling  // (S, H) residual stream at the scored rows
    var finalOut = TrainingArena.dangling // (S, H) after the final norm: the lm head's and value head's input
    var finalRstd = TrainingArena.dangling // (S)
    var dFinal = TrainingArena.dangling   // (S, H)
    var logits = TrainingArena.dangling   // (S, V) when keepsLogits, else (logitRows, V)
    var keepsLogits = false
    /// dFinal already holds the lm head's input gradient (the forward had a HeadGradient).
    var headDone = false

    static var dangling: UnsafeMutablePointer<Float> { UnsafeMutablePointer(bitPattern: 64)! }

    public init(keptLogitFloats: Int = 32 << 20, memoryBudget: Int = 1 << 30) {
        self.keptLogitFloats = keptLogitFloats
        self.memoryBudget = memoryBudget
    }

    /// Bytes of a linear's W^T in Float panels, 0 when it cannot be transposed.
    static func transposedBytes(_ lin: Linear) -> Int { lin.canTranspose ? lin.inFeatures * lin.outFeatures * 4 : 0 }

    /// Whether the backward runs the lm head's dX on its W^T (within `transposedHeadBytes`).
    static func transposesHead(_ model: DecoderModel) -> Bool {
        let bytes = transposedBytes(model.output)
        return bytes > 0 && bytes <= transposedHeadBytes
    }

    /// Bytes of the kept transposes `model` would take.
    public static func residentBytes(_ model: DecoderModel) -> Int {
        let layers = model.layers.reduce(0) { sum, w in sum + w.linears.reduce(0) { $0 + transposedBytes($1) } }
        return layers + (transposesHead(model) ? transposedBytes(model.output) : 0)
    }

    /// Whether the backward of `model` runs on kept transposes: builds them on first use when they fit the
    /// budget beside the current reservation, drops them when they no longer do.
    func useResidentTransposes(_ model: DecoderModel) -> Bool {
        let bytes = Self.residentBytes(model)
        guard reservedBytes + bytes <= memoryBudget else {
            residentT = []; residentHeadT = nil; residentModel = nil
            return false
        }
        if residentModel === model && !residentT.isEmpty { return true }
        residentT = model.layers.map { w in
            w.linears.map { lin in
                guard lin.canTranspose else { return nil }
                let t = PackedWeight()
                lin.fillTransposed(t)
                return t
            }
        }
        residentHeadT = nil
        if Self.transposesHead(model) {
            let t = PackedWeight()
            model.output.fillTransposed(t)
            residentHeadT = t
        }
        residentModel = model
        return true
    }
    deinit { buffer?.deallocate() }

    /// Lays out every buffer for `seqs` on model c (two passes: count, then assign).
    func reserve(_ c: DecoderConfig, _ seqs: [TrainingSequence], lora: LoRAConfig?, fusedHead: Bool) {
        let T = seqs.reduce(0) { $0 + $1.rowCount }, S = seqs.reduce(0) { $0 + $1.scoredCount }
        let H = c.hiddenSize, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd, I = c.intermediateSize
        let probFloats = seqs.reduce(0) { $0 + c.heads * $1.rowCount * $1.rowCount }
        let gemma = c.isGemma
        func layout(_ base: UnsafeMutablePointer<Float>) -> Int {
            var off = 0
            func take(_ n: Int) -> UnsafeMutablePointer<Float> {
                defer { off += (max(n, 1) + 15) / 16 * 16 }  // 64-byte aligned runs
                return base + off
            }
            let h = take(T * H), o = take(T * H), act = take(T * I)
            // Attention outputs are read again only by an o_proj adapter's backward: otherwise one buffer.
            let keepsAtt = lora?.targets.contains(.o) ?? false
            let sharedAtt = keepsAtt ? nil : take(T * qDim)
            io = []; records = []
            for _ in 0..<c.layers {
                io.append(LayerIO(x: Self.dangling, h: h, q: take(T * qDim), k: take(T * kvDim), v: take(T * kvDim),
                                  att: sharedAtt ?? take(T * qDim), o: o, gate: take(T * I), up: take(T * I), act: act))
                var z = [UnsafeMutablePointer<Float>?](repeating: nil, count: LoRATarget.allCases.count)
                if let lora { for t in lora.targets { z[t.index] = take(T * lora.rank) } }
                records.append(LayerRecord(
                    x0: take(T * H), x1: take(T * H), rstd1: take(T), rstd2: take(T),
                    qRaw: gemma ? take(T * qDim) : nil, kRaw: gemma ? take(T * kvDim) : nil,
                    qRstd: gemma ? take(T * c.heads) : nil, kRstd: gemma ? take(T * c.kvHeads) : nil,
                    oPre: gemma ? take(T * H) : nil, dPre: gemma ? take(T * H) : nil,
                    rstdPostAttn: gemma ? take(T) : nil, rstdPostFfn: gemma ? take(T) : nil,
                    probs: take(probFloats), loraZ: z, weights: weightT))
            }
            let x = take(T * H)
            for l in io.indices { io[l].x = x }
            dx = take(T * H)
            grads = LayerGradients(dh: take(T * H), dO: take(T * H), dAct: take(T * I), dUp: take(T * I),
                                   dq: take(T * qDim), dAtt: take(T * qDim), dk: take(T * kvDim), dv: take(T * kvDim),
                                   sum: take(T * max(H, qDim, I)), weightT: weightT)
            finalIn = take(S * H); finalOut = take(S * H); finalRstd = take(S); dFinal = take(S * H)
            keepsLogits = !fusedHead && S * c.vocabSize <= keptLogitFloats
            logits = take((keepsLogits ? max(S, 1) : Self.logitRows) * c.vocabSize)
            return off
        }
        let total = layout(Self.dangling)
        if total > capacity {
            buffer?.deallocate()
            buffer = .allocate(capacity: total)  // every run is written before it is read
            capacity = total
        }
        reservedBytes = total * 4
        _ = layout(buffer!)
    }
}

public enum TrainingError: Error, CustomStringConvertible {
    case badSequence(index: Int, reason: String)
    public var description: String {
        switch self {
        case let .badSequence(i, reason): return "training sequence \(i): \(reason)"
        }
    }
}

extension DecoderModel {
    /// Forward over `sequences` (each alone in its attention, rows laid end to end). `adapters` nil is the
    /// base model (PPO's reference policy); `dropout` nil is evaluation mode. The arena keeps what
    /// `trainingBackward` needs.
    ///
    /// `onLogits(i, row)`, when given, sees the logits of scored position i (in output order) before they
    /// are reduced, from worker threads (each i once): what a full-distribution KL needs.
    ///
    /// `headGradient`, when given (with adapters), is the loss's derivative with respect to each position's
    /// log-prob and entropy; the backward is then `trainingBackward(arena:adapters:dValues:)`.
    public func trainingForward(_ sequences: [TrainingSequence], adapters: LoRAState?, dropout: DropoutSettings? = nil,
                                arena: TrainingArena,
                                onLogits: (@Sendable (Int, UnsafePointer<Float>) -> Void)? = nil,
                                headGradient: HeadGradient? = nil) throws -> TrainingOutputs {
        let c = config
        for (i, s) in sequences.enumerated() {
            if s.tokens.isEmpty { throw TrainingError.badSequence(index: i, reason: "has no tokens") }
            if s.scoredFrom < 0 || s.scoredFrom >= s.tokens.count {
                throw TrainingError.badSequence(index: i, reason: "scoredFrom \(s.scoredFrom) is outside 0..<\(s.tokens.count)")
            }
            if s.tokens.count > c.maxPositions {
                throw TrainingError.badSequence(index: i, reason: "\(s.tokens.count) tokens exceed the model's \(c.maxPositions) positions")
            }
            if let bad = s.tokens.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
                throw TrainingError.badSequence(index: i, reason: "token id \(bad) is outside the vocabulary of \(c.vocabSize)")
            }
        }
        if let adapters { precondition(adapters.model == c, "adapters were made for another model configuration") }
        precondition(headGradient == nil || adapters != nil, "a head gradient needs the adapters it trains")
        let H = c.hiddenSize, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd, V = c.vocabSize
        arena.reserve(c, sequences, lora: adapters?.config, fusedHead: headGradient != nil)
        arena.sequences = sequences
        arena.headDone = false
        arena.dropout = dropout
        arena.adapters = adapters
        arena.hasForward = true
        arena.starts = []; arena.positions = []; arena.probStarts = []; arena.scoredRows = []; arena.targets = []
        var row = 0, probOff = 0
        var rowSeq: [Int] = []
        for (si, s) in sequences.enumerated() {
            arena.starts.append(row)
            arena.probStarts.append(probOff)
            probOff += c.heads * s.rowCount * s.rowCount
            for p in 0..<s.rowCount {
                arena.positions.append(p); rowSeq.append(si)
                if p >= s.scoredFrom && p + 1 < s.tokens.count { arena.scoredRows.append(row); arena.targets.append(s.tokens[p + 1]) }
                row += 1
            }
        }
        let T = row, S = arena.scoredRows.count
        if T == 0 { return TrainingOutputs(logProbs: [], entropies: [], values: []) }

        let x = arena.io[0].x
        var r = 0
        for s in sequences { for t in s.tokens.prefix(s.rowCount) { embedding.row(t, into: x + r * H); r += 1 } }
        if c.embeddingScale != 1 { Vec.scale(x, c.embeddingScale, T * H) }

        let starts = arena.starts, probStarts = arena.probStarts
        arena.positions.withUnsafeBufferPointer { posBuf in
            let pos = posBuf.baseAddress!
            for l in layers.indices {
                let io = arena.io[l], rec = arena.records[l]
                let window = c.slidingLayers[l] ? c.slidingWindow : nil
                layerForward(l, io: io, rows: T, positions: pos, adapters: adapters, dropout: dropout, record: rec) { att in
                    let scale = c.attentionScale
                    parallelFor(T * c.heads, minPerChunk: 4) { item in
                        let t = item / c.heads, head = item % c.heads
                        let s = rowSeq[t], start = starts[s], L = sequences[s].rowCount, p = pos[t]
                        Attention.attendHead(att + t * qDim + head * hd, q: io.q + t * qDim + head * hd,
                                             keys: io.k + start * kvDim, values: io.v + start * kvDim,
                                             kvStride: kvDim, kvOffset: (head / (c.heads / c.kvHeads)) * hd,
                                             position: p, headDim: hd, scale: scale, window: window,
                                             probs: rec.probs + probStarts[s] + (head * L + p) * L, probsCount: L)
                    }
                }
            }
        }

        // Final norm on the scored rows; log-probs and entropies a chunk of rows at a time.
        for (i, row) in arena.scoredRows.enumerated() { (arena.finalIn + i * H).update(from: x + row * H, count: H) }
        Norms.rmsNorm(arena.finalOut, rstd: arena.finalRstd, arena.finalIn, weight: finalNorm, rows: S, dim: H, eps: c.rmsEps)
        var logProbs = [Float](repeating: 0, count: S), entropies = [Float](repeating: 0, count: S)
        let targets = arena.targets, keep = arena.keepsLogits
        let head = headGradient.map { _ in headInputGradient(arena, rows: S) }
        logProbs.withUnsafeMutableBufferPointer { lpb in
            entropies.withUnsafeMutableBufferPointer { enb in
                nonisolated(unsafe) let lp = lpb.baseAddress!, en = enb.baseAddress!
                var start = 0
                while start < S {
                    let n = min(TrainingArena.logitRows, S - start)
                    let logits = arena.logits + (keep ? start * V : 0)
                    output.forward(logits, arena.finalOut + start * H, rows: n)
                    parallelFor(n) { i in
                        onLogits?(start + i, logits + i * V)
                        let (a, b) = Softmax.logProbAndEntropy(logits + i * V, V, target: targets[start + i])
                        lp[start + i] = a; en[start + i] = b
                        if let g = headGradient?(start + i, a, b) {
                            Softmax.logProbAndEntropyBackward(logits + i * V, V, target: targets[start + i],
                                                              dLogProb: g.dLogProb, dEntropy: g.dEntropy)
                        }
                    }
                    if let head { head(start, n, logits) }
                    start += n
                }
            }
        }
        arena.headDone = head != nil
        var values: [Float] = []
        if let adapters, let vo = adapters.valueHeadOffset {
            values = [Float](repeating: 0, count: S)
            let w = adapters.parameters + vo
            withValueHeadInput(arena, dropout: dropout) { hv in
                for i in 0..<S { values[i] = Vec.dot(hv + i * H, w, H) + w[H] }
            }
        }
        return TrainingOutputs(logProbs: logProbs, entropies: entropies, values: values)
    }

    /// Runs body on the value head's input (S, H): the final hidden states, dropped out when training.
    private func withValueHeadInput(_ arena: TrainingArena, dropout: DropoutSettings?, _ body: (UnsafePointer<Float>) -> Void) {
        let n = arena.scoredRows.count * config.hiddenSize
        guard let d = dropout, d.valueHead > 0 else { body(arena.finalOut); return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, n)) { b in
            DropoutMask.apply(b.baseAddress!, arena.finalOut, count: n, seed: d.valueHeadSeed, p: d.valueHead)
            body(b.baseAddress!)
        }
    }

    /// dFinal rows start ..< start + n = dlogits W_out for a chunk of logits turned into their gradient: on
    /// W_out^T rebuilt once for every chunk (one pass over the vocabulary's weights) when that copy fits the
    /// budget and enough rows pay for it (Linear's own rule for a rebuild); else each chunk reduces across
    /// the Int8 panels.
    private func headInputGradient(_ arena: TrainingArena, rows S: Int) -> (_ start: Int, _ n: Int, _ dLogits: UnsafePointer<Float>) -> Void {
        let resident = arena.useResidentTransposes(self)
        let headBuffer = resident ? arena.residentHeadT : arena.weightT
        let headT = S >= Linear.transposeRows && TrainingArena.transposesHead(self)
            && (resident || output.fillTransposed(arena.weightT))
        let H = config.hiddenSize
        return { start, n, dLogits in
            self.output.inputGradient(arena.dFinal + start * H, dLogits, rows: n, transposed: headT ? headBuffer : nil,
                                      transposedIsFilled: headT)
        }
    }

    /// Adds to `adapters.gradients` the gradient of a loss whose derivatives with respect to the last
    /// forward's outputs are given (same shapes as TrainingOutputs; dValues empty = no value loss). The
    /// forward must have run with these adapters on this arena and without a head gradient; each forward
    /// serves one backward (as PyTorch frees its graph), since the kept logits turn into their gradient.
    public func trainingBackward(arena: TrainingArena, adapters: LoRAState, dLogProbs: [Float], dEntropies: [Float],
                                 dValues: [Float]) {
        precondition(arena.hasForward && arena.adapters === adapters, "trainingBackward needs a forward with these adapters first")
        precondition(!arena.headDone, "this forward had a head gradient: call trainingBackward(arena:adapters:dValues:)")
        let S = arena.scoredRows.count, T = arena.positions.count, H = config.hiddenSize, V = config.vocabSize
        precondition(dLogProbs.count == S && dEntropies.count == S && (dValues.isEmpty || dValues.count == S), "one derivative per scored position")
        guard T > 0 else { return }
        // d loss / d logits, one chunk at a time (kept or recomputed), into dFinal = dlogits W_out. The
        // kept logits become their gradient in place, so a second backward needs a new forward.
        let targets = arena.targets
        let head = headInputGradient(arena, rows: S)
        var start = 0
        while start < S {
            let n = min(TrainingArena.logitRows, S - start)
            let logits = arena.logits + (arena.keepsLogits ? start * V : 0)
            if !arena.keepsLogits { output.forward(logits, arena.finalOut + start * H, rows: n) }
            let s0 = start
            parallelFor(n) { i in
                Softmax.logProbAndEntropyBackward(logits + i * V, V, target: targets[s0 + i],
                                                  dLogProb: dLogProbs[s0 + i], dEntropy: dEntropies[s0 + i])
            }
            head(start, n, logits)
            start += n
        }
        backwardFromHead(arena: arena, adapters: adapters, dValues: dValues)
    }

    /// The backward of a forward that had a head gradient: the lm head's part is done, `dValues` (empty = no
    /// value loss) adds the value head's.
    public func trainingBackward(arena: TrainingArena, adapters: LoRAState, dValues: [Float]) {
        precondition(arena.hasForward && arena.adapters === adapters, "trainingBackward needs a forward with these adapters first")
        precondition(arena.headDone, "this forward had no head gradient: pass dLogProbs and dEntropies")
        precondition(dValues.isEmpty || dValues.count == arena.scoredRows.count, "one derivative per scored position")
        guard !arena.positions.isEmpty else { return }
        backwardFromHead(arena: arena, adapters: adapters, dValues: dValues)
    }

    /// From dFinal (the lm head's input gradient) and the value loss back through every layer.
    private func backwardFromHead(arena: TrainingArena, adapters: LoRAState, dValues: [Float]) {
        let c = config
        let S = arena.scoredRows.count, T = arena.positions.count
        let H = c.hiddenSize, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd
        let dropout = arena.dropout
        let resident = arena.useResidentTransposes(self)
        arena.hasForward = false
        arena.headDone = false
        if let vo = adapters.valueHeadOffset, !dValues.isEmpty {
            let w = adapters.parameters + vo, gw = adapters.gradients + vo
            withValueHeadInput(arena, dropout: dropout) { hv in
                for i in 0..<S {
                    let g = dValues[i]
                    Vec.axpy(gw, g, hv + i * H, H)
                    gw[H] += g
                    // Through the dropout: the mask (and 1/(1-p)) multiplies the gradient as it did the input.
                    if let d = dropout, d.valueHead > 0 {
                        DropoutMask.addMasked(arena.dFinal + i * H, alpha: g, w, count: H, offset: i * H,
                                              seed: d.valueHeadSeed, p: d.valueHead)
                    } else {
                        Vec.axpy(arena.dFinal + i * H, g, w, H)
                    }
                }
            }
        }
        // Through the final norm back to the residual stream (zero at unscored rows).
        let dx = arena.dx
        dx.update(repeating: 0, count: T * H)
        Norms.rmsNormBackward(arena.grads.dh, arena.dFinal, x: arena.finalIn, rstd: arena.finalRstd, weight: finalNorm,
                              rows: S, dim: H)
        for (i, row) in arena.scoredRows.enumerated() { (dx + row * H).update(from: arena.grads.dh + i * H, count: H) }

        let seqs = arena.sequences, starts = arena.starts, probStarts = arena.probStarts
        let shape = AttentionShape(heads: c.heads, kvHeads: c.kvHeads, headDim: hd)
        arena.positions.withUnsafeBufferPointer { posBuf in
            let pos = posBuf.baseAddress!
            for l in layers.indices.reversed() {
                let io = arena.io[l], rec = arena.records[l]
                let window = c.slidingLayers[l] ? c.slidingWindow : nil
                layerBackward(l, dx: dx, io: io, record: rec, grad: arena.grads, transposes: resident ? arena.residentT[l] : nil,
                              rows: T, positions: pos, adapters: adapters, dropout: dropout, inputGradient: l > 0) { dq, dk, dv, dAtt in
                    // One item per (sequence, key/value head): no two items write the same dk/dv rows.
                    parallelFor(seqs.count * c.kvHeads) { item in
                        let s = item / c.kvHeads, g = item % c.kvHeads, st = starts[s]
                        Attention.backwardGroup(dq: dq + st * qDim, dk: dk + st * kvDim, dv: dv + st * kvDim,
                                                dOut: dAtt + st * qDim, q: io.q + st * qDim, qStride: qDim,
                                                keys: io.k + st * kvDim, values: io.v + st * kvDim, kvStride: kvDim,
                                                probs: rec.probs + probStarts[s], length: seqs[s].rowCount,
                                                kvHead: g, shape: shape, scale: c.attentionScale, window: window)
                    }
                }
            }
        }
    }
}
