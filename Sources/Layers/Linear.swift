// A linear layer y = x W^T (+ b), the one every model family builds from (decoder projections, CLIP's
// towers). Its weight W [out, in] runs through one kernel for every number of
// rows, so a sequence's numbers never depend on what else is in the batch (sampling from the long tail
// of a distribution is chaotic: one rounding difference picks another token):
// - ggml types that decompose into small integers (Q4_0/1, Q5_0/1, Q8_0, Q4_K, Q6_K) are re-laid out in
//   16-output panels that QuantPanelGEMM expands in registers (~1.5 bytes per weight read);
//   Few rows rebuild weights in registers; more rows expand one panel at a time to Float in L2 and
//   share it across the rows (same values, same accumulation order, so the same results);
// - Float panels for PackedGEMM (which beats OpenBLAS here: OpenBLAS repacks all of W on every call)
//   for dense checkpoints and other ggml types;
// - large models of other ggml types may skip the Float copy and dequantize tiles on the fly.
import Foundation
import ModelFiles
import Tensors

/// Raw ggml rows that stay in their file encoding. `owner` keeps the mapping (or a copied buffer) alive.
public struct QuantizedRows: @unchecked Sendable {  // reason: read-only pointer into memory `owner` keeps alive
    public let type: GGMLType
    public let base: UnsafeRawPointer
    public let rowBytes: Int
    let owner: AnyObject

    public init(type: GGMLType, base: UnsafeRawPointer, rowBytes: Int, owner: AnyObject) {
        self.type = type; self.base = base; self.rowBytes = rowBytes; self.owner = owner
    }
}

public final class Linear: @unchecked Sendable {  // reason: weights are immutable after loading
    public let outFeatures: Int
    public let inFeatures: Int
    /// W packed in 16-output Float panels for PackedGEMM, when kept.
    public private(set) var packed: PackedWeight?
    /// W decomposed into Int8 panels with per-16 scales and offsets, for QuantPanelGEMM.
    public private(set) var quantPanels: QuantPanelWeight?
    public let quantized: QuantizedRows?
    public let bias: [Float]?

    /// Without any panel copy, up to this many rows use the streaming kernel on dequantized tiles.
    /// (Measured single-threaded at batch 32 on SmolLM2: Float panels 128 ms per decode step,
    /// dequantized row tiles 160 ms, dequantize-and-transpose into panels 304 ms.)
    public static let smallBatchRows = 64

    /// From this many rows on, dX = dY W rebuilds W^T in Float panels (one pass over W) and runs the forward
    /// kernel: the rebuild costs about what 16 rows of the product do.
    public static let transposeRows = 32

    /// From this many rows on, a forward given a buffer runs Int8 panels as expanded Float panels.
    public static let expandRows = 256

    public init(dense: [Float], out: Int, in inFeatures: Int, bias: [Float]? = nil) {
        precondition(dense.count == out * inFeatures)
        outFeatures = out; self.inFeatures = inFeatures
        quantized = nil
        self.bias = bias
        packed = dense.withUnsafeBufferPointer { d in
            nonisolated(unsafe) let base = d.baseAddress!
            return PackedWeight(n: out, k: inFeatures) { r, dst in dst.update(from: base + r * inFeatures, count: inFeatures) }
        }
    }

    /// Layers that share their input, outputs stacked (q, k, v into one qkv projection): W is the parts'
    /// rows one after another in Float panels (quantized parts dequantized), the bias their biases end to
    /// end when every part has one, else none.
    public init(stacking parts: [Linear]) {
        precondition(!parts.isEmpty, "nothing to stack")
        let k = parts[0].inFeatures
        precondition(parts.allSatisfy { $0.inFeatures == k }, "stacked layers share their input")
        var rows: [(Linear, Int)] = []
        for part in parts { for r in 0..<part.outFeatures { rows.append((part, r)) } }
        outFeatures = rows.count; inFeatures = k
        quantized = nil
        let biases = parts.compactMap(\.bias)
        bias = biases.count == parts.count ? biases.flatMap { $0 } : nil
        let table = rows
        packed = PackedWeight(n: rows.count, k: k) { r, dst in table[r].0.row(table[r].1, into: dst) }
    }

