// Dequantization of ggml block formats to Float, one row (a whole number of blocks) at a time. The
// engine calls this inside matmuls on weight rows, so the common formats (Q4_K, Q6_K, Q4_1, Q8_0) have
// SIMD paths. Arithmetic follows ggml's reference order (scale products first, no fused multiply-add),
// which is also what gguf-py's numpy code computes, so results match it bit for bit.

import Tensors

@inline(__always) private func f16(_ p: UnsafeRawPointer, _ off: Int) -> Float {
    halfToFloat(p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
}

/// Dequantizes `count` elements (a multiple of `type.blockSize`) starting at `src` into `dst`.
/// Precondition: `type.canDequantize`.
public func dequantizeRow(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    precondition(count % type.blockSize == 0, "dequantizeRow: \(count) elements is not a whole number of \(type.name) blocks")
    let blocks = count / type.blockSize
    switch type {
    case .f32: convertToFloat(.f32, src, dst, count: count)
    case .f16: convertToFloat(.f16, src, dst, count: count)
    case .bf16: convertToFloat(.bf16, src, dst, count: count)
    case .f64: convertToFloat(.f64, src, dst, count: count)
    case .i8: convertToFloat(.i8, src, dst, count: count)
    case .i16: convertToFloat(.i16, src, dst, count: count)
    case .i32: convertToFloat(.i32, src, dst, count: count)
    case .i64: convertToFloat(.i64, src, dst, count: count)
    case .q4_0: for b in 0..<blocks { dequantQ4_0(src + b * 18, dst + b * 32) }
    case .q4_1: for b in 0..<blocks { dequantQ4_1(src + b * 20, dst + b * 32) }
    case .q5_0: for b in 0..<blocks { dequantQ5_0(src + b * 22, dst + b * 32) }
    case .q5_1: for b in 0..<blocks { dequantQ5_1(src + b * 24, dst + b * 32) }
    case .q8_0: for b in 0..<blocks { dequantQ8_0(src + b * 34, dst + b * 32) }
    case .q2_K: for b in 0..<blocks { dequantQ2_K(src + b * 84, dst + b * 256) }
    case .q3_K: for b in 0..<blocks { dequantQ3_K(src + b * 110, dst + b * 256) }
    case .q4_K: for b in 0..<blocks { dequantQ4_K(src + b * 144, dst + b * 256) }
    case .q5_K: for b in 0..<blocks { dequantQ5_K(src + b * 176, dst + b * 256) }
    case .q6_K: for b in 0..<blocks { dequantQ6_K(src + b * 210, dst + b * 256) }
    default: preconditionFailure("dequantizeRow: ggml type \(type.name) is not supported; check canDequantize first")
    }
}

// MARK: 32-element blocks

// [d f16 | qs 16]: low nibbles are elements 0..15, high nibbles 16..31, offset by 8.
@inline(__always) private func dequantQ4_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0)
    let qs = x + 2
    for j in 0..<16 {
        let q = qs.load(fromByteOffset: j, as: UInt8.self)
        y[j] = Float(Int32(q & 0xF) - 8) * d
        y[j + 16] = Float(Int32(q >> 4) - 8) * d
    }
}

// [d f16 | m f16 | qs 16]: unsigned nibbles, y = q d + m.
@inline(__always) private func dequantQ4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0), m = f16(x, 2)
    let q = x.loadUnaligned(fromByteOffset: 4, as: SIMD16<UInt8>.self)
    let lo = simdFloat(q & 0xF)
    let hi = simdFloat(q &>> 4)
    let vd = SIMD16<Float>(repeating: d), vm = SIMD16<Float>(repeating: m)
    UnsafeMutableRawPointer(y).storeBytes(of: lo * vd + vm, as: SIMD16<Float>.self)
    UnsafeMutableRawPointer(y + 16).storeBytes(of: hi * vd + vm, as: SIMD16<Float>.self)
}

// [d f16 | qh u32 | qs 16]: bit j of qh is the fifth bit of element j; values offset by 16.
@inline(__always) private func dequantQ5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0)
    let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
    let qs = x + 6
    for j in 0..<16 {
        let q = UInt32(qs.load(fromByteOffset: j, as: UInt8.self))
        let h0 = ((qh >> UInt32(j)) << 4) & 0x10
        let h1 = (qh >> UInt32(j + 12)) & 0x10
        y[j] = Float(Int32((q & 0xF) | h0) - 16) * d
        y[j + 16] = Float(Int32((q >> 4) | h1) - 16) * d
    }
}

