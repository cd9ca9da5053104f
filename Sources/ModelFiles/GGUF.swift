// Reader for GGUF v2/v3 files (llama.cpp's model format): header, metadata key/values, tensor table,
// and access to each tensor's bytes in the memory-mapped file. The file is hostile: every count,
// length, dimension, type and offset is checked against the file size before it is trusted (the
// checks follow ggml's gguf.cpp), so a damaged or crafted file throws a `ModelFileError` naming the
// file and the key or tensor instead of crashing or allocating absurd amounts.

import Foundation

/// A metadata value. Unsigned GGUF integers become `.uint`, signed ones `.int`, f32/f64 `.float`.
public enum GGUFValue: Sendable, Equatable {
    case int(Int64), uint(UInt64), float(Double), bool(Bool), string(String), array([GGUFValue])
}

public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml `ne` order: dims[0] is the contiguous (fastest-varying) dimension.
    public let dims: [Int]
    public let type: GGMLType
    /// Absolute offset of the tensor's first byte in the file.
    public let offset: Int
    public let byteCount: Int

    public var elementCount: Int { dims.reduce(1, *) }
    public var rowLength: Int { dims.first ?? 1 }
    public var rowCount: Int { dims.dropFirst().reduce(1, *) }
    /// PyTorch order (slowest-varying first): an HF [out, in] weight has dims [in, out].
    public var shape: [Int] { dims.reversed() }
}

public final class GGUFFile: @unchecked Sendable {  // immutable after init; owns the read-only mapping
    public let url: URL
    public let version: UInt32
    public let alignment: Int
    public let metadata: [String: GGUFValue]
    /// In file order.
    public let tensors: [GGUFTensorInfo]
    /// Absolute offset of the data section (tensor offsets in the file are relative to it).
    public let dataOffset: Int

    private let data: Data
    private let index: [String: Int]

    public convenience init(url: URL) throws {
        try self.init(data: mapModelFile(url), url: url)
    }

    /// Parses bytes already in memory; `url` only names them in errors. Used by the fuzz tests.
    init(data: Data, url: URL) throws {
        self.url = url
        let file = url.path
        self.data = data
        let parsed = try data.withUnsafeBytes { raw in
            var parser = GGUFParser(raw, file: file)
            return try parser.parse()
        }
        version = parsed.version
        alignment = parsed.alignment
        metadata = parsed.metadata
        tensors = parsed.tensors
        dataOffset = parsed.dataOffset
        index = parsed.index
    }

    public func tensor(_ name: String) -> GGUFTensorInfo? {
        index[name].map { tensors[$0] }
    }

