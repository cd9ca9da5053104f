// A linear layer y = x W^T (+ b) whose weight W [out, in] is held as dense Float rows, as ggml blocks
// (straight from a mapped GGUF file), or both. Few rows (decoding one token per sequence) read the
// narrow quantized rows, which is what bounds speed there; many rows (prefill, big batches) go through
// BLAS on dense rows, dequantizing on the fly in tiles when dense rows are not kept (large models).
import Foundation
import ModelFiles
import Tensors

/// Raw ggml rows that stay in their file encoding. `owner` keeps the mapping (or a copied buffer) alive.
public struct QuantizedRows: @unchecked Sendable {  // reason: read-only pointer into memory `owner` keeps alive
    public let type: GGMLType
    public let base: UnsafeRawPointer
    public let rowBytes: Int
    let owner: AnyObject
}

public final class Linear: @unchecked Sendable {  // reason: weights are immutable after loading
    public let outFeatures: Int
    public let inFeatures: Int
    /// Dense weight [out, in], when kept.
    public private(set) var dense: UnsafeMutableBufferPointer<Float>?
    public let quantized: QuantizedRows?
    public let bias: [Float]?

    /// Batches with at least this many rows use dense BLAS; fewer read quantized rows when present.
    public static let denseRowThreshold = 4
    /// Up to this many rows, our streaming kernel beats OpenBLAS (which packs all of W per call).
    public static let smallBatchRows = 64
    /// Small batches read the ggml blocks (dequantized 16 rows at a time into L1) instead of dense rows.
    nonisolated(unsafe) public static var smallBatchFromBlocks = ProcessInfo.processInfo.environment["EX2_SMALL_BATCH_DENSE"] == nil

    public init(dense: [Float], out: Int, in inFeatures: Int, bias: [Float]? = nil) {
        precondition(dense.count == out * inFeatures)
        outFeatures = out; self.inFeatures = inFeatures
        let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: dense.count)
        _ = buf.initialize(from: dense)
        self.dense = buf
        quantized = nil
        self.bias = bias
    }

    public init(quantized: QuantizedRows, out: Int, in inFeatures: Int, keepDense: Bool, bias: [Float]? = nil) {
        outFeatures = out; self.inFeatures = inFeatures
        self.quantized = quantized
        self.bias = bias
        if keepDense { materializeDense() }
    }

    deinit { dense?.deallocate() }

    /// Dequantizes every row once into a dense copy (for fast BLAS on large batches).
    public func materializeDense() {
        guard dense == nil, let q = quantized else { return }
        let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: outFeatures * inFeatures)
        let base = buf.baseAddress!, n = inFeatures
        parallelChunks(outFeatures, minPerChunk: 64) { rows in
            for r in rows { dequantizeRow(q.type, q.base + r * q.rowBytes, base + r * n, count: n) }
        }
        dense = buf
    }

    /// Writes row `r` of W (length `inFeatures`) to `dst`: the embedding lookup of tied embeddings.
    @inline(__always)
    public func row(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        if let d = dense {
            dst.update(from: d.baseAddress! + r * inFeatures, count: inFeatures)
        } else if let q = quantized {
            dequantizeRow(q.type, q.base + r * q.rowBytes, dst, count: inFeatures)
        }
    }

    /// y[rows, out] = x[rows, in] W^T + b
    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int) {
        guard rows > 0 else { return }
        if rows >= Linear.denseRowThreshold && rows <= Linear.smallBatchRows && inFeatures % 8 == 0 {
            if let q = quantized, Linear.smallBatchFromBlocks {
                smallBatchFromBlocks(y, x, rows: rows, q)
                return
            }
            if let d = dense {
                withBias(bias) { SmallBatchGEMM.linear(y, x, d.baseAddress!, bias: $0, m: rows, n: outFeatures, k: inFeatures) }
                return
            }
        }
        if let d = dense, rows >= Linear.denseRowThreshold || quantized == nil {
            withBias(bias) { BLAS.linear(y, x, d.baseAddress!, bias: $0, m: rows, n: outFeatures, k: inFeatures) }
        } else if let q = quantized, rows < Linear.denseRowThreshold {
            quantizedRowsForward(y, x, rows: rows, q)
        } else if let q = quantized {
            tiledForward(y, x, rows: rows, q)
        }
    }

    private func withBias(_ b: [Float]?, _ body: (UnsafePointer<Float>?) -> Void) {
        if let b { b.withUnsafeBufferPointer { body($0.baseAddress!) } } else { body(nil) }
    }

    /// Few rows: each output feature's weight row is decoded once into cache-resident scratch and dotted
    /// with every input row.
    private func quantizedRowsForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, _ q: QuantizedRows) {
        let n = inFeatures, out = outFeatures
        let bias = self.bias
        if QuantizedDot.supports(q.type) {
            parallelChunks(out, minPerChunk: 32) { range in
                for o in range {
                    let w = q.base + o * q.rowBytes
                    let b = bias?[o] ?? 0
                    for r in 0..<rows { y[r * out + o] = QuantizedDot.dot(q.type, w, x + r * n, n) + b }
                }
            }
            return
        }
        parallelChunks(out, minPerChunk: 32) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { scratch in
                let w = scratch.baseAddress!
                for o in range {
                    dequantizeRow(q.type, q.base + o * q.rowBytes, w, count: n)
                    let b = bias?[o] ?? 0
                    for r in 0..<rows { y[r * out + o] = Vec.dot(x + r * n, w, n) + b }
                }
            }
        }
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
        let n = inFeatures, out = outFeatures, tile = 256
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tile * n)
        defer { scratch.deallocate() }
        var start = 0
        while start < out {
            let count = min(tile, out - start)
            parallelChunks(count, minPerChunk: 16) { r in
                for i in r { dequantizeRow(q.type, q.base + (start + i) * q.rowBytes, scratch + i * n, count: n) }
            }
            BLAS.gemm(transB: true, m: rows, n: count, k: n, a: x, lda: n, b: scratch, ldb: n, c: y + start, ldc: out)
            start += count
        }
        if let bias {
            for r in 0..<rows { Vec.add(y + r * out, bias, out) }
        }
    }
}
