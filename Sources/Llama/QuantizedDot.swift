// Dot products of Float activations with weight rows still in their ggml blocks, for the formats the
// bundled models use most (Q4_1, Q8_0). Decoding one token is bound by reading weights, so reading the
// narrow blocks and expanding them in registers beats expanding rows to memory first. Each weight is
// formed exactly as dequantizeRow forms it for Q4_1 (q*d, then + m, no fused multiply-add); Q8_0 factors
// its scale out of each block. Results differ from the dequantize-then-dot path only by rounding order.
import ModelFiles
import Tensors

enum QuantizedDot {
    /// True when `dot` has a fused kernel for this type.
    static func supports(_ t: GGMLType) -> Bool { t == .q4_1 || t == .q8_0 }

    @inline(__always)
    static func dot(_ t: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        switch t {
        case .q4_1: return dotQ4_1(row, x, n)
        case .q8_0: return dotQ8_0(row, x, n)
        default: preconditionFailure("no fused dot for \(t.name)")
        }
    }

    // The stdlib's SIMD integer-to-float conversions are generic calls that are not inlined (measured:
    // ~3 cycles per weight). Plain element loops into a 32-float tile are vectorised by LLVM instead
    // (vpmovzxbd + vcvtdq2ps), and the tile stays in L1 for the SIMD dot that follows. Measured single-thread
    // (ex2-bench kernels): Q4_1 as a tile 8.0 Gweights/s vs factored as below 5.6; Q8_0 factored 10.7
    // vs as a tile 7.3; dequantizeRow + dot 2.8-3.4 (6.4 once the helpers were made inlinable).
    @inline(__always)
    static func dotQ4_1(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { tile in
            let w = tile.baseAddress!
            for b in 0..<(n / 32) {
                let blk = row + b * 20
                let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
                let m = halfToFloat(blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                let qs = (blk + 4).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    w[j] = Float(qs[j] & 0xF) * d + m
                    w[j + 16] = Float(qs[j] >> 4) * d + m
                }
                let xb = x + b * 32
                acc0.addProduct(load8f(w), load8f(xb))
                acc1.addProduct(load8f(w + 8), load8f(xb + 8))
                acc0.addProduct(load8f(w + 16), load8f(xb + 16))
                acc1.addProduct(load8f(w + 24), load8f(xb + 24))
            }
            return (acc0 + acc1).sum()
        }
    }

    // Σ_j x_j (q_j d + m) = d Σ_j q_j x_j + m Σ_j x_j: the block sums of x are shared by every row, and
    // the per-block products accumulate in a vector scaled by d, so no horizontal sum happens per block.
    @inline(__always)
    static func dotQ8_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { tile in
            let w = tile.baseAddress!
            for b in 0..<(n / 32) {
                let blk = row + b * 34
                let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
                let qs = (blk + 2).assumingMemoryBound(to: Int8.self)
                for j in 0..<32 { w[j] = Float(qs[j]) }
                let xb = x + b * 32
                var p = load8f(w) * load8f(xb)
                p.addProduct(load8f(w + 8), load8f(xb + 8))
                p.addProduct(load8f(w + 16), load8f(xb + 16))
                p.addProduct(load8f(w + 24), load8f(xb + 24))
                acc.addProduct(SIMD8<Float>(repeating: d), p)
            }
            return acc.sum()
        }
    }
}

@inline(__always) private func load8f(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
@inline(__always) private func load8f(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

public enum QuantizedDotBenchmark {
    /// Benchmark hook: 0 = the fused kernel, otherwise dequantize the row, then dot.
    public static func _benchmarkVariant(_ v: Int, _ t: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        switch v {
        case 0: return QuantizedDot.dot(t, row, x, n)
        default:
            return withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { w in
                dequantizeRow(t, row, w.baseAddress!, count: n)
                return Vec.dot(x, w.baseAddress!, n)
            }
        }
    }
}