    /// The raw (possibly quantized) bytes of one tensor. The bytes live in the file's read-only mapping,
    /// which never moves while this `GGUFFile` is alive; code that keeps the pointer past `body` (as a
    /// weight view does) must keep the `GGUFFile` alive with it.
    public func withData<R>(_ t: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try data.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[t.offset..<(t.offset + t.byteCount)]))
        }
    }

    /// The whole tensor dequantized to Float, row-major in `shape` order.
    public func floats(_ name: String) throws -> [Float] {
        guard let t = tensor(name) else { throw ModelFileError.tensorNotFound(file: url.path, name: name) }
        guard t.type.canDequantize else {
            throw ModelFileError.unsupported(file: url.path, detail: "tensor '\(name)' has ggml type \(t.type.name), which this reader cannot dequantize; use a file quantized as F32/F16/BF16, Q4_0..Q8_0 or Q2_K..Q6_K")
        }
        let n = t.elementCount
        return [Float](unsafeUninitializedCapacity: n) { buf, count in
            withData(t) { src in
                if n > 0 { dequantizeRow(t.type, src.baseAddress!, buf.baseAddress!, count: n) }
            }
            count = n
        }
    }

    // MARK: typed metadata accessors (nil when absent or of another type)

    public func string(_ key: String) -> String? {
        if case let .string(s)? = metadata[key] { return s }
        return nil
    }

    public func int(_ key: String) -> Int? {
        switch metadata[key] {
        case let .int(v)?: return Int(exactly: v)
        case let .uint(v)?: return Int(exactly: v)
        default: return nil
        }
    }

    /// Floats, and integers too: converters are not consistent about e.g. `rope.freq_base`.
    public func double(_ key: String) -> Double? {
        switch metadata[key] {
        case let .float(v)?: return v
        case let .int(v)?: return Double(v)
        case let .uint(v)?: return Double(v)
        default: return nil
        }
    }

    public func bool(_ key: String) -> Bool? {
        if case let .bool(b)? = metadata[key] { return b }
        return nil
    }

    public func strings(_ key: String) -> [String]? {
        guard case let .array(a)? = metadata[key] else { return nil }
        var out = [String]()
        out.reserveCapacity(a.count)
        for v in a {
            guard case let .string(s) = v else { return nil }
            out.append(s)
        }
        return out
    }

    public func floats(metadata key: String) -> [Float]? {
        guard case let .array(a)? = metadata[key] else { return nil }
        var out = [Float]()
        out.reserveCapacity(a.count)
        for v in a {
            switch v {
            case let .float(x): out.append(Float(x))
            case let .int(x): out.append(Float(x))
            case let .uint(x): out.append(Float(x))
            default: return nil
            }
        }
        return out
    }

    public func ints(_ key: String) -> [Int]? {
        guard case let .array(a)? = metadata[key] else { return nil }
        var out = [Int]()
        out.reserveCapacity(a.count)
        for v in a {
            switch v {
            case let .int(x): guard let i = Int(exactly: x) else { return nil }; out.append(i)
            case let .uint(x): guard let i = Int(exactly: x) else { return nil }; out.append(i)
            default: return nil
            }
        }
        return out
    }
}

// MARK: - parsing

private struct GGUFParser {
    var r: ByteReader
    let file: String

    struct Result {
        var version: UInt32
        var alignment: Int
        var metadata: [String: GGUFValue]
        var tensors: [GGUFTensorInfo]
        var index: [String: Int]
        var dataOffset: Int
    }

    static let maxDims = 4
    static let maxArrayDepth = 4

    init(_ bytes: UnsafeRawBufferPointer, file: String) {
        r = ByteReader(bytes, file: file)
        self.file = file
    }

    func malformed(_ detail: String) -> ModelFileError { .malformed(file: file, detail: detail) }

    mutating func parse() throws -> Result {
        guard r.bytes.count >= 4 else { throw malformed("file is \(r.bytes.count) bytes, too short for a GGUF header") }
        let magic = try r.u32("magic")
        guard magic == 0x4655_4747 else {  // "GGUF" read little-endian
            throw malformed("bad magic \(String(format: "0x%08x", magic)) (expected \"GGUF\"); this is not a GGUF file")
        }
        let version = try r.u32("version")
        if version & 0xFFFF == 0 && version != 0 {
            throw ModelFileError.unsupported(file: file, detail: "GGUF version field \(version) looks byte-swapped: big-endian GGUF files are not supported")
        }
        guard version == 2 || version == 3 else {
            throw ModelFileError.unsupported(file: file, detail: "GGUF version \(version) (this reader handles versions 2 and 3); re-convert the model with a current llama.cpp")
        }
        let tensorCount = try r.u64("tensor count")
        let kvCount = try r.u64("metadata key/value count")
        // Each tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes,
        // each key/value at least 8 (key length) + 4 (type) + 1 (value) bytes.
        guard tensorCount <= UInt64(r.remaining / 24) else {
            throw malformed("header claims \(tensorCount) tensors, more than the \(r.remaining) remaining bytes can describe")
        }
        guard kvCount <= UInt64(r.remaining / 13) else {
            throw malformed("header claims \(kvCount) metadata entries, more than the \(r.remaining) remaining bytes can hold")
        }

        var metadata = [String: GGUFValue](minimumCapacity: Int(kvCount))
        for i in 0..<Int(kvCount) {
            let key = try r.ggufString("key of metadata entry \(i)")
            let type = try r.u32("type of metadata '\(key)'")
            let value = try readValue(type: type, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw malformed("duplicate metadata key '\(key)'")
            }
        }

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard case let .uint(v) = a, v > 0, v <= 1 << 30, v & (v - 1) == 0 else {
                throw malformed("metadata 'general.alignment' is \(a), expected a power of two")
            }
            alignment = Int(v)
        }