    /// `keepDense`: for ggml types that do not decompose, keep a Float panel copy (else tiles on the fly).
    public init(quantized: QuantizedRows, out: Int, in inFeatures: Int, keepDense: Bool, bias: [Float]? = nil) {
        outFeatures = out; self.inFeatures = inFeatures
        self.quantized = quantized
        self.bias = bias
        if canDecompose(quantized.type) && inFeatures % 16 == 0 {
            let q = quantized, n = inFeatures
            quantPanels = QuantPanelWeight(n: out, k: n) { r, qs, scales, offsets in
                decomposeRow(q.type, q.base + r * q.rowBytes, q: qs, scales: scales, offsets: offsets, count: n)
            }
        }
        if keepDense && quantPanels == nil {
            let q = quantized, n = inFeatures
            packed = PackedWeight(n: out, k: n) { r, dst in dequantizeRow(q.type, q.base + r * q.rowBytes, dst, count: n) }
        }
    }

    /// Writes row `r` of W (length `inFeatures`) to `dst`: the embedding lookup of tied embeddings.
    @inline(__always)
    public func row(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        if let q = quantized {
            dequantizeRow(q.type, q.base + r * q.rowBytes, dst, count: inFeatures)
        } else if let p = packed {
            p.row(r, into: dst)
        }
    }