// [d f16 | m f16 | qh u32 | qs 16]: as Q5_0 without the offset, plus m.
@inline(__always) private func dequantQ5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0), m = f16(x, 2)
    let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
    let qs = x + 8
    for j in 0..<16 {
        let q = UInt32(qs.load(fromByteOffset: j, as: UInt8.self))
        let h0 = ((qh >> UInt32(j)) << 4) & 0x10
        let h1 = (qh >> UInt32(j + 12)) & 0x10
        y[j] = Float((q & 0xF) | h0) * d + m
        y[j + 16] = Float((q >> 4) | h1) * d + m
    }
}

// [d f16 | int8 qs 32]
@inline(__always) private func dequantQ8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let vd = SIMD16<Float>(repeating: f16(x, 0))
    let out = UnsafeMutableRawPointer(y)
    for h in 0..<2 {
        let q = x.loadUnaligned(fromByteOffset: 2 + 16 * h, as: SIMD16<Int8>.self)
        out.storeBytes(of: simdFloat(q) * vd,
                       toByteOffset: 64 * h, as: SIMD16<Float>.self)
    }
}

// MARK: 256-element super-blocks

// Eight 6-bit (scale, min) pairs packed in 12 bytes, shared by Q4_K and Q5_K.
@inline(__always) func scaleMinK4(_ j: Int, _ s: UnsafeRawPointer) -> (Float, Float) {
    @inline(__always) func b(_ i: Int) -> UInt8 { s.load(fromByteOffset: i, as: UInt8.self) }
    if j < 4 {
        return (Float(b(j) & 63), Float(b(j + 4) & 63))
    }
    return (Float((b(j + 4) & 0xF) | ((b(j - 4) >> 6) << 4)), Float((b(j + 4) >> 4) | ((b(j) >> 6) << 4)))
}

// [scales 16 | qs 64 | d f16 | dmin f16]: 2-bit values, a 4-bit scale and 4-bit min per 16 elements.
@inline(__always) private func dequantQ2_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let sc = x, d = f16(x, 80), dmin = f16(x, 82)
    var q = x + 16
    var out = y
    var i = 0
    for _ in 0..<2 {
        var shift: UInt8 = 0
        for _ in 0..<4 {
            for half in 0..<2 {
                let s = sc.load(fromByteOffset: i, as: UInt8.self)
                i += 1
                let dl = d * Float(s & 0xF), ml = dmin * Float(s >> 4)
                for l in 0..<16 {
                    out[l] = dl * Float((q.load(fromByteOffset: l + 16 * half, as: UInt8.self) >> shift) & 3) - ml
                }
                out += 16
            }
            shift += 2
        }
        q += 32
    }
}

// [hmask 32 | qs 64 | scales 12 | d f16]: 2 low bits + 1 high bit (set = no -4), sixteen 6-bit scales.
@inline(__always) private func dequantQ3_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let hm = x, d = f16(x, 108)
    let a0 = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 96, as: UInt32.self))
    let a1 = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 100, as: UInt32.self))
    let t = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 104, as: UInt32.self))
    let k1: UInt32 = 0x0303_0303, k2: UInt32 = 0x0F0F_0F0F
    let words = SIMD4<UInt32>(
        (a0 & k2) | ((t & k1) << 4),
        (a1 & k2) | (((t >> 2) & k1) << 4),
        ((a0 >> 4) & k2) | (((t >> 4) & k1) << 4),
        ((a1 >> 4) & k2) | (((t >> 6) & k1) << 4))
    @inline(__always) func scale(_ i: Int) -> Int32 {
        Int32(UInt8(truncatingIfNeeded: words[i / 4] >> (8 * UInt32(i % 4)))) - 32
    }
    var q = x + 32
    var out = y
    var m: UInt8 = 1
    var i = 0
    for _ in 0..<2 {
        var shift: UInt8 = 0
        for _ in 0..<4 {
            for half in 0..<2 {
                let dl = d * Float(scale(i))
                i += 1
                for l in 0..<16 {
                    let k = l + 16 * half
                    let low = Int32((q.load(fromByteOffset: k, as: UInt8.self) >> shift) & 3)
                    let high: Int32 = hm.load(fromByteOffset: k, as: UInt8.self) & m != 0 ? 0 : 4
                    out[l] = dl * Float(low - high)
                }
                out += 16
            }
            shift += 2
            m <<= 1
        }
        q += 32
    }
}

