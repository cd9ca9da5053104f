// A decoder-only transformer of the Llama family (Llama, Mistral, SmolLM, Qwen2) or Gemma 3, in reading
// order: embedding, layers (attention with grouped-query heads and RoPE, gated MLP), final norm, output
// projection. One forward call advances any number of sequences by any number of tokens each, reading and
// extending their key/value cache slots, so prefill and batched decoding of sequences with different
// lengths need no padding.
import Foundation
import Layers
import ModelFiles
import Tensors

public struct DecoderLayerWeights: @unchecked Sendable {  // reason: Linear instances are immutable after loading
    public var attnNorm: [Float]
    public var q: Linear, k: Linear, v: Linear, o: Linear
    /// Gemma 3: RMSNorm over each head of q and k, and after attention / MLP outputs.
    public var qNorm: [Float]?, kNorm: [Float]?
    public var postAttnNorm: [Float]?
    public var ffnNorm: [Float]
    public var gate: Linear, up: Linear, down: Linear
    public var postFfnNorm: [Float]?

    /// The seven linears in LoRATarget order (q, k, v, o, gate, up, down).
    public var linears: [Linear] { [q, k, v, o, gate, up, down] }
}

/// Which positions get logits back from a forward pass.
public enum LogitsSelection: Sendable { case lastOfEachChunk, all, none }

/// New tokens of one sequence: they take cache positions startPosition ..< startPosition + tokens.count.
public struct SequenceChunk: Sendable {
    public var slot: Int
    public var tokens: [Int]
    public var startPosition: Int
    public init(slot: Int, tokens: [Int], startPosition: Int) {
        self.slot = slot; self.tokens = tokens; self.startPosition = startPosition
    }
}

public final class DecoderModel: @unchecked Sendable {  // reason: weights immutable; forward uses caller-owned state
    public let config: DecoderConfig
    /// token embedding [vocab, hidden]; also the output projection when embeddings are tied.
    public let embedding: Linear
    public let layers: [DecoderLayerWeights]
    public let finalNorm: [Float]
    public let output: Linear
    let ropeGlobal: RoPE
    let ropeLocal: RoPE

    func rope(layer l: Int) -> RoPE { config.slidingLayers[l] ? ropeLocal : ropeGlobal }

    public init(config: DecoderConfig, embedding: Linear, layers: [DecoderLayerWeights], finalNorm: [Float], output: Linear?) {
        self.config = config
        self.embedding = embedding
        self.layers = layers
        self.finalNorm = finalNorm
        self.output = output ?? embedding
        ropeGlobal = RoPE(rotaryDim: config.headDim, base: config.ropeTheta, linearScaling: config.ropeLinearScaling)
        ropeLocal = RoPE(rotaryDim: config.headDim, base: config.ropeLocalTheta ?? config.ropeTheta,
                         linearScaling: config.ropeLocalTheta == nil ? config.ropeLinearScaling : 1)
    }

    public func makeCache(slots: Int, capacity: Int) -> KVCache {
        KVCache(layers: config.layers, slots: slots, capacity: capacity, width: config.kvHeads * config.headDim)
    }

    /// Runs the chunks through the model, appending their keys/values to `cache`. Returns logits
    /// [rows, vocab] for the selected positions (row order: chunks in order, positions in order).
    /// `adapters` (LoRA, applied as a side path of each adapted layer) default to none: the base model.
    public func forward(_ chunks: [SequenceChunk], cache: KVCache, logits selection: LogitsSelection = .lastOfEachChunk,
                        workspace: Workspace? = nil, adapters: LoRAState? = nil) -> [Float] {
        let c = config
        let T = chunks.reduce(0) { $0 + $1.tokens.count }
        if T == 0 { return [] }
        let H = c.hiddenSize, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd, I = c.intermediateSize
        let ws = workspace ?? Workspace()
        if let adapters { precondition(adapters.model == c, "adapters were made for another model configuration") }
        ws.reserve(rows: T, hidden: H, qDim: qDim, kvDim: kvDim, intermediate: I)

        // Row bookkeeping: which chunk each row belongs to and its cache position.
        var positions = [Int](repeating: 0, count: T)
        var rowChunk = [Int](repeating: 0, count: T)
        var ids = [Int](repeating: 0, count: T)
        var r = 0
        for (ci, ch) in chunks.enumerated() {
            precondition(ch.startPosition + ch.tokens.count <= cache.capacity, "KV cache capacity \(cache.capacity) exceeded")
            precondition(cache.lengths[ch.slot] == ch.startPosition, "chunk does not continue its cache slot")
            for (j, t) in ch.tokens.enumerated() {
                precondition(t >= 0 && t < c.vocabSize, "token id \(t) outside the vocabulary")
                positions[r] = ch.startPosition + j; rowChunk[r] = ci; ids[r] = t; r += 1
            }
        }

        let x = ws.x
        for t in 0..<T { embedding.row(ids[t], into: x + t * H) }
        if c.embeddingScale != 1 { Vec.scale(x, c.embeddingScale, T * H) }

        // The product act(gate) * up overwrites gate: inference keeps no pre-activations.
        let io = LayerIO(x: x, h: ws.h, q: ws.q, k: ws.k, v: ws.v, att: ws.att, o: ws.o, gate: ws.gate, up: ws.up, act: ws.gate)
        positions.withUnsafeBufferPointer { posBuf in
            let pos = posBuf.baseAddress!
            for l in layers.indices {
                let sliding = c.slidingLayers[l]
                layerForward(l, io: io, rows: T, positions: pos, adapters: adapters, dropout: nil, record: nil) { att in
                    // Append this layer's keys and values to each sequence's cache slot, then attend over it.
                    let k = io.k, v = io.v, q = io.q
                    for t in 0..<T {
                        let slot = chunks[rowChunk[t]].slot
                        cache.keys(layer: l, slot: slot, position: positions[t]).update(from: k + t * kvDim, count: kvDim)
                        cache.values(layer: l, slot: slot, position: positions[t]).update(from: v + t * kvDim, count: kvDim)
                    }
                    let window = sliding ? c.slidingWindow : nil
                    let scale = c.attentionScale
                    parallelFor(T * c.heads, minPerChunk: 4) { item in
                        let t = item / c.heads, head = item % c.heads
                        let slot = chunks[rowChunk[t]].slot
                        Attention.attendHead(att + t * qDim + head * hd, q: q + t * qDim + head * hd,
                                             keys: cache.keys(layer: l, slot: slot, position: 0),
                                             values: cache.values(layer: l, slot: slot, position: 0),
                                             kvStride: kvDim, kvOffset: (head / (c.heads / c.kvHeads)) * hd,
                                             position: pos[t], headDim: hd, scale: scale, window: window)
                    }
                }
            }
        }
        for ch in chunks { cache.lengths[ch.slot] = ch.startPosition + ch.tokens.count }

        // Final norm and output projection on the rows whose logits were asked for.
        var selected: [Int] = []
        switch selection {
        case .none: return []
        case .all: selected = Array(0..<T)
        case .lastOfEachChunk:
            var end = 0
            for ch in chunks { end += ch.tokens.count; if !ch.tokens.isEmpty { selected.append(end - 1) } }
        }
        let n = selected.count, V = c.vocabSize, h = ws.h
        // Gather the selected rows of the residual stream into h, then normalise and project them.
        for (i, row) in selected.enumerated() { (h + i * H).update(from: x + row * H, count: H) }
        Norms.rmsNorm(h, h, weight: finalNorm, rows: n, dim: H, eps: c.rmsEps)
        var logits = [Float](repeating: 0, count: n * V)
        logits.withUnsafeMutableBufferPointer { output.forward($0.baseAddress!, h, rows: n) }
        return logits
    }
}