        var infos: [(name: String, dims: [Int], type: GGMLType, relOffset: UInt64, bytes: Int)] = []
        infos.reserveCapacity(Int(tensorCount))
        var index = [String: Int](minimumCapacity: Int(tensorCount))
        for i in 0..<Int(tensorCount) {
            let name = try r.ggufString("name of tensor \(i)")
            guard index.updateValue(i, forKey: name) == nil else {
                throw malformed("duplicate tensor name '\(name)'")
            }
            let nDims = try r.u32("dimension count of tensor '\(name)'")
            guard nDims <= UInt32(Self.maxDims) else {
                throw malformed("tensor '\(name)' has \(nDims) dimensions (at most \(Self.maxDims) allowed)")
            }
            var dims = [Int]()
            var elements = 1
            for d in 0..<Int(nDims) {
                let v = try r.u64("dimension \(d) of tensor '\(name)'")
                guard v > 0, v <= UInt64(Int.max) else {
                    throw malformed("tensor '\(name)' has dimension \(d) = \(Int64(bitPattern: v)), expected a positive size")
                }
                let (p, overflow) = elements.multipliedReportingOverflow(by: Int(v))
                guard !overflow else { throw malformed("tensor '\(name)' has dimensions whose product overflows") }
                elements = p
                dims.append(Int(v))
            }
            let rawType = try r.u32("ggml type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw ModelFileError.unsupported(file: file, detail: "tensor '\(name)' has unknown ggml type id \(rawType)")
            }
            let rowLength = dims.first ?? 1
            guard rowLength % type.blockSize == 0 else {
                throw malformed("tensor '\(name)' has rows of \(rowLength) elements, not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            let (bytes, overflow) = (elements / type.blockSize).multipliedReportingOverflow(by: type.typeSize)
            guard !overflow else { throw malformed("tensor '\(name)' byte size overflows") }
            let rel = try r.u64("data offset of tensor '\(name)'")
            guard rel % UInt64(alignment) == 0 else {
                throw malformed("tensor '\(name)' has data offset \(rel), not a multiple of the alignment \(alignment)")
            }
            infos.append((name, dims, type, rel, bytes))
        }

        // The data section starts at the next multiple of the alignment after the tensor table.
        let pad = (alignment - r.position % alignment) % alignment
        let dataOffset = r.position + pad
        let fileSize = r.bytes.count
        var tensors = [GGUFTensorInfo]()
        tensors.reserveCapacity(infos.count)
        for t in infos {
            let available = UInt64(max(0, fileSize - dataOffset))
            guard t.relOffset <= available, UInt64(t.bytes) <= available - t.relOffset else {
                throw malformed("tensor '\(t.name)' (\(t.bytes) bytes at data offset \(t.relOffset)) extends past the end of the file (\(available) data bytes)")
            }
            tensors.append(GGUFTensorInfo(name: t.name, dims: t.dims, type: t.type, offset: dataOffset + Int(t.relOffset), byteCount: t.bytes))
        }
        return Result(version: version, alignment: alignment, metadata: metadata, tensors: tensors, index: index, dataOffset: dataOffset)
    }

    /// Bytes of one element of a fixed-size GGUF value type, nil for string/array/unknown.
    static func fixedSize(_ type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 10, 11, 12: return 8
        default: return nil
        }
    }

