// Safetensors files (Hugging Face's weight format): memory-mapped reading of one file, sharded
// checkpoints behind model.safetensors.index.json, and an atomic writer whose output is byte-identical
// to the Python library's. Headers are hostile input: the length, JSON, dtypes, shapes and offsets are
// all checked before any tensor byte is touched, and every error names the file and the tensor.

import Foundation
import Tensors

public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    /// PyTorch order.
    public let shape: [Int]
    /// Absolute offset of the first byte in the file.
    public let dataOffset: Int
    public let byteCount: Int

    public var elementCount: Int { shape.reduce(1, *) }
}

public final class SafetensorsFile: @unchecked Sendable {  // immutable after init; owns the read-only mapping
    /// Headers larger than this are refused (the Python library's limit is 100 MB too).
    public static let maxHeaderSize = 100_000_000

    public let url: URL
    public let metadata: [String: String]
    public let tensors: [String: SafetensorsTensorInfo]
    /// Tensor names in header order.
    public let names: [String]
    private let data: Data

    public convenience init(url: URL) throws {
        try self.init(data: mapModelFile(url), url: url)
    }

    /// Parses bytes already in memory; `url` only names them in errors. Used by the fuzz tests.
    init(data: Data, url: URL) throws {
        self.url = url
        self.data = data
        let file = url.path
        func bad(_ d: String) -> ModelFileError { .malformed(file: file, detail: d) }
        guard data.count >= 8 else { throw bad("file is \(data.count) bytes, too short for a safetensors header") }
        let n = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(Self.maxHeaderSize) else {
            throw bad("header length \(n) exceeds the \(Self.maxHeaderSize)-byte limit")
        }
        guard n <= UInt64(data.count - 8) else {
            throw bad("header length \(n) runs past the end of the \(data.count)-byte file")
        }
        let headerEnd = 8 + Int(n)
        let json: JSONValue
        do {
            json = try data.withUnsafeBytes { raw in try StrictJSONParser.parse(UnsafeRawBufferPointer(rebasing: raw[8..<headerEnd])) }
        } catch let e as StrictJSONParser.Failure {
            throw bad("header is not valid JSON (\(e.message))")
        }
        guard let members = json.objectValue else { throw bad("header is not a JSON object") }

        let dataSize = data.count - headerEnd
        var metadata: [String: String] = [:]
        var tensors: [String: SafetensorsTensorInfo] = [:]
        var names: [String] = []
        var ranges: [(Int, Int, String)] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard let m = value.objectValue else { throw bad("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw bad("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let fields = value.objectValue else { throw bad("entry for tensor '\(name)' is not an object") }
            let f = Dictionary(fields, uniquingKeysWith: { a, _ in a })
            guard let dtypeName = f["dtype"]?.stringValue else { throw bad("tensor '\(name)' has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw ModelFileError.unsupported(file: file, detail: "tensor '\(name)' has dtype \(dtypeName) (supported: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let dims = f["shape"]?.arrayValue else { throw bad("tensor '\(name)' has no shape") }
            var shape: [Int] = []
            var count = 1
            for d in dims {
                guard let v = d.intValue, v >= 0 else { throw bad("tensor '\(name)' has a shape entry that is not a non-negative integer") }
                let (p, o) = count.multipliedReportingOverflow(by: v)
                guard !o else { throw bad("tensor '\(name)' has a shape whose product overflows") }
                count = p
                shape.append(v)
            }
            guard let offs = f["data_offsets"]?.arrayValue, offs.count == 2,
                  let begin = offs[0].intValue, let end = offs[1].intValue else {
                throw bad("tensor '\(name)' has no [begin, end] data_offsets")
            }
            guard begin >= 0, begin <= end else { throw bad("tensor '\(name)' has data_offsets [\(begin), \(end)] with begin > end") }
            guard end <= dataSize else {
                throw bad("tensor '\(name)' ends at data byte \(end), past the \(dataSize) data bytes in the file")
            }
            let (bytes, o) = count.multipliedReportingOverflow(by: dtype.size)
            guard !o, bytes == end - begin else {
                throw bad("tensor '\(name)' has \(end - begin) bytes but shape \(shape) of \(dtypeName) needs \(o ? "too many" : String(bytes))")
            }
            tensors[name] = SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataOffset: headerEnd + begin, byteCount: bytes)
            names.append(name)
            ranges.append((begin, end, name))
        }
        // As the reference library requires: tensors tile the data section, no overlap and no gaps.
        ranges.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        var covered = 0
        for (begin, end, name) in ranges {
            guard begin == covered else {
                throw bad(begin < covered ? "tensor '\(name)' overlaps the tensor before it" : "gap before tensor '\(name)' in the data section")
            }
            covered = end
        }
        guard covered == dataSize else { throw bad("\(dataSize - covered) bytes after the last tensor belong to no tensor") }
        self.metadata = metadata
        self.tensors = tensors
        self.names = names
    }

    func info(_ name: String) throws -> SafetensorsTensorInfo {
        guard let t = tensors[name] else { throw ModelFileError.tensorNotFound(file: url.path, name: name) }
        return t
    }

    /// The tensor's raw little-endian bytes, valid only inside `body`.
    public func withData<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let t = try info(name)
        return try data.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[t.dataOffset..<(t.dataOffset + t.byteCount)]))
        }
    }

    /// The tensor converted to Float, row-major in `shape` order.
    public func floats(_ name: String) throws -> [Float] {
        let t = try info(name)
        let n = t.elementCount
        return try [Float](unsafeUninitializedCapacity: n) { buf, count in
            try withData(name) { src in
                if n > 0 { convertToFloat(t.dtype, src.baseAddress!, buf.baseAddress!, count: n) }
            }
            count = n
        }
    }
}

