// Element types that appear in model files, and exact conversions between their bit patterns and Float.
// f16 goes through Swift's Float16 (IEEE binary16, round-to-nearest-even, subnormals kept); bf16 is the
// top half of a Float32, rounded to nearest even on the way down as PyTorch does.

public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64", i32 = "I32", i16 = "I16",
         i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

@inlinable @inline(__always) public func halfToFloat(_ bits: UInt16) -> Float {
    Float(Float16(bitPattern: bits))
}

@inlinable @inline(__always) public func floatToHalf(_ x: Float) -> UInt16 {
    Float16(x).bitPattern
}

@inlinable @inline(__always) public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

@inlinable @inline(__always) public func floatToBF16(_ x: Float) -> UInt16 {
    let b = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: (b >> 16) | 0x40) }
    let rounding: UInt32 = 0x7FFF + ((b >> 16) & 1)
    return UInt16(truncatingIfNeeded: (b &+ rounding) >> 16)
}

/// Converts `count` elements of `type` at `src` (unaligned, little-endian) to Float at `dst`.
public func convertToFloat(_ type: DType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    switch type {
    case .f32:
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    case .f16:
        for i in 0..<count { dst[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .bf16:
        for i in 0..<count { dst[i] = bf16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .f64:
        for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
    case .i64:
        for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
    case .i32:
        for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
    case .i16:
        for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
    case .i8:
        for i in 0..<count { dst[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
    case .u8, .bool:
        for i in 0..<count { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
    }
}

// Lane-wise integer-to-float conversions. The stdlib's generic SIMD conversion initialisers compile to
// out-of-line calls here (about 3 cycles per element in the dequantization loops); written as a lane
// loop, LLVM turns these into one vpmovzxbd/vpmovsxbd + vcvtdq2ps per 8 lanes. Exact for every input.
@inlinable @inline(__always) public func simdFloat(_ q: SIMD16<UInt8>) -> SIMD16<Float> {
    var r = SIMD16<Float>()
    for i in 0..<16 { r[i] = Float(q[i]) }
    return r
}

@inlinable @inline(__always) public func simdFloat(_ q: SIMD16<Int8>) -> SIMD16<Float> {
    var r = SIMD16<Float>()
    for i in 0..<16 { r[i] = Float(q[i]) }
    return r
}
