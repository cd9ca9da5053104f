// LoRA adapters as PEFT defines them, and TRL's value head, as the trainable part of a frozen decoder.
// Every trainable number (each adapter's A [r, in] and B [out, r], the value head's weight [hidden] and
// bias) lives in one flat buffer, with their gradients in a second buffer of the same layout, so an
// optimizer is one loop over two arrays (llm.c style). The base model is never touched: the forward takes
// the state as an argument, and passing nil is PPO's reference policy.
//
// Math (PEFT): y = W x + s B A dropout(x), s = alpha / r (alpha / sqrt(r) with rsLoRA); A is
// Kaiming-uniform with a = sqrt(5) (uniform in ±1/sqrt(in)), B is zero. Dropout masks come from a
// counter-based hash of (seed, module, element), so the backward pass regenerates the forward's mask
// instead of storing it, and a run replays exactly from its seed.
import Foundation
import Tensors

/// The linear layers of a decoder block LoRA can adapt, named as PEFT's target_modules name them.
public enum LoRATarget: String, CaseIterable, Sendable, Codable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj", gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// The index of the module in a layer's slot table.
    var index: Int { LoRATarget.allCases.firstIndex(of: self)! }

    /// (in, out) features of this module in a model of configuration c.
    public func features(_ c: DecoderConfig) -> (in: Int, out: Int) {
        let H = c.hiddenSize, q = c.heads * c.headDim, kv = c.kvHeads * c.headDim, I = c.intermediateSize
        switch self {
        case .q: return (H, q)
        case .k, .v: return (H, kv)
        case .o: return (q, H)
        case .gate, .up: return (H, I)
        case .down: return (I, H)
        }
    }
}

public struct LoRAConfig: Sendable, Equatable {
    public var rank: Int
    public var alpha: Float
    public var dropout: Float
    public var targets: [LoRATarget]
    public var useRSLoRA: Bool

    /// Defaults of the EX2 reference run: r 16, alpha 32, dropout 0.05, q_proj and v_proj (PEFT's
    /// default targets for Llama-family models).
    public init(rank: Int = 16, alpha: Float = 32, dropout: Float = 0.05, targets: [LoRATarget] = [.q, .v], useRSLoRA: Bool = false) {
        self.rank = rank; self.alpha = alpha; self.dropout = dropout; self.targets = targets; self.useRSLoRA = useRSLoRA
    }

    /// The factor on B A x.
    public var scale: Float { useRSLoRA ? alpha / Float(Double(rank).squareRoot()) : alpha / Float(rank) }
}

/// Where one adapted module's A and B sit in the flat buffers.
public struct LoRASlot: Sendable {
    public let layer: Int
    public let target: LoRATarget
    public let inFeatures: Int, outFeatures: Int
    /// Offsets of A [r, in] and B [out, r] (row-major, PyTorch's layout).
    public let a: Int, b: Int
}

public final class LoRAState: @unchecked Sendable {  // reason: owner of the parameter buffers; one trainer writes them at a time
    public let config: LoRAConfig
    public let model: DecoderConfig
    public let slots: [LoRASlot]
    private let table: [Int?]  // [layer * 7 + target index] -> slot index
    /// Offset of the value head's weight [hidden] (bias at +hidden) when there is one.
    public let valueHeadOffset: Int?
    public let count: Int
    public let parameters: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>

    /// Adapters on `config.targets` of every layer (A Kaiming-uniform, B zero) and, when `valueHead`, TRL's
    /// value head with nn.Linear's default initialisation; all drawn from `seed`.
    public init(model: DecoderConfig, config: LoRAConfig, valueHead: Bool, seed: UInt64) {
        precondition(config.rank > 0, "LoRA rank must be positive")
        self.config = config
        self.model = model
        var slots: [LoRASlot] = []
        var table = [Int?](repeating: nil, count: model.layers * LoRATarget.allCases.count)
        var offset = 0
        for l in 0..<model.layers {
            for t in LoRATarget.allCases where config.targets.contains(t) {
                let (i, o) = t.features(model)
                table[l * LoRATarget.allCases.count + t.index] = slots.count
                slots.append(LoRASlot(layer: l, target: t, inFeatures: i, outFeatures: o, a: offset, b: offset + config.rank * i))
                offset += config.rank * (i + o)
            }
        }
        if valueHead { valueHeadOffset = offset; offset += model.hiddenSize + 1 } else { valueHeadOffset = nil }
        self.slots = slots
        self.table = table
        count = offset
        parameters = .allocate(capacity: max(1, offset))
        parameters.initialize(repeating: 0, count: max(1, offset))
        gradients = .allocate(capacity: max(1, offset))
        gradients.initialize(repeating: 0, count: max(1, offset))
        for (i, s) in slots.enumerated() {
            var rng = RandomStream(seed: Generator.sequenceSeed(seed, i))
            let bound = 1 / Float(Double(s.inFeatures).squareRoot())
            for j in 0..<(config.rank * s.inFeatures) { parameters[s.a + j] = (2 * rng.nextFloat() - 1) * bound }
        }
        if let v = valueHeadOffset {
            var rng = RandomStream(seed: Generator.sequenceSeed(seed, slots.count))
            let bound = 1 / Float(Double(model.hiddenSize).squareRoot())
            for j in 0...model.hiddenSize { parameters[v + j] = (2 * rng.nextFloat() - 1) * bound }
        }
    }
    deinit { parameters.deallocate(); gradients.deallocate() }