    /// y[rows, out] = x[rows, in] W^T + b. With `expanded` (a reusable buffer) and many rows, Int8 panels
    /// are first expanded to Float panels, whose kernel is faster on long batches; the bits are the same.
    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, expanded: PackedWeight? = nil) {
        guard rows > 0 else { return }
        if let qp = quantPanels, let e = expanded, rows >= Linear.expandRows {
            e.fillExpanded(of: qp)
            withBias(bias) { PackedGEMM.linear(y, x, e, bias: $0, m: rows) }
        } else if let qp = quantPanels {
            withBias(bias) { QuantPanelGEMM.linear(y, x, qp, bias: $0, m: rows) }
        } else if let p = packed {
            withBias(bias) { PackedGEMM.linear(y, x, p, bias: $0, m: rows) }
        } else if let q = quantized, rows <= Linear.smallBatchRows && inFeatures % 8 == 0 {
            smallBatchFromBlocks(y, x, rows: rows, q)
        } else if let q = quantized {
            tiledForward(y, x, rows: rows, q)
        }
    }

    /// dx[rows, in] = dy[rows, out] · W (or += when `accumulate`): the gradient through this frozen
    /// layer to its input. No gradient of W is ever formed.
    /// With `transposed` (a reusable buffer) and enough rows, W^T is rebuilt in Float panels and the product
    /// runs on the forward's GEMM kernel, adding through `scratch` [rows, in] when accumulating.
    /// `transposedIsFilled`: `transposed` already holds this layer's W^T (from `fillTransposed`), so calls
    /// over consecutive chunks of rows share one rebuild; it is then used for any number of rows.
    public func inputGradient(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, rows: Int, accumulate: Bool = false,
                              transposed: PackedWeight? = nil, transposedIsFilled: Bool = false,
                              scratch: UnsafeMutablePointer<Float>? = nil) {
        guard rows > 0 else { return }
        if let wt = transposed, transposedIsFilled || rows >= Linear.transposeRows, canTranspose, !accumulate || scratch != nil {
            if !transposedIsFilled { fillTransposed(wt) }
            let out = accumulate ? scratch! : dx
            PackedGEMM.linear(out, dy, wt, bias: nil, m: rows)
            if accumulate { Vec.add(dx, out, rows * inFeatures) }
            return
        }
        if let qp = quantPanels {
            PanelBackward.inputGradient(dx, dy, qp, m: rows, accumulate: accumulate)
        } else if let p = packed {
            PanelBackward.inputGradient(dx, dy, p, m: rows, accumulate: accumulate)
        } else if let q = quantized {
            // Weight rows dequantized a tile at a time: dx += dy[:, tile] · W[tile, :].
            let n = inFeatures, out = outFeatures
            forEachDequantizedTile(q) { start, count, tile in
                BLAS.gemm(m: rows, n: n, k: count, a: dy + start, lda: out, b: tile, ldb: n,
                          beta: (accumulate || start > 0) ? 1 : 0, c: dx, ldc: n)
            }
        }
    }

    /// Whether W^T can be rebuilt in Float panels (the layer keeps Int8 or Float panels, in a multiple of 16).
    public var canTranspose: Bool { inFeatures % 16 == 0 && (quantPanels != nil || packed != nil) }

    /// Fills `wt` with W^T in Float panels for `inputGradient(…, transposed: wt, transposedIsFilled: true)`;
    /// false (and `wt` untouched) when the layer cannot be transposed.
    @discardableResult
    public func fillTransposed(_ wt: PackedWeight) -> Bool {
        guard canTranspose else { return false }
        if let qp = quantPanels { wt.fillTransposed(of: qp) } else { wt.fillTransposed(of: packed!) }
        return true
    }

    /// body(start, count, tile) for consecutive tiles of 256 weight rows, each dequantized into `tile`
    /// [count, in] (rows start ..< start + count of W).
    private func forEachDequantizedTile(_ q: QuantizedRows, _ body: (Int, Int, UnsafePointer<Float>) -> Void) {
        let n = inFeatures, out = outFeatures, tile = 256
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tile * n)
        defer { scratch.deallocate() }
        var start = 0
        while start < out {
            let count = min(tile, out - start), s0 = start
            parallelChunks(count, minPerChunk: 16) { r in
                for i in r { dequantizeRow(q.type, q.base + (s0 + i) * q.rowBytes, scratch + i * n, count: n) }
            }
            body(start, count, scratch)
            start += count
        }
    }

    private func withBias(_ b: [Float]?, _ body: (UnsafePointer<Float>?) -> Void) {
        if let b { b.withUnsafeBufferPointer { body($0.baseAddress!) } } else { body(nil) }
    }

    /// A few dozen rows: dequantize 16 weight rows into a cache-resident tile, multiply it with the
    /// streaming kernel, move on; the narrow blocks are all that crosses the memory bus.
    private func smallBatchFromBlocks(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, _ q: QuantizedRows) {
        // Tile rows sized so the tile (and a k-slice of x) stays in L1/L2: 16 rows at k = 576..640, 4 at 2048.
        let n = inFeatures, out = outFeatures, tile = max(4, min(16, 8192 / max(n, 1)))
        let bias = self.bias
        parallelChunks((out + tile - 1) / tile, minPerChunk: 4) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: tile * n) { scratch in
                let w = scratch.baseAddress!
                for t in range {
                    let start = t * tile, count = min(tile, out - start)
                    for i in 0..<count { dequantizeRow(q.type, q.base + (start + i) * q.rowBytes, w + i * n, count: n) }
                    if let bias {
                        bias.withUnsafeBufferPointer { SmallBatchGEMM.serial(y + start, ldy: out, x, w, bias: $0.baseAddress! + start, m: rows, n: count, k: n) }
                    } else {
                        SmallBatchGEMM.serial(y + start, ldy: out, x, w, bias: nil, m: rows, n: count, k: n)
                    }
                }
            }
        }
    }

    /// Many rows without a dense copy: dequantize a tile of weight rows, multiply it with BLAS, repeat.
    private func tiledForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, _ q: QuantizedRows) {
        let n = inFeatures, out = outFeatures
        forEachDequantizedTile(q) { start, count, tile in
            BLAS.gemm(transB: true, m: rows, n: count, k: n, a: x, lda: n, b: tile, ldb: n, c: y + start, ldc: out)
        }
        if let bias {
            for r in 0..<rows { Vec.add(y + r * out, bias, out) }
        }
    }
}
