// PyTorch checkpoints as torch.save writes them (pytorch_model.bin, open_clip_pytorch_model.bin,
// adapter_model.bin): a zip archive of one pickle (data.pkl) describing the state dict and one record per
// storage (data/0, data/1, ...). The pickle goes through RestrictedUnpickler, which runs nothing; tensors
// stay views into the memory-mapped archive (several may share one storage, at offsets and with any
// strides) and are gathered into row-major order only when read. Sharded checkpoints behind
// pytorch_model.bin.index.json read as one set of tensors, as safetensors ones do.

import Foundation
import Tensors

public final class TorchCheckpointFile: @unchecked Sendable {  // immutable after init; owns the mapping
    struct Tensor {
        let dtype: DType
        let shape: [Int]
        let stride: [Int]
        /// Element offset into the storage record.
        let offset: Int
        /// Absolute byte range of the storage record in the file.
        let recordOffset: Int
        let recordBytes: Int
    }

    public let url: URL
    /// Tensor names in the order the state dict holds them.
    public let names: [String]
    let tensors: [String: Tensor]
    private let data: Data

    public convenience init(url: URL) throws {
        try self.init(data: mapModelFile(url), url: url)
    }

    /// Parses bytes already in memory; `url` only names them in errors. Used by the fuzz tests.
    init(data: Data, url: URL) throws {
        self.url = url
        self.data = data
        let file = url.path
        var names: [String] = []
        var tensors: [String: Tensor] = [:]
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            guard ZipArchive.isZip(bytes) else {
                if bytes.count >= 2, bytes[0] == 0x80, bytes[1] <= 5 {
                    throw ModelFileError.unsupported(file: file, detail: "this is PyTorch's legacy (pre-1.6, non-zip) torch.save pickle format, which is not read; re-save it from Python with torch.save(torch.load(path, weights_only=True), path) or, better, as safetensors")
                }
                if bytes.count > 262, bytes[257..<262].elementsEqual(Array("ustar".utf8)) {
                    throw ModelFileError.unsupported(file: file, detail: "this is PyTorch's tar-based torch.save format (before 0.4), which is not read; re-save it as safetensors")
                }
                throw ModelFileError.malformed(file: file, detail: "not a torch.save zip archive (no zip signature at the start)")
            }
            let archive = try ZipArchive(bytes, file: file)
            let pickles = archive.entries.filter { $0.name.hasSuffix("/data.pkl") && $0.name.dropLast("/data.pkl".count).firstIndex(of: "/") == nil }
            guard pickles.count == 1, let pkl = pickles.first else {
                throw ModelFileError.malformed(file: file, detail: pickles.isEmpty
                    ? "the zip archive has no ARCHIVE/data.pkl record, so it is not a torch.save checkpoint"
                    : "the zip archive has several data.pkl records (\(pickles.map(\.name).joined(separator: ", ")))")
            }
            let prefix = String(pkl.name.dropLast("data.pkl".count))
            if let bo = archive.entry(prefix + "byteorder") {
                let order = try archive.read(bo, in: bytes, limit: 64) { String(decoding: $0, as: UTF8.self) }
                guard order == "little" else {
                    throw ModelFileError.unsupported(file: file, detail: "the checkpoint was written with \(order)-endian byte order")
                }
            }
            var unpickler = RestrictedUnpickler(file: file)
            let root = try archive.read(pkl, in: bytes, limit: 1 << 30) { try unpickler.load($0) }
            guard case .dict(var dict) = root else {
                throw ModelFileError.unsupported(file: file, detail: "the pickle holds a \(root.kind), not a state dict (a dict of tensors)")
            }
            // Training checkpoints wrap the weights: {"state_dict": {...}, "epoch": ...} (open_clip, Lightning).
            if !dict.items.contains(where: { if case .tensor = $0.value { return true } else { return false } }),
               let inner = dict.items.first(where: { if case .string("state_dict") = $0.key { return true } else { return false } }),
               case .dict(let d) = inner.value {
                dict = d
            }
            for (k, v) in dict.items {
                guard case .string(let name) = k else {
                    throw ModelFileError.malformed(file: file, detail: "the state dict has a \(k.kind) key; tensor names are strings")
                }
                guard case .tensor(let t) = v else { continue }   // e.g. a version number beside the weights
                guard tensors[name] == nil else { throw ModelFileError.malformed(file: file, detail: "tensor '\(name)' appears twice") }
                let recordName = prefix + "data/" + t.storage.key
                guard let rec = archive.entry(recordName) else {
                    throw ModelFileError.malformed(file: file, detail: "tensor '\(name)': storage record \(recordName) is missing from the archive")
                }
                guard rec.method == 0 else {
                    throw ModelFileError.unsupported(file: file, detail: "tensor '\(name)': storage record \(recordName) is compressed; torch.save stores them uncompressed")
                }
                let storageDType = t.storage.dtype ?? .u8
                let (storageBytes, o1) = t.storage.numel.multipliedReportingOverflow(by: storageDType.size)
                guard !o1, storageBytes <= rec.size else {
                    throw ModelFileError.malformed(file: file, detail: "tensor '\(name)': storage \(t.storage.key) claims \(t.storage.numel) elements but its record holds \(rec.size) bytes")
                }
                // The element count must not overflow, and a view repeating elements (stride 0) may not
                // claim more than 4 GiB; the last element the view touches must lie inside the record.
                var numel = 1, overflow = false, empty = false
                for n in t.shape {
                    let (m, o) = numel.multipliedReportingOverflow(by: n)
                    overflow = overflow || o
                    numel = m
                }
                let (byteCount, o0) = numel.multipliedReportingOverflow(by: t.dtype.size)
                let cap = t.stride.contains(0) ? 1 << 32 : rec.size
                guard !overflow, !o0, byteCount <= cap else {
                    throw ModelFileError.malformed(file: file, detail: "tensor '\(name)' (shape \(t.shape), stride \(t.stride)) claims more elements than its \(rec.size)-byte storage record can give")
                }
                var last = t.offset
                for (n, s) in zip(t.shape, t.stride) {
                    if n == 0 { empty = true; break }
                    let (m, o2) = (n - 1).multipliedReportingOverflow(by: s)
                    let (sum, o3) = last.addingReportingOverflow(m)
                    overflow = overflow || o2 || o3
                    last = sum
                }
                let (past, o5) = last.addingReportingOverflow(1)
                let (end, o4) = past.multipliedReportingOverflow(by: t.dtype.size)
                guard empty || (!overflow && !o4 && !o5 && end <= rec.size) else {
                    throw ModelFileError.malformed(file: file, detail: "tensor '\(name)' (shape \(t.shape), stride \(t.stride), offset \(t.offset)) reaches past the end of its \(rec.size)-byte storage record")
                }
                names.append(name)
                tensors[name] = Tensor(dtype: t.dtype, shape: t.shape, stride: t.stride, offset: t.offset,
                                       recordOffset: rec.dataOffset, recordBytes: rec.size)
            }
        }
        // DataParallel training checkpoints prefix every name with "module." (open_clip strips it too).
        if !names.isEmpty, names.allSatisfy({ $0.hasPrefix("module.") }) {
            names = names.map { String($0.dropFirst("module.".count)) }
            tensors = Dictionary(uniqueKeysWithValues: tensors.map { (String($0.key.dropFirst("module.".count)), $0.value) })
        }
        self.names = names
        self.tensors = tensors
    }

    /// Whether `url` starts like a torch.save file (a zip archive, or the legacy pickle), not safetensors.
    public static func looksLikeTorchSave(_ url: URL) -> Bool {
        guard let h = FileHandle(forReadingAtPath: url.path) else { return false }
        defer { try? h.close() }
        let b = [UInt8]((try? h.read(upToCount: 4)) ?? Data())
        return b == [0x50, 0x4B, 0x03, 0x04] || (b.count >= 2 && b[0] == 0x80 && b[1] <= 5)
    }

    public func dtype(of name: String) -> DType? { tensors[name]?.dtype }

    /// The tensor's elements in row-major order of its shape, in its own dtype (a view is gathered).
    public func contiguousBytes(_ name: String) throws -> [UInt8] {
        try withContiguousBytes(name) { Array($0) }
    }

    /// The tensor's bytes in row-major order, valid only inside `body`: the mapped storage itself when the
    /// view is laid out that way already, else a gathered copy.
    func withContiguousBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let t = tensors[name] else { throw ModelFileError.tensorNotFound(file: url.path, name: name) }
        let es = t.dtype.size
        let count = t.shape.reduce(1, *)   // checked against overflow and the record when the file was opened
        guard count > 0 else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + t.recordOffset
            let rank = t.shape.count
            // Row-major strides of the shape: a view already laid out that way needs no copy.
            var contiguous = true, expect = 1
            for d in stride(from: rank - 1, through: 0, by: -1) where t.shape[d] != 1 {
                if t.stride[d] != expect { contiguous = false }
                expect *= t.shape[d]
            }
            if contiguous { return try body(UnsafeRawBufferPointer(start: base + t.offset * es, count: count * es)) }
            var out = [UInt8](repeating: 0, count: count * es)
            out.withUnsafeMutableBytes { dst in
                var index = [Int](repeating: 0, count: rank)
                var src = t.offset
                for i in 0..<count {
                    (dst.baseAddress! + i * es).copyMemory(from: base + src * es, byteCount: es)
                    var d = rank - 1
                    while d >= 0 {
                        index[d] += 1
                        src += t.stride[d]
                        if index[d] < t.shape[d] { break }
                        src -= t.stride[d] * t.shape[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
            return try out.withUnsafeBytes(body)
        }
    }

    public func floats(_ name: String) throws -> [Float] {
        guard let t = tensors[name] else { throw ModelFileError.tensorNotFound(file: url.path, name: name) }
        let n = t.shape.reduce(1, *)
        return try withContiguousBytes(name) { src in
            [Float](unsafeUninitializedCapacity: n) { buf, count in
                if n > 0 { convertToFloat(t.dtype, src.baseAddress!, buf.baseAddress!, count: n) }
                count = n
            }
        }
    }
}

/// The PyTorch weights of a model directory: one .bin file, or the shards listed by an index
/// (pytorch_model.bin.index.json, adapter_model.bin...), seen as one set of tensors.
public final class TorchCheckpoint: @unchecked Sendable {
    public let directory: URL
    public let files: [TorchCheckpointFile]
    private let owner: [String: Int]
    public let names: [String]

    /// `url` is a .bin file, a .bin.index.json file, or a directory holding pytorch_model.bin(.index.json).
    public init(url: URL) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ModelFileError.unreadable(file: url.path, reason: "no such file or directory")
        }
        var target = url
        if isDir.boolValue {
            directory = url
            let idx = url.appendingPathComponent("pytorch_model.bin.index.json")
            target = fm.fileExists(atPath: idx.path) ? idx : url.appendingPathComponent("pytorch_model.bin")
            guard fm.fileExists(atPath: target.path) else {
                throw ModelFileError.unreadable(file: url.path, reason: "the directory has no pytorch_model.bin or pytorch_model.bin.index.json")
            }
        } else {
            directory = url.deletingLastPathComponent()
        }
        guard target.pathExtension == "json" else {
            let f = try TorchCheckpointFile(url: target)
            files = [f]
            names = f.names
            owner = Dictionary(f.names.map { ($0, 0) }, uniquingKeysWith: { a, _ in a })
            return
        }
        let (shards, owner, _) = try loadShards(index: target, directory: directory, open: TorchCheckpointFile.init(url:),
                                             names: \.names, url: \.url)
        files = shards
        self.owner = owner
        names = owner.keys.sorted()
    }

    public func dtype(of name: String) -> DType? { owner[name].flatMap { files[$0].dtype(of: name) } }

    public func floats(_ name: String) throws -> [Float] {
        guard let i = owner[name] else { throw ModelFileError.tensorNotFound(file: directory.path, name: name) }
        return try files[i].floats(name)
    }

    public func shape(of name: String) -> [Int]? { owner[name].flatMap { files[$0].tensors[name]?.shape } }
}