    mutating func readValue(type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        let what = "value of metadata '\(key)'"
        switch type {
        case 0: return .uint(UInt64(try r.read(UInt8.self, what)))
        case 1: return .int(Int64(try r.read(Int8.self, what)))
        case 2: return .uint(UInt64(try r.read(UInt16.self, what)))
        case 3: return .int(Int64(try r.read(Int16.self, what)))
        case 4: return .uint(UInt64(try r.read(UInt32.self, what)))
        case 5: return .int(Int64(try r.read(Int32.self, what)))
        case 6: return .float(Double(Float(bitPattern: try r.read(UInt32.self, what))))
        case 7: return .bool(try r.read(UInt8.self, what) != 0)
        case 8: return .string(try r.ggufString(what))
        case 10: return .uint(try r.read(UInt64.self, what))
        case 11: return .int(try r.read(Int64.self, what))
        case 12: return .float(Double(bitPattern: try r.read(UInt64.self, what)))
        case 9:
            guard depth < Self.maxArrayDepth else { throw malformed("metadata '\(key)' nests arrays deeper than \(Self.maxArrayDepth)") }
            let elemType = try r.u32("element type of metadata array '\(key)'")
            let count = try r.u64("length of metadata array '\(key)'")
            // Smallest possible encoding of one element bounds the count by what the file can hold.
            let minSize: Int
            if let s = Self.fixedSize(elemType) { minSize = s }
            else if elemType == 8 { minSize = 8 }
            else if elemType == 9 { minSize = 12 }
            else { throw ModelFileError.unsupported(file: file, detail: "metadata array '\(key)' has unknown element type \(elemType)") }
            guard count <= UInt64(r.remaining / minSize) else {
                throw malformed("metadata array '\(key)' claims \(count) elements, more than the \(r.remaining) remaining bytes can hold")
            }
            let n = Int(count)
            if let s = Self.fixedSize(elemType) {
                let raw = try r.slice(n * s, "elements of metadata array '\(key)'")
                return .array(Self.decodeFixed(elemType, raw, count: n))
            }
            var out = [GGUFValue]()
            out.reserveCapacity(n)
            if elemType == 8 {
                for i in 0..<n { out.append(.string(try r.ggufString("element \(i) of metadata array '\(key)'"))) }
            } else {
                for _ in 0..<n { out.append(try readValue(type: 9, key: key, depth: depth + 1)) }
            }
            return .array(out)
        default:
            throw ModelFileError.unsupported(file: file, detail: "metadata '\(key)' has unknown value type \(type)")
        }
    }

    static func decodeFixed(_ type: UInt32, _ raw: UnsafeRawBufferPointer, count n: Int) -> [GGUFValue] {
        guard n > 0 else { return [] }
        let p = raw.baseAddress!
        func map<T: FixedWidthInteger>(_: T.Type, _ f: (T) -> GGUFValue) -> [GGUFValue] {
            (0..<n).map { f(T(littleEndian: p.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))) }
        }
        switch type {
        case 0: return map(UInt8.self) { .uint(UInt64($0)) }
        case 1: return map(Int8.self) { .int(Int64($0)) }
        case 2: return map(UInt16.self) { .uint(UInt64($0)) }
        case 3: return map(Int16.self) { .int(Int64($0)) }
        case 4: return map(UInt32.self) { .uint(UInt64($0)) }
        case 5: return map(Int32.self) { .int(Int64($0)) }
        case 6: return map(UInt32.self) { .float(Double(Float(bitPattern: $0))) }
        case 7: return map(UInt8.self) { .bool($0 != 0) }
        case 10: return map(UInt64.self) { .uint($0) }
        case 11: return map(Int64.self) { .int($0) }
        case 12: return map(UInt64.self) { .float(Double(bitPattern: $0)) }
        default: return []
        }
    }
}
