// The zip container torch.save has written since PyTorch 1.6: stored (uncompressed) members, often ZIP64,
// each one's data aligned inside the file so it can be memory-mapped. Only what a reader of such files needs:
// the central directory, ZIP64 sizes and offsets, stored and deflated members. Every count, size and offset
// comes from the file, so each is checked against the file's length before it is used.

import Foundation

struct ZipArchive {
    struct Entry {
        let name: String
        /// 0 stored, 8 deflated.
        let method: UInt16
        let compressedSize: Int
        let size: Int
        /// Absolute offset of the member's (compressed) bytes.
        let dataOffset: Int
    }

    let file: String
    let entries: [Entry]
    let byName: [String: Int]

    static func isZip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes.loadUnaligned(as: UInt32.self) == UInt32(0x0403_4b50).littleEndian
    }

    init(_ bytes: UnsafeRawBufferPointer, file: String) throws {
        self.file = file
        func bad(_ d: String) -> ModelFileError { .malformed(file: file, detail: "zip container: \(d)") }
        let n = bytes.count
        guard n >= 22 else { throw bad("\(n) bytes is too short for a zip file") }
        // The end-of-central-directory record sits in the last 22 + 65535 bytes (its comment may be that long).
        var eocd = -1
        var i = n - 22
        let lowest = max(0, n - 22 - 65535)
        while i >= lowest {
            if bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self) == UInt32(0x0605_4b50).littleEndian { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw bad("no end-of-central-directory record (the file is truncated or not a zip file)") }
        var r = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[eocd...]), file: file)
        try r.skip(4, "end of central directory")
        let disk = try r.read(UInt16.self, "disk number"), cdDisk = try r.read(UInt16.self, "central directory disk")
        _ = try r.read(UInt16.self, "entries on disk")
        var count = Int(try r.read(UInt16.self, "entry count"))
        var cdSize = Int(try r.u32("central directory size"))
        var cdOffset = Int(try r.u32("central directory offset"))
        guard disk == 0, cdDisk == 0 || cdDisk == 0xFFFF else { throw bad("multi-disk archives are not supported") }
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // ZIP64: a locator right before the record points at the ZIP64 end-of-central-directory record.
            guard eocd >= 20, bytes.loadUnaligned(fromByteOffset: eocd - 20, as: UInt32.self) == UInt32(0x0706_4b50).littleEndian else {
                throw bad("ZIP64 sizes without a ZIP64 locator")
            }
            var l = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[(eocd - 20)...]), file: file)
            try l.skip(8, "ZIP64 locator")
            let at = try l.u64("ZIP64 record offset")
            guard n >= 56, at <= UInt64(n - 56) else { throw bad("ZIP64 record offset \(at) is outside the \(n)-byte file") }
            var z = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[Int(at)...]), file: file)
            guard try z.u32("ZIP64 record") == 0x0606_4b50 else { throw bad("no ZIP64 end-of-central-directory record at \(at)") }
            try z.skip(8 + 2 + 2 + 4 + 4 + 8, "ZIP64 record")
            let c = try z.u64("ZIP64 entry count"), s = try z.u64("ZIP64 directory size"), o = try z.u64("ZIP64 directory offset")
            guard c <= UInt64(n), s <= UInt64(n), o <= UInt64(n) else { throw bad("ZIP64 record has impossible sizes") }
            count = Int(c); cdSize = Int(s); cdOffset = Int(o)
        }
        guard cdOffset <= n, cdSize <= n - cdOffset else {
            throw bad("central directory (\(cdSize) bytes at \(cdOffset)) runs past the end of the \(n)-byte file")
        }
        guard count <= cdSize / 46 else { throw bad("\(count) entries cannot fit in a \(cdSize)-byte central directory") }
        var c = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[cdOffset..<(cdOffset + cdSize)]), file: file)
        var entries: [Entry] = []
        var byName: [String: Int] = [:]
        entries.reserveCapacity(count)
        for k in 0..<count {
            guard try c.u32("central directory entry \(k)") == 0x0201_4b50 else { throw bad("central directory entry \(k) has a bad signature") }
            try c.skip(4, "entry \(k)")
            let flags = try c.read(UInt16.self, "entry \(k) flags")
            let method = try c.read(UInt16.self, "entry \(k) method")
            try c.skip(8, "entry \(k)")
            var compressed = UInt64(try c.u32("entry \(k) compressed size"))
            var size = UInt64(try c.u32("entry \(k) size"))
            let nameLen = Int(try c.read(UInt16.self, "entry \(k) name length"))
            let extraLen = Int(try c.read(UInt16.self, "entry \(k) extra length"))
            let commentLen = Int(try c.read(UInt16.self, "entry \(k) comment length"))
            try c.skip(8, "entry \(k)")
            var local = UInt64(try c.u32("entry \(k) local header offset"))
            let nameBytes = try c.slice(nameLen, "entry \(k) name")
            guard let name = String(validating: nameBytes, as: UTF8.self) else { throw bad("entry \(k) has a name that is not UTF-8") }
            var extra = ByteReader(try c.slice(extraLen, "entry \(k) extra field"), file: file)
            try c.skip(commentLen, "entry \(k) comment")
            while extra.remaining >= 4 {
                let id = try extra.read(UInt16.self, "extra field id"), len = Int(try extra.read(UInt16.self, "extra field length"))
                var field = ByteReader(try extra.slice(len, "extra field of \(name)"), file: file)
                guard id == 0x0001 else { continue }
                // ZIP64 extended information: only the fields whose 32-bit values are saturated, in this order.
                if size == 0xFFFF_FFFF { size = try field.u64("ZIP64 size of \(name)") }
                if compressed == 0xFFFF_FFFF { compressed = try field.u64("ZIP64 compressed size of \(name)") }
                if local == 0xFFFF_FFFF { local = try field.u64("ZIP64 offset of \(name)") }
            }
            guard flags & 1 == 0 else { throw ModelFileError.unsupported(file: file, detail: "zip member \(name) is encrypted") }
            guard method == 0 || method == 8 else {
                throw ModelFileError.unsupported(file: file, detail: "zip member \(name) uses compression method \(method) (only stored and deflate are read)")
            }
            guard local <= UInt64(n - 30), compressed <= UInt64(n), size <= UInt64(n) * 1032 else {
                throw bad("member \(name) has an offset or size outside the \(n)-byte file")
            }
            let lh = Int(local)
            guard bytes.loadUnaligned(fromByteOffset: lh, as: UInt32.self) == UInt32(0x0403_4b50).littleEndian else {
                throw bad("member \(name): no local header at offset \(lh)")
            }
            let localName = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: lh + 26, as: UInt16.self)))
            let localExtra = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: lh + 28, as: UInt16.self)))
            let start = lh + 30 + localName + localExtra
            guard start <= n, Int(compressed) <= n - start else {
                throw bad("member \(name) (\(compressed) bytes at \(start)) runs past the end of the \(n)-byte file")
            }
            guard method != 0 || compressed == size else { throw bad("stored member \(name) has different stored and real sizes") }
            guard byName[name] == nil else { throw bad("member \(name) appears twice") }
            byName[name] = entries.count
            entries.append(Entry(name: name, method: method, compressedSize: Int(compressed), size: Int(size), dataOffset: start))
        }
        self.entries = entries
        self.byName = byName
    }

    func entry(_ name: String) -> Entry? { byName[name].map { entries[$0] } }

    /// A member's bytes: stored members as a view into `bytes`, deflated ones inflated (at most `limit` bytes).
    func read<R>(_ e: Entry, in bytes: UnsafeRawBufferPointer, limit: Int = 1 << 31,
                 _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[e.dataOffset..<(e.dataOffset + e.compressedSize)])
        if e.method == 0 { return try body(raw) }
        guard e.size <= limit else {
            throw ModelFileError.unsupported(file: file, detail: "compressed zip member \(e.name) is \(e.size) bytes, over the \(limit)-byte limit")
        }
        let out: [UInt8]
        do { out = try Inflate.inflateRaw(Array(raw), limit: e.size) } catch {
            throw ModelFileError.malformed(file: file, detail: "zip member \(e.name) does not inflate: \(error)")
        }
        guard out.count == e.size else {
            throw ModelFileError.malformed(file: file, detail: "zip member \(e.name) inflates to \(out.count) bytes, the directory says \(e.size)")
        }
        return try out.withUnsafeBytes(body)
    }
}
