// A small GGUF writer for tests: it can produce valid files and, by design, invalid ones (any count,
// type id, dimension or offset can be set to a hostile value), so each reader check gets its own file.

import Foundation

struct GGUFBuilder {
    enum Value {
        case u32(UInt32), i32(Int32), f32(Float), bool(Bool), string(String), u64(UInt64)
        case stringArray([String]), f32Array([Float]), i32Array([Int32])
        /// Any type id followed by raw value bytes.
        case raw(type: UInt32, bytes: [UInt8])
    }

    struct Tensor {
        var name: String
        var dims: [UInt64]
        var type: UInt32
        var offset: UInt64?  // nil: next aligned offset after the previous tensor
        var data: [UInt8]
    }

    var magic: [UInt8] = Array("GGUF".utf8)
    var version: UInt32 = 3
    var kvs: [(String, Value)] = []
    var tensors: [Tensor] = []
    var alignment = 32
    var tensorCountOverride: UInt64?
    var kvCountOverride: UInt64?

    private static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: v.littleEndian) { Array($0) }
    }

    private static func str(_ s: String) -> [UInt8] {
        le(UInt64(s.utf8.count)) + Array(s.utf8)
    }

    private static func value(_ v: Value) -> (UInt32, [UInt8]) {
        switch v {
        case let .u32(x): return (4, le(x))
        case let .i32(x): return (5, le(x))
        case let .f32(x): return (6, le(x.bitPattern))
        case let .bool(x): return (7, [x ? 1 : 0])
        case let .string(x): return (8, str(x))
        case let .u64(x): return (10, le(x))
        case let .stringArray(a): return (9, le(UInt32(8)) + le(UInt64(a.count)) + a.flatMap(str))
        case let .f32Array(a): return (9, le(UInt32(6)) + le(UInt64(a.count)) + a.flatMap { le($0.bitPattern) })
        case let .i32Array(a): return (9, le(UInt32(5)) + le(UInt64(a.count)) + a.flatMap { le($0) })
        case let .raw(type, bytes): return (type, bytes)
        }
    }

    func build() -> Data {
        var out = magic + Self.le(version)
        out += Self.le(tensorCountOverride ?? UInt64(tensors.count))
        out += Self.le(kvCountOverride ?? UInt64(kvs.count))
        for (k, v) in kvs {
            let (t, b) = Self.value(v)
            out += Self.str(k) + Self.le(t) + b
        }
        var next: UInt64 = 0
        var offsets: [UInt64] = []
        for t in tensors {
            let off = t.offset ?? next
            offsets.append(off)
            next = max(next, (off + UInt64(t.data.count) + UInt64(alignment) - 1) / UInt64(alignment) * UInt64(alignment))
            out += Self.str(t.name) + Self.le(UInt32(t.dims.count)) + t.dims.flatMap { Self.le($0) }
            out += Self.le(t.type) + Self.le(off)
        }
        while out.count % alignment != 0 { out.append(0) }
        let dataStart = out.count
        for (t, off) in zip(tensors, offsets) where off < 1 << 20 {  // hostile far offsets get no data
            let end = dataStart + Int(off) + t.data.count
            if out.count < end { out += [UInt8](repeating: 0, count: end - out.count) }
            out.replaceSubrange((dataStart + Int(off))..<end, with: t.data)
        }
        return Data(out)
    }

    /// A valid little file: metadata of several types and an F32 and a Q8_0 tensor.
    static func valid() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.kvs = [("general.architecture", .string("llama")), ("llama.block_count", .u32(2)),
                 ("tokenizer.ggml.tokens", .stringArray(["<s>", "a", "b"])), ("x.scores", .f32Array([0, -1, 2.5]))]
        let f: [Float] = (0..<8).map { Float($0) - 3.5 }
        var q8: [UInt8] = Self.le(UInt16(0x3C00))  // d = 1.0
        q8 += (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) }
        b.tensors = [Tensor(name: "a", dims: [4, 2], type: 0, offset: nil, data: f.flatMap { Self.le($0.bitPattern) }),
                     Tensor(name: "b", dims: [32, 1], type: 8, offset: nil, data: q8)]
        return b
    }
}