/// A sharded checkpoint's index: its "weight_map" (tensor name -> shard file name in the same directory)
/// and the string values of its "metadata".
func readIndex(_ indexURL: URL) throws -> (weightMap: [(String, String)], metadata: [String: String]) {
    let file = indexURL.path
    let raw: Data
    do { raw = try Data(contentsOf: indexURL) } catch {
        throw ModelFileError.unreadable(file: file, reason: error.localizedDescription)
    }
    let json: JSONValue
    do { json = try raw.withUnsafeBytes { try StrictJSONParser.parse($0) } } catch let e as StrictJSONParser.Failure {
        throw ModelFileError.malformed(file: file, detail: "not valid JSON (\(e.message))")
    }
    let top = Dictionary(json.objectValue ?? [], uniquingKeysWith: { a, _ in a })
    guard let map = top["weight_map"]?.objectValue else {
        throw ModelFileError.malformed(file: file, detail: "no \"weight_map\" object")
    }
    let weightMap = try map.map { name, v in
        guard let shard = v.stringValue, !shard.contains("/"), !shard.hasPrefix(".") else {
            throw ModelFileError.malformed(file: file, detail: "weight_map entry for '\(name)' is not a file name in the same directory")
        }
        return (name, shard)
    }
    var meta: [String: String] = [:]
    for (k, v) in top["metadata"]?.objectValue ?? [] { if let s = v.stringValue { meta[k] = s } }
    return (weightMap, meta)
}

