// ggml rows taken apart into small integers with one scale and one offset per 16 elements, such that
// Float(q) * scale + offset reproduces dequantizeRow's value bit for bit (same operations, same order,
// no fused multiply-add). The engine re-lays these out so a GEMM kernel can rebuild weights in registers:
// the bytes that cross the memory bus stay near the file's size, and every batch size runs one kernel.

import Tensors

/// Types `decomposeRow` handles; the others are dequantized to Float instead.
public func canDecompose(_ type: GGMLType) -> Bool {
    switch type {
    case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q6_K: return true
    default: return false
    }
}

/// Splits `count` elements (whole blocks) into q[count] and scales/offsets[count / 16].
public func decomposeRow(_ type: GGMLType, _ src: UnsafeRawPointer, q: UnsafeMutablePointer<Int8>,
                         scales: UnsafeMutablePointer<Float>, offsets: UnsafeMutablePointer<Float>, count: Int) {
    precondition(canDecompose(type) && count % type.blockSize == 0)
    @inline(__always) func f16(_ p: UnsafeRawPointer, _ off: Int) -> Float {
        halfToFloat(p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
    }
    @inline(__always) func byte(_ p: UnsafeRawPointer, _ off: Int) -> UInt8 { p.load(fromByteOffset: off, as: UInt8.self) }
    /// Scale and offset of both 16-element groups of a 32-element block.
    @inline(__always) func set32(_ block: Int, _ s: Float, _ o: Float) {
        scales[2 * block] = s; scales[2 * block + 1] = s
        offsets[2 * block] = o; offsets[2 * block + 1] = o
    }
    let blocks = count / type.blockSize
    switch type {
    case .q4_0:
        for b in 0..<blocks {
            let x = src + b * 18, y = q + 32 * b
            set32(b, f16(x, 0), 0)
            for j in 0..<16 { let v = byte(x, 2 + j); y[j] = Int8(Int32(v & 0xF) - 8); y[j + 16] = Int8(Int32(v >> 4) - 8) }
        }
    case .q4_1:
        for b in 0..<blocks {
            let x = src + b * 20, y = q + 32 * b
            set32(b, f16(x, 0), f16(x, 2))
            for j in 0..<16 { let v = byte(x, 4 + j); y[j] = Int8(v & 0xF); y[j + 16] = Int8(v >> 4) }
        }
    case .q5_0, .q5_1:
        let size = type == .q5_0 ? 22 : 24, qhOff = type == .q5_0 ? 2 : 4
        for b in 0..<blocks {
            let x = src + b * size, y = q + 32 * b
            set32(b, f16(x, 0), type == .q5_0 ? 0 : f16(x, 2))
            let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: qhOff, as: UInt32.self))
            let bias: Int32 = type == .q5_0 ? 16 : 0
            for j in 0..<16 {
                let v = UInt32(byte(x, qhOff + 4 + j))
                let h0 = ((qh >> UInt32(j)) << 4) & 0x10, h1 = (qh >> UInt32(j + 12)) & 0x10
                y[j] = Int8(Int32((v & 0xF) | h0) - bias)
                y[j + 16] = Int8(Int32((v >> 4) | h1) - bias)
            }
        }
    case .q8_0:
        for b in 0..<blocks {
            let x = src + b * 34
            set32(b, f16(x, 0), 0)
            for j in 0..<32 { q[32 * b + j] = x.load(fromByteOffset: 2 + j, as: Int8.self) }
        }
    case .q4_K:
        // [d | dmin | scales 12 | qs 128]: chunk c covers elements 64c..64c+63, low nibbles first.
        for b in 0..<blocks {
            let x = src + b * 144, y = q + 256 * b
            let d = f16(x, 0), dmin = f16(x, 2)
            for c in 0..<4 {
                for (sub, shift) in [(2 * c, UInt8(0)), (2 * c + 1, UInt8(4))] {
                    let (sc, m) = scaleMinK4(sub, x + 4)
                    set32(8 * b + sub, d * sc, -(dmin * m))
                    for l in 0..<32 { y[64 * c + (shift == 0 ? 0 : 32) + l] = Int8((byte(x, 16 + 32 * c + l) >> shift) & 0xF) }
                }
            }
        }
    case .q6_K:
        // [ql 128 | qh 64 | scales int8 16 | d]: 16 elements per scale.
        for b in 0..<blocks {
            let x = src + b * 210, y = q + 256 * b
            let d = f16(x, 208)
            for n in 0..<2 {
                let ql = 64 * n, qh = 128 + 32 * n, sc = 192 + 8 * n
                for l in 0..<32 {
                    let l0 = byte(x, ql + l), l1 = byte(x, ql + l + 32), h = byte(x, qh + l)
                    y[128 * n + l] = Int8(Int32((l0 & 0xF) | ((h & 3) << 4)) - 32)
                    y[128 * n + l + 32] = Int8(Int32((l1 & 0xF) | (((h >> 2) & 3) << 4)) - 32)
                    y[128 * n + l + 64] = Int8(Int32((l0 >> 4) | (((h >> 4) & 3) << 4)) - 32)
                    y[128 * n + l + 96] = Int8(Int32((l1 >> 4) | (((h >> 6) & 3) << 4)) - 32)
                }
                // Elements 16g..16g+15 of this half use scale g (dequantizeRow's is + 2j, rewritten).
                for g in 0..<8 {
                    let s = Float(x.load(fromByteOffset: sc + g, as: Int8.self))
                    scales[16 * b + 8 * n + g] = d * s
                    offsets[16 * b + 8 * n + g] = 0
                }
            }
        }
    default:
        preconditionFailure("decomposeRow: \(type.name) is not supported")
    }
}