/// Key/value cache: per layer, per slot (sequence), `capacity` positions of kvHeads*headDim floats.
public final class KVCache: @unchecked Sendable {  // reason: owned by one generation loop at a time
    public let layers: Int, slots: Int, capacity: Int, width: Int
    public var lengths: [Int]
    private let storage: UnsafeMutablePointer<Float>

    public init(layers: Int, slots: Int, capacity: Int, width: Int) {
        self.layers = layers; self.slots = slots; self.capacity = capacity; self.width = width
        lengths = [Int](repeating: 0, count: slots)
        let n = 2 * layers * slots * capacity * width
        // Left uninitialised: attention reads only positions below a slot's length, all written first,
        // so the pages of a large serving cache are touched only as sequences fill them.
        storage = .allocate(capacity: n)
    }
    deinit { storage.deallocate() }

    @inline(__always) public func keys(layer: Int, slot: Int, position: Int) -> UnsafeMutablePointer<Float> {
        storage + (((layer * 2) * slots + slot) * capacity + position) * width
    }
    @inline(__always) public func values(layer: Int, slot: Int, position: Int) -> UnsafeMutablePointer<Float> {
        storage + (((layer * 2 + 1) * slots + slot) * capacity + position) * width
    }
    public func reset(slot: Int) { lengths[slot] = 0 }
}

/// Activation buffers of one forward pass, sized once for the largest (rows) seen and reused.
public final class Workspace: @unchecked Sendable {  // reason: used by one forward call at a time
    private var buffer: UnsafeMutablePointer<Float>?
    private var capacity = 0
    private(set) var x = UnsafeMutablePointer<Float>(bitPattern: 8)!, h = UnsafeMutablePointer<Float>(bitPattern: 8)!
    private(set) var q = UnsafeMutablePointer<Float>(bitPattern: 8)!, k = UnsafeMutablePointer<Float>(bitPattern: 8)!
    private(set) var v = UnsafeMutablePointer<Float>(bitPattern: 8)!, att = UnsafeMutablePointer<Float>(bitPattern: 8)!
    private(set) var o = UnsafeMutablePointer<Float>(bitPattern: 8)!, gate = UnsafeMutablePointer<Float>(bitPattern: 8)!
    private(set) var up = UnsafeMutablePointer<Float>(bitPattern: 8)!

    public init() {}
    deinit { buffer?.deallocate() }

    func reserve(rows T: Int, hidden H: Int, qDim: Int, kvDim: Int, intermediate I: Int) {
        let sizes = [T * H, T * H, T * qDim, T * kvDim, T * kvDim, T * qDim, T * max(H, qDim), T * I, T * I]
        let total = sizes.reduce(0, +)
        if total > capacity {
            buffer?.deallocate()
            buffer = .allocate(capacity: total)
            buffer!.initialize(repeating: 0, count: total)
            capacity = total
        }
        var p = buffer!
        var ptrs: [UnsafeMutablePointer<Float>] = []
        for s in sizes { ptrs.append(p); p += s }
        x = ptrs[0]; h = ptrs[1]; q = ptrs[2]; k = ptrs[3]; v = ptrs[4]; att = ptrs[5]; o = ptrs[6]; gate = ptrs[7]; up = ptrs[8]
    }
}