/// The shards an index names, opened once each, and which shard holds each tensor. A shard the index names
/// but the directory lacks, a tensor the index puts in a shard that does not hold it, and a tensor stored in
/// two shards (the result would depend on which one is read) are errors naming the files.
func loadShards<F>(index indexURL: URL, directory: URL, open: (URL) throws -> F, names: (F) -> [String],
                   url: (F) -> URL) throws -> (files: [F], owner: [String: Int], metadata: [String: String]) {
    let file = indexURL.path
    var shardIndex: [String: Int] = [:]
    var shards: [F] = []
    var shardNames: [Set<String>] = []
    var owner: [String: Int] = [:]
    let index = try readIndex(indexURL)
    for (name, shard) in index.weightMap {
        let i: Int
        if let k = shardIndex[shard] { i = k } else {
            let shardURL = directory.appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: shardURL.path) else {
                throw ModelFileError.unreadable(file: shardURL.path, reason: "shard listed in \(indexURL.lastPathComponent) (for '\(name)') is missing; download the complete checkpoint")
            }
            let f = try open(shardURL)
            shards.append(f)
            shardNames.append(Set(names(f)))
            i = shards.count - 1
            shardIndex[shard] = i
        }
        guard shardNames[i].contains(name) else {
            throw ModelFileError.malformed(file: file, detail: "weight_map puts '\(name)' in \(shard), which has no such tensor")
        }
        owner[name] = i
    }
    var seen: [String: Int] = [:]
    for (i, s) in shards.enumerated() {
        for n in names(s) {
            if let j = seen[n] {
                throw ModelFileError.malformed(file: file, detail: "tensor '\(n)' is stored in both \(url(shards[j]).lastPathComponent) and \(url(s).lastPathComponent)")
            }
            seen[n] = i
        }
    }
    return (shards, owner, index.metadata)
}