// [d f16 | dmin f16 | scales 12 | qs 128]: four chunks of 32 bytes, low nibbles then high nibbles.
@inline(__always) private func dequantQ4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0), dmin = f16(x, 2)
    let sc = x + 4
    let out = UnsafeMutableRawPointer(y)
    for c in 0..<4 {
        let (s1, m1) = scaleMinK4(2 * c, sc)
        let (s2, m2) = scaleMinK4(2 * c + 1, sc)
        let d1 = SIMD16<Float>(repeating: d * s1), mm1 = SIMD16<Float>(repeating: dmin * m1)
        let d2 = SIMD16<Float>(repeating: d * s2), mm2 = SIMD16<Float>(repeating: dmin * m2)
        for h in 0..<2 {
            let q = x.loadUnaligned(fromByteOffset: 16 + 32 * c + 16 * h, as: SIMD16<UInt8>.self)
            let lo = simdFloat(q & 0xF)
            let hi = simdFloat(q &>> 4)
            out.storeBytes(of: d1 * lo - mm1, toByteOffset: 4 * (64 * c + 16 * h), as: SIMD16<Float>.self)
            out.storeBytes(of: d2 * hi - mm2, toByteOffset: 4 * (64 * c + 32 + 16 * h), as: SIMD16<Float>.self)
        }
    }
}

// [d f16 | dmin f16 | scales 12 | qh 32 | qs 128]: Q4_K plus a fifth bit per element from qh.
@inline(__always) private func dequantQ5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0), dmin = f16(x, 2)
    let sc = x + 4, qh = x + 16
    var ql = x + 48
    var out = y
    var u1: UInt8 = 1, u2: UInt8 = 2
    for c in 0..<4 {
        let (s1, m1) = scaleMinK4(2 * c, sc)
        let (s2, m2) = scaleMinK4(2 * c + 1, sc)
        let d1 = d * s1, mm1 = dmin * m1, d2 = d * s2, mm2 = dmin * m2
        for l in 0..<32 {
            let q = ql.load(fromByteOffset: l, as: UInt8.self), h = qh.load(fromByteOffset: l, as: UInt8.self)
            out[l] = d1 * Float((q & 0xF) + (h & u1 != 0 ? 16 : 0)) - mm1
            out[l + 32] = d2 * Float((q >> 4) + (h & u2 != 0 ? 16 : 0)) - mm2
        }
        ql += 32
        out += 64
        u1 <<= 2
        u2 <<= 2
    }
}

// [ql 128 | qh 64 | int8 scales 16 | d f16]: 6-bit values offset by 32, one scale per 16 elements.
@inline(__always) private func dequantQ6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 208)
    let out = UnsafeMutableRawPointer(y)
    for n in 0..<2 {
        let ql = x + 64 * n, qh = x + 128 + 32 * n, sc = x + 192 + 8 * n
        for half in 0..<2 {  // l in 0..<16 and 16..<32: one scale index each
            let o = 16 * half
            let l0 = ql.loadUnaligned(fromByteOffset: o, as: SIMD16<UInt8>.self)
            let l1 = ql.loadUnaligned(fromByteOffset: o + 32, as: SIMD16<UInt8>.self)
            let h = qh.loadUnaligned(fromByteOffset: o, as: SIMD16<UInt8>.self)
            let q1 = (l0 & 0xF) | ((h & 3) &<< 4)
            let q2 = (l1 & 0xF) | (((h &>> 2) & 3) &<< 4)
            let q3 = (l0 &>> 4) | (((h &>> 4) & 3) &<< 4)
            let q4 = (l1 &>> 4) | (((h &>> 6) & 3) &<< 4)
            @inline(__always) func put(_ q: SIMD16<UInt8>, _ k: Int) {
                let s = Float(sc.load(fromByteOffset: half + 2 * k, as: Int8.self))
                let v = (simdFloat(q) - 32)
                out.storeBytes(of: SIMD16<Float>(repeating: d * s) * v,
                               toByteOffset: 4 * (128 * n + 32 * k + o), as: SIMD16<Float>.self)
            }
            put(q1, 0)
            put(q2, 1)
            put(q3, 2)
            put(q4, 3)
        }
    }
}
