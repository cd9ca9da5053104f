// The gzip container (RFC 1952) around the DEFLATE decoder, so open_clip's bpe_simple_vocab_16e6.txt.gz
// (and any other .gz a checkpoint ships) can be read as it is downloaded. Every header field gzip writers
// use is understood (extra field, file name, comment, header CRC); each member's CRC-32 and length are
// checked, and members written one after another decompress to their concatenation, as gunzip and
// Python's gzip module do. Anything else after a member is an error rather than silently ignored data.

public enum Gzip {
    /// True when `bytes` starts with the gzip magic number.
    public static func isGzip<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var it = bytes.makeIterator()
        return it.next() == 0x1f && it.next() == 0x8b
    }

    /// The concatenated contents of every member of a gzip file; `limit` bounds the total output.
    public static func decompress(_ bytes: [UInt8], limit: Int = 1 << 30) throws -> [UInt8] {
        guard isGzip(bytes) else { throw InflateError.badGzip("the first two bytes are not 1f 8b") }
        var out: [UInt8] = []
        var at = 0
        var member = 0
        while at < bytes.count {
            let dataStart = try headerEnd(bytes, from: at, member: member)
            var reader = BitReader(bytes: bytes, start: dataStart)
            let part = try Inflate.inflate(&reader, limit: limit - out.count)
            let end = reader.alignedByteOffset
            guard end + 8 <= bytes.count else { throw InflateError.truncated("gzip member \(member) trailer") }
            let storedCRC = le32(bytes, end), storedSize = le32(bytes, end + 4)
            let crc = crc32(part)
            guard crc == storedCRC else { throw InflateError.gzipMismatch(what: "member \(member) CRC-32", stored: storedCRC, computed: crc) }
            let size = UInt32(truncatingIfNeeded: part.count)
            guard size == storedSize else { throw InflateError.gzipMismatch(what: "member \(member) length", stored: storedSize, computed: size) }
            out += part
            at = end + 8
            member += 1
            if at < bytes.count && !isGzip(bytes[at...]) {
                throw InflateError.badGzip("\(bytes.count - at) bytes after member \(member - 1) are not another gzip member")
            }
        }
        return out
    }

    /// The offset of a member's DEFLATE data: skips (and checks) the fixed header and the optional fields.
    static func headerEnd(_ b: [UInt8], from start: Int, member: Int) throws -> Int {
        guard start + 10 <= b.count else { throw InflateError.truncated("gzip member \(member) header") }
        guard b[start] == 0x1f, b[start + 1] == 0x8b else { throw InflateError.badGzip("member \(member) has no magic number") }
        guard b[start + 2] == 8 else { throw InflateError.badGzip("member \(member) uses compression method \(b[start + 2]), only 8 (deflate) exists") }
        let flags = b[start + 3]
        guard flags & 0xe0 == 0 else { throw InflateError.badGzip("member \(member) sets reserved flag bits (\(String(flags, radix: 2)))") }
        var p = start + 10
        if flags & 0x04 != 0 {  // FEXTRA: a length-prefixed field we have no use for
            guard p + 2 <= b.count else { throw InflateError.truncated("gzip extra field length") }
            let len = Int(b[p]) | Int(b[p + 1]) << 8
            p += 2 + len
            guard p <= b.count else { throw InflateError.truncated("gzip extra field of \(len) bytes") }
        }
        for (bit, what) in [(UInt8(0x08), "file name"), (UInt8(0x10), "comment")] where flags & bit != 0 {
            guard let zero = b[p...].firstIndex(of: 0) else { throw InflateError.truncated("gzip \(what)") }
            p = zero + 1
        }
        if flags & 0x02 != 0 {  // FHCRC: low half of the CRC-32 of the header so far
            guard p + 2 <= b.count else { throw InflateError.truncated("gzip header CRC") }
            let stored = UInt32(b[p]) | UInt32(b[p + 1]) << 8
            let computed = crc32(b[start..<p]) & 0xffff
            guard stored == computed else { throw InflateError.gzipMismatch(what: "member \(member) header CRC-16", stored: stored, computed: computed) }
            p += 2
        }
        return p
    }

    /// CRC-32 as gzip, zlib and PNG define it (reflected polynomial 0xEDB88320, inverted in and out).
    public static func crc32<C: Collection>(_ bytes: C, initial: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        var c = ~initial
        for byte in bytes { c = crcTable[Int((c ^ UInt32(byte)) & 0xff)] ^ (c >> 8) }
        return ~c
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    private static func le32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }
}