    public func slot(layer: Int, _ target: LoRATarget) -> LoRASlot? {
        table[layer * LoRATarget.allCases.count + target.index].map { slots[$0] }
    }

    public func zeroGradients() { gradients.update(repeating: 0, count: count) }

    /// Copies parameters (not gradients) from another state of the same layout.
    public func copyParameters(from other: LoRAState) {
        precondition(other.count == count, "LoRA layouts differ")
        parameters.update(from: other.parameters, count: count)
    }
}

/// Seeds of the dropout masks of one forward call; nil dropout means evaluation mode.
public struct DropoutSettings: Sendable, Equatable {
    public var seed: UInt64
    /// Probability of zeroing an element of a LoRA branch's input.
    public var lora: Float
    /// Probability of zeroing an element of the value head's input.
    public var valueHead: Float
    public init(seed: UInt64, lora: Float, valueHead: Float) { self.seed = seed; self.lora = lora; self.valueHead = valueHead }

    /// The mask seed of LoRA module `target` of `layer`.
    func loraSeed(layer: Int, _ target: LoRATarget) -> UInt64 { Generator.sequenceSeed(seed, layer * 8 + target.index) }
    var valueHeadSeed: UInt64 { Generator.sequenceSeed(seed, 1 << 20) }
}

enum DropoutMask {
    /// Whether element `index` survives under mask `seed` with drop probability p (splitmix64 of the pair).
    @inline(__always)
    static func keep(_ seed: UInt64, _ index: Int, p: Float) -> Bool {
        var x = seed &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        x ^= x >> 31
        return Float(x >> 40) * 0x1.0p-24 >= p
    }

    /// The backward of `apply` into an accumulator: dst[i] += (alpha src[i]) / (1 - p) where element
    /// offset + i survived under `seed`.
    static func addMasked(_ dst: UnsafeMutablePointer<Float>, alpha: Float, _ src: UnsafePointer<Float>, count: Int,
                          offset: Int, seed: UInt64, p: Float) {
        let s = 1 / (1 - p)
        for i in 0..<count where keep(seed, offset + i, p: p) { dst[i] += alpha * src[i] * s }
    }

    /// out[i] = x[i] / (1 - p) where kept, else 0 (torch.nn.Dropout in training mode); out may be x.
    static func apply(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, seed: UInt64, p: Float) {
        let s = 1 / (1 - p)
        parallelChunks(count, minPerChunk: 16384) { r in
            for i in r { out[i] = keep(seed, i, p: p) ? x[i] * s : 0 }
        }
    }
}

