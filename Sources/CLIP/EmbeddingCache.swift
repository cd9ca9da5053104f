// A persistent cache of image embeddings on disk, so a training run that scores the same images thousands
// of times (and the next run) embeds each image once. An entry is keyed by the model's identity, the
// preprocessing, and the SHA-256 of the image file's bytes, so renaming a file keeps its entry and editing
// it does not. Each entry is one small file written to a temporary name and renamed into place, so an
// interrupted write never leaves a half entry under a real name; every entry carries its key and a
// checksum, and one that does not read back cleanly is treated as absent and recomputed.
import Foundation
import ModelFiles

public struct ImageEmbeddingCache: Sendable {
    public let directory: URL
    /// Hex digest of (model identity, preprocessing): the subdirectory this model's entries live in.
    public let namespace: String

    private static let magic: [UInt8] = Array("EX2EMB1\n".utf8)

    /// `modelIdentity` should change whenever the weights or architecture change (CLIPModel.identity);
    /// `preprocessing` whenever the image pipeline changes.
    public init(directory: URL, modelIdentity: String, preprocessing: String) {
        self.directory = directory
        var h = SHA256()
        h.update(modelIdentity); h.update([0]); h.update(preprocessing)
        namespace = h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The key of an image file's bytes.
    public static func contentKey(_ data: Data) -> String { SHA256.hex(data) }

    private func url(for key: String) -> URL {
        directory.appendingPathComponent(namespace).appendingPathComponent(String(key.prefix(2)))
            .appendingPathComponent(key + ".emb")
    }

    /// The stored embedding, or nil when absent or unreadable (a damaged entry is as good as none).
    public func lookup(_ key: String) -> [Float]? {
        guard let data = try? Data(contentsOf: url(for: key)) else { return nil }
        let bytes = [UInt8](data)
        let keyBytes = Array(key.utf8)
        let head = Self.magic.count + 4 + keyBytes.count + 4
        guard bytes.count >= head + 32, Array(bytes[0..<Self.magic.count]) == Self.magic else { return nil }
        var o = Self.magic.count
        let keyLen = Int(readU32(bytes, o)); o += 4
        guard keyLen == keyBytes.count, Array(bytes[o..<(o + keyLen)]) == keyBytes else { return nil }
        o += keyLen
        let count = Int(readU32(bytes, o)); o += 4
        guard bytes.count == o + 4 * count + 32 else { return nil }
        guard Array(SHA256.digest(bytes[0..<(o + 4 * count)])) == Array(bytes[(o + 4 * count)...]) else { return nil }
        var out = [Float](repeating: 0, count: count)
        for i in 0..<count { out[i] = Float(bitPattern: readU32(bytes, o + 4 * i)) }
        return out
    }

    /// Writes atomically: temp file in the same directory, then rename over the final name.
    public func store(_ key: String, _ embedding: [Float]) throws {
        let final = url(for: key)
        let dir = final.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            var bytes = Self.magic
            let keyBytes = Array(key.utf8)
            appendU32(&bytes, UInt32(keyBytes.count)); bytes += keyBytes
            appendU32(&bytes, UInt32(embedding.count))
            for v in embedding { appendU32(&bytes, v.bitPattern) }
            bytes += SHA256.digest(bytes[...])
            let tmp = dir.appendingPathComponent(".\(key).\(ProcessInfo.processInfo.processIdentifier).\(UInt64.random(in: 0...UInt64.max)).tmp")
            try Data(bytes).write(to: tmp)
            if rename(tmp.path, final.path) != 0 {
                let err = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: tmp)
                throw CLIPError.cacheFailure(path: final.path, detail: "cannot rename \(tmp.lastPathComponent) into place: \(err)")
            }
        } catch let e as CLIPError {
            throw e
        } catch {
            throw CLIPError.cacheFailure(path: final.path, detail: "cannot write the entry: \(error.localizedDescription)")
        }
    }
}

private func readU32(_ b: [UInt8], _ o: Int) -> UInt32 {
    UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
}

private func appendU32(_ b: inout [UInt8], _ v: UInt32) {
    b.append(UInt8(v & 0xff)); b.append(UInt8(v >> 8 & 0xff)); b.append(UInt8(v >> 16 & 0xff)); b.append(UInt8(v >> 24))
}