extension TorchCheckpointFile: WeightSource {
    public var tensorNames: [String] { names }
    public func shape(of name: String) -> [Int]? { tensors[name]?.shape }
}

extension TorchCheckpoint: WeightSource {
    public var tensorNames: [String] { names }
}

/// The weights of a model directory in the format the reference prefers: safetensors (model.safetensors,
/// its index, or a single other .safetensors file) when present, else PyTorch's pytorch_model.bin (or
/// its index). `files` are the weight files read, for identities and messages.
public enum ModelWeights {
    public static func open(directory dir: URL) throws -> (source: any WeightSource, files: [URL]) {
        let fm = FileManager.default
        let entries = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
        if entries.contains(where: { $0.hasSuffix(".safetensors") || $0 == "model.safetensors.index.json" }) {
            let c = try SafetensorsCheckpoint(url: dir)
            return (c, c.files.map(\.url))
        }
        if entries.contains("pytorch_model.bin") || entries.contains("pytorch_model.bin.index.json") {
            let c = try TorchCheckpoint(url: dir)
            return (c, c.files.map(\.url))
        }
        throw ModelFileError.unreadable(file: dir.path, reason: "the directory has no weights: no model.safetensors (or its index, or another .safetensors file) and no pytorch_model.bin (or pytorch_model.bin.index.json)")
    }
}