extension LoRAState {
    /// y[rows, out] += s B A dropout(x) for `slot`; z [rows, r] receives A dropout(x) when given (the
    /// backward needs it). Each row is computed on its own with fixed-order dot products (not BLAS, whose
    /// blocking depends on the row count), so a row's result never depends on what else is in the batch:
    /// adapted sampling stays batch-invariant and the training forward keeps the inference bits.
    func forward(_ slot: LoRASlot, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int,
                 dropout: DropoutSettings?, z zOut: UnsafeMutablePointer<Float>?) {
        let r = config.rank, n = slot.inFeatures, out = slot.outFeatures, s = config.scale
        let a = parameters + slot.a, b = parameters + slot.b
        withDropped(slot, x, rows: rows, dropout: dropout) { xd in
            withScratch(zOut, rows * r) { z in
                // B^T [r, out], so that z B^T is r contiguous rows combined in registers, not out dot
                // products of length r.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: r * out) { tb in
                    let bT = tb.baseAddress!
                    for o in 0..<out { for j in 0..<r { bT[j * out + o] = b[o * r + j] } }
                    nonisolated(unsafe) let bTc = UnsafePointer(bT)
                    parallelChunks(rows, minPerChunk: max(1, 65536 / max(1, r * (n + out)))) { range in
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: out) { ub in
                            let u = ub.baseAddress!
                            for t in range {
                                let zt = z + t * r, xt = xd + t * n, yt = y + t * out
                                for j in 0..<r { zt[j] = Vec.dot(xt, a + j * n, n) }
                                Vec.combineRows(u, zt, cStride: 1, bTc, ldm: out, m: r, n: out)
                                Vec.axpy(yt, s, u, out)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Backward of `forward` given dy [rows, out]: adds to the gradients of A and B and to dx [rows, in].
    /// `z` is what the forward saved; x is the module's (undropped) input. Plain loops on our own workers
    /// rather than BLAS: these products are thin (one side is r wide), and OpenBLAS's threads keep
    /// spinning after each call, taking the cores the next kernels need. Sums over rows run in row order
    /// within each output, so the gradients do not depend on how the work is split.
    func backward(_ slot: LoRASlot, dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                  z: UnsafePointer<Float>, rows: Int, dropout: DropoutSettings?) {
        let r = config.rank, n = slot.inFeatures, out = slot.outFeatures, s = config.scale
        let a = parameters + slot.a, b = parameters + slot.b, gA = gradients + slot.a, gB = gradients + slot.b
        // dB[o, :] += s (sum_t dy[t, o] z[t, :]), the sum in row order in registers, four outputs at a time.
        parallelChunks(out, minPerChunk: 16) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * r) { sb in
                let sum = sb.baseAddress!
                var o = range.lowerBound
                while o + 4 <= range.upperBound {
                    Vec.combineRows4(sum, yStride: r, dy + o, cStride: out, cNext: 1, z, ldm: r, m: rows, n: r)
                    for q in 0..<4 { Vec.axpy(gB + (o + q) * r, s, sum + q * r, r) }
                    o += 4
                }
                while o < range.upperBound {
                    Vec.combineRows(sum, dy + o, cStride: out, z, ldm: r, m: rows, n: r)
                    Vec.axpy(gB + o * r, s, sum, r)
                    o += 1
                }
            }
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * r) { dzb in
            let dz = dzb.baseAddress!
            // dz[t, :] = s sum_o dy[t, o] B[o, :], four rows at a time.
            parallelChunks(rows, minPerChunk: 8) { range in
                var t = range.lowerBound
                while t + 4 <= range.upperBound {
                    Vec.combineRows4(dz + t * r, yStride: r, dy + t * out, cStride: 1, cNext: out, b, ldm: r, m: out, n: r)
                    t += 4
                }
                while t < range.upperBound {
                    Vec.combineRows(dz + t * r, dy + t * out, cStride: 1, b, ldm: r, m: out, n: r)
                    t += 1
                }
                Vec.scale(dz + range.lowerBound * r, s, range.count * r)
            }
            // dA[j, :] += sum_t dz[t, j] dropout(x)[t, :], t in order, dA held in registers across rows.
            withDropped(slot, x, rows: rows, dropout: dropout) { xd in
                parallelChunks(n, minPerChunk: 64) { range in
                    let lo = range.lowerBound
                    Vec.addOuterProducts(gA + lo, ldy: n, dz, ldc: r, xd + lo, ldx: n, m: rows, r: r, n: range.count)
                }
            }
            // dx[t, :] += mask (sum_j dz[t, j] A[j, :]) / (1 - p), j in order.
            let drop = dropout.flatMap { $0.lora > 0 ? $0 : nil }
            parallelChunks(rows, minPerChunk: 8) { range in
                let lo = range.lowerBound
                if let d = drop {
                    // Eight rows at a time through a cache-resident buffer, then the mask.
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * n) { tb in
                        let tmp = tb.baseAddress!, seed = d.loraSeed(layer: slot.layer, slot.target)
                        var t0 = lo
                        while t0 < range.upperBound {
                            let count = min(8, range.upperBound - t0)
                            tmp.update(repeating: 0, count: count * n)
                            Vec.addOuterProducts(tmp, ldy: n, dz + t0 * r, ldc: 1, cj: r, a, ldx: n, m: r, r: count, n: n)
                            for t in t0..<(t0 + count) {
                                DropoutMask.addMasked(dx + t * n, alpha: 1, tmp + (t - t0) * n, count: n, offset: t * n, seed: seed, p: d.lora)
                            }
                            t0 += count
                        }
                    }
                } else {
                    Vec.addOuterProducts(dx + lo * n, ldy: n, dz + lo * r, ldc: 1, cj: r, a, ldx: n, m: r, r: range.count, n: n)
                }
            }
        }
    }

    /// Runs body on dropout(x) (x itself when there is no dropout).
    private func withDropped(_ slot: LoRASlot, _ x: UnsafePointer<Float>, rows: Int, dropout: DropoutSettings?,
                             _ body: (UnsafePointer<Float>) -> Void) {
        guard let d = dropout, d.lora > 0 else { body(x); return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * slot.inFeatures) { b in
            DropoutMask.apply(b.baseAddress!, x, count: rows * slot.inFeatures, seed: d.loraSeed(layer: slot.layer, slot.target), p: d.lora)
            body(b.baseAddress!)
        }
    }
}

/// Runs body on `given`, or on a temporary buffer of `count` floats when nil.
@inline(__always)
func withScratch(_ given: UnsafeMutablePointer<Float>?, _ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) {
    if let given { body(given); return }
    withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, count)) { body($0.baseAddress!) }
}