// MARK: - sharded checkpoints

/// The safetensors weights of a model directory: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json`, seen as one set of tensors.
public final class SafetensorsCheckpoint: @unchecked Sendable {  // immutable after init; shares the shard mappings
    public let directory: URL
    public let files: [SafetensorsFile]
    /// `__metadata__` of the single file, or the index's "metadata" (string values only).
    public let metadata: [String: String]
    private let owner: [String: Int]
    /// Tensor names: file order for one file, sorted for shards.
    public let names: [String]

    /// `url` is a model directory or a single .safetensors / index .json file.
    public init(url: URL) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ModelFileError.unreadable(file: url.path, reason: "no such file or directory")
        }
        var index: URL?
        var single: URL?
        if isDir.boolValue {
            directory = url
            let idx = url.appendingPathComponent("model.safetensors.index.json")
            let one = url.appendingPathComponent("model.safetensors")
            if FileManager.default.fileExists(atPath: idx.path) { index = idx }
            else if FileManager.default.fileExists(atPath: one.path) { single = one }
            else {
                let all = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
                guard all.count == 1 else {
                    throw ModelFileError.unreadable(file: url.path, reason: all.isEmpty
                        ? "the directory has no model.safetensors, model.safetensors.index.json or other .safetensors file"
                        : "the directory has several .safetensors files (\(all.joined(separator: ", "))) and no model.safetensors.index.json saying which belong to the model")
                }
                single = url.appendingPathComponent(all[0])
            }
        } else {
            directory = url.deletingLastPathComponent()
            if url.pathExtension == "json" { index = url } else { single = url }
        }

        if let single {
            let f = try SafetensorsFile(url: single)
            files = [f]
            metadata = f.metadata
            names = f.names
            owner = Dictionary(uniqueKeysWithValues: f.names.map { ($0, 0) })
            return
        }
        let indexURL = index!
        let (shards, owner, meta) = try loadShards(index: indexURL, directory: directory, open: SafetensorsFile.init(url:),
                                                   names: \.names, url: \.url)
        metadata = meta
        files = shards
        self.owner = owner
        names = owner.keys.sorted()
    }

    private func file(for name: String) throws -> SafetensorsFile {
        guard let i = owner[name] else { throw ModelFileError.tensorNotFound(file: directory.path, name: name) }
        return files[i]
    }

    public func info(_ name: String) -> SafetensorsTensorInfo? {
        owner[name].flatMap { files[$0].tensors[name] }
    }

    public func withData<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try file(for: name).withData(name, body)
    }

    public func floats(_ name: String) throws -> [Float] {
        try file(for: name).floats(name)
    }
}

// MARK: - writing

/// Writes a safetensors file atomically (temporary file, then rename) with the byte layout of the
/// Python library: tensors ordered by dtype (its enum order, descending) then name, compact JSON
/// header padded with spaces to a multiple of 8, `__metadata__` first (omitted when empty).
public func writeSafetensors(to url: URL, tensors: [(name: String, dtype: DType, shape: [Int], data: Data)],
                             metadata: [String: String]) throws {
    let file = url.path
    var seen = Set<String>()
    for t in tensors {
        guard seen.insert(t.name).inserted else {
            throw ModelFileError.malformed(file: file, detail: "cannot write tensor '\(t.name)' twice")
        }
        guard t.name != "__metadata__" else { throw ModelFileError.malformed(file: file, detail: "'__metadata__' is reserved") }
        let expected = t.shape.reduce(1, *) * t.dtype.size
        guard t.shape.allSatisfy({ $0 >= 0 }), t.data.count == expected else {
            throw ModelFileError.malformed(file: file, detail: "tensor '\(t.name)' has \(t.data.count) bytes of data, shape \(t.shape) of \(t.dtype.rawValue) needs \(expected)")
        }
    }
    let ordered = tensors.sorted { a, b in
        let ra = safetensorsDTypeRank(a.dtype), rb = safetensorsDTypeRank(b.dtype)
        return ra != rb ? ra > rb : a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
    }
    var header = "{"
    var parts: [String] = []
    if !metadata.isEmpty {
        let m = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            .map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }
        parts.append("\"__metadata__\":{\(m.joined(separator: ","))}")
    }
    var offset = 0
    for t in ordered {
        let shape = t.shape.map(String.init).joined(separator: ",")
        parts.append("\(jsonQuoted(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.data.count)]}")
        offset += t.data.count
    }
    header += parts.joined(separator: ",") + "}"
    var headerBytes = Array(header.utf8)
    while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }

    var out = Data(capacity: 8 + headerBytes.count + offset)
    withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: headerBytes)
    for t in ordered { out.append(t.data) }
    do {
        try out.write(to: url, options: .atomic)
    } catch {
        throw ModelFileError.unreadable(file: file, reason: "cannot write: \(error.localizedDescription)")
    }
}

/// Position in the safetensors library's Dtype enum (BOOL < U8 < I8 < I16 < F16 < BF16 < I32 < F32 < F64 < I64).
private func safetensorsDTypeRank(_ d: DType) -> Int {
    switch d {
    case .bool: return 0
    case .u8: return 1
    case .i8: return 2
    case .i16: return 3
    case .f16: return 4
    case .bf16: return 5
    case .i32: return 6
    case .f32: return 7
    case .f64: return 8
    case .i64: return 9
    }
}
