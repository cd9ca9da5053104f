// A DEFLATE (RFC 1951) decoder with the zlib (RFC 1950) wrapper, because MATLAB's v5 files store each
// variable as a zlib stream (miCOMPRESSED), open_clip ships its tokenizer vocabulary gzipped (Gzip.swift),
// and Foundation on Linux exposes no zlib API; the package does not link libz either. Only decompression
// is needed and the inputs are small (annotation files, a 1.3 MB vocabulary), so clarity wins over speed: canonical Huffman codes are decoded with a per-length count
// table, a few bits at a time, and every malformed input becomes an `InflateError`, never a crash.
import Foundation

public enum InflateError: Error, CustomStringConvertible, Equatable {
    case truncated(String)
    case badHeader(String)
    case badBlock(String)
    case badCode(String)
    case badDistance(distance: Int, available: Int)
    case checksumMismatch(expected: UInt32, actual: UInt32)
    case outputTooLarge(limit: Int)
    case badGzip(String)
    case gzipMismatch(what: String, stored: UInt32, computed: UInt32)

    public var description: String {
        switch self {
        case .truncated(let what): return "compressed data ends early (\(what)); the file is cut short or corrupt"
        case .badHeader(let what): return "not a zlib stream: \(what)"
        case .badBlock(let what): return "corrupt DEFLATE block: \(what)"
        case .badCode(let what): return "corrupt Huffman code: \(what)"
        case .badDistance(let d, let a):
            return "corrupt DEFLATE data: back-reference distance \(d) reaches before the start (\(a) bytes written)"
        case .checksumMismatch(let e, let a):
            return "zlib Adler-32 checksum mismatch (stored \(String(e, radix: 16)), computed \(String(a, radix: 16))); the data is corrupt"
        case .outputTooLarge(let limit): return "decompressed data exceeds the limit of \(limit) bytes"
        case .badGzip(let what): return "not a gzip file: \(what)"
        case .gzipMismatch(let what, let e, let a):
            return "gzip \(what) mismatch (stored \(String(e, radix: 16)), computed \(String(a, radix: 16))); the file is corrupt or cut short"
        }
    }
}

public enum Inflate {
    /// Decompresses a complete zlib stream (2-byte header, DEFLATE data, big-endian Adler-32).
    public static func zlibDecompress(_ bytes: [UInt8], limit: Int = 1 << 30) throws -> [UInt8] {
        guard bytes.count >= 2 else { throw InflateError.truncated("zlib header") }
        let cmf = Int(bytes[0]), flg = Int(bytes[1])
        guard cmf & 0x0f == 8 else { throw InflateError.badHeader("compression method \(cmf & 0x0f), expected 8 (deflate)") }
        guard cmf >> 4 <= 7 else { throw InflateError.badHeader("window size exponent \(cmf >> 4) is above 7") }
        guard (cmf << 8 | flg) % 31 == 0 else { throw InflateError.badHeader("header check bits are wrong") }
        guard flg & 0x20 == 0 else { throw InflateError.badHeader("a preset dictionary is required, which MAT files never use") }
        var reader = BitReader(bytes: bytes, start: 2)
        let output = try inflate(&reader, limit: limit)
        let end = reader.alignedByteOffset
        guard end + 4 <= bytes.count else { throw InflateError.truncated("Adler-32 trailer") }
        let stored = UInt32(bytes[end]) << 24 | UInt32(bytes[end + 1]) << 16 | UInt32(bytes[end + 2]) << 8 | UInt32(bytes[end + 3])
        let computed = adler32(output)
        guard stored == computed else { throw InflateError.checksumMismatch(expected: stored, actual: computed) }
        return output
    }

    /// Decompresses raw DEFLATE data (no wrapper).
    public static func inflateRaw(_ bytes: [UInt8], limit: Int = 1 << 30) throws -> [UInt8] {
        var reader = BitReader(bytes: bytes, start: 0)
        return try inflate(&reader, limit: limit)
    }

    public static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        var i = 0
        // 5552 is the largest run for which b cannot overflow 32 bits before the modulo.
        while i < bytes.count {
            let end = min(i + 5552, bytes.count)
            while i < end { a &+= UInt32(bytes[i]); b &+= a; i += 1 }
            a %= 65521; b %= 65521
        }
        return b << 16 | a
    }

    // MARK: - blocks

    static func inflate(_ r: inout BitReader, limit: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(limit, r.bytes.count * 4))
        var last = false
        while !last {
            last = try r.bits(1) == 1
            switch try r.bits(2) {
            case 0: try storedBlock(&r, &out, limit: limit)
            case 1: try huffmanBlock(&r, &out, lit: fixedTables.lit, dist: fixedTables.dist, limit: limit)
            case 2:
                let (lit, dist) = try dynamicTables(&r)
                try huffmanBlock(&r, &out, lit: lit, dist: dist, limit: limit)
            default: throw InflateError.badBlock("block type 3 is reserved")
            }
        }
        return out
    }

    static func storedBlock(_ r: inout BitReader, _ out: inout [UInt8], limit: Int) throws {
        r.dropToByteBoundary()
        var p = r.alignedByteOffset
        guard p + 4 <= r.bytes.count else { throw InflateError.truncated("stored block length") }
        let len = Int(r.bytes[p]) | Int(r.bytes[p + 1]) << 8
        let nlen = Int(r.bytes[p + 2]) | Int(r.bytes[p + 3]) << 8
        guard len == (~nlen & 0xffff) else { throw InflateError.badBlock("stored block length \(len) does not match its complement") }
        p += 4
        guard p + len <= r.bytes.count else { throw InflateError.truncated("stored block of \(len) bytes") }
        guard out.count + len <= limit else { throw InflateError.outputTooLarge(limit: limit) }
        out.append(contentsOf: r.bytes[p ..< p + len])
        r.restart(at: p + len)
    }

    // Base values and extra-bit counts for length codes 257...285 and distance codes 0...29 (RFC 1951, 3.2.5).
    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                                    67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
                                  1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    static func huffmanBlock(_ r: inout BitReader, _ out: inout [UInt8], lit: Huffman, dist: Huffman, limit: Int) throws {
        while true {
            let sym = try lit.decode(&r)
            if sym < 256 {
                guard out.count < limit else { throw InflateError.outputTooLarge(limit: limit) }
                out.append(UInt8(sym))
            } else if sym == 256 {
                return
            } else {
                let li = sym - 257
                guard li < 29 else { throw InflateError.badCode("length symbol \(sym) does not exist") }
                let length = lengthBase[li] + (try r.bits(lengthExtra[li]))
                let ds = try dist.decode(&r)
                guard ds < 30 else { throw InflateError.badCode("distance symbol \(ds) does not exist") }
                let distance = distBase[ds] + (try r.bits(distExtra[ds]))
                guard distance <= out.count else { throw InflateError.badDistance(distance: distance, available: out.count) }
                guard out.count + length <= limit else { throw InflateError.outputTooLarge(limit: limit) }
                // Byte by byte on purpose: a match may overlap the bytes it is producing (distance < length).
                var from = out.count - distance
                for _ in 0 ..< length { out.append(out[from]); from += 1 }
            }
        }
    }

    static let fixedTables: (lit: Huffman, dist: Huffman) = {
        var lengths = [Int](repeating: 8, count: 288)
        for i in 144 ..< 256 { lengths[i] = 9 }
        for i in 256 ..< 280 { lengths[i] = 7 }
        // Building from constant, valid lengths cannot fail.
        return (try! Huffman(lengths: lengths), try! Huffman(lengths: [Int](repeating: 5, count: 30)))
    }()

    // Order in which code-length code lengths are stored (RFC 1951, 3.2.7).
    static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    static func dynamicTables(_ r: inout BitReader) throws -> (Huffman, Huffman) {
        let hlit = try r.bits(5) + 257, hdist = try r.bits(5) + 1, hclen = try r.bits(4) + 4
        guard hlit <= 286, hdist <= 30 else { throw InflateError.badBlock("\(hlit) literal or \(hdist) distance codes is too many") }
        var clLengths = [Int](repeating: 0, count: 19)
        for i in 0 ..< hclen { clLengths[codeLengthOrder[i]] = try r.bits(3) }
        let cl = try Huffman(lengths: clLengths)
        var lengths: [Int] = []
        lengths.reserveCapacity(hlit + hdist)
        while lengths.count < hlit + hdist {
            let sym = try cl.decode(&r)
            switch sym {
            case 0 ... 15: lengths.append(sym)
            case 16:
                guard let prev = lengths.last else { throw InflateError.badBlock("repeat code 16 with no previous length") }
                lengths.append(contentsOf: repeatElement(prev, count: 3 + (try r.bits(2))))
            case 17: lengths.append(contentsOf: repeatElement(0, count: 3 + (try r.bits(3))))
            default: lengths.append(contentsOf: repeatElement(0, count: 11 + (try r.bits(7))))
            }
        }
        guard lengths.count == hlit + hdist else { throw InflateError.badBlock("code length repeats run past the table") }
        guard lengths[256] > 0 else { throw InflateError.badBlock("the end-of-block symbol has no code") }
        return (try Huffman(lengths: Array(lengths[0 ..< hlit])), try Huffman(lengths: Array(lengths[hlit...])))
    }
}

/// A canonical Huffman code: how many codes each bit length has, and the symbols in code order.
struct Huffman {
    var counts = [Int](repeating: 0, count: 16)
    var symbols: [Int] = []

    init(lengths: [Int]) throws {
        for l in lengths { counts[l] += 1 }
        counts[0] = 0
        // Reject over-subscribed codes; incomplete ones are legal (e.g. a single distance code).
        var left = 1
        for len in 1 ... 15 {
            left = left * 2 - counts[len]
            guard left >= 0 else { throw InflateError.badCode("code lengths are over-subscribed") }
        }
        var offsets = [Int](repeating: 0, count: 16)
        for len in 1 ..< 15 { offsets[len + 1] = offsets[len] + counts[len] }
        symbols = [Int](repeating: 0, count: lengths.count)
        for (sym, l) in lengths.enumerated() where l != 0 {
            symbols[offsets[l]] = sym
            offsets[l] += 1
        }
    }

    /// Codes are read most-significant bit first, one bit at a time; `first` is the smallest code of
    /// the current length and `index` the position of its symbol.
    func decode(_ r: inout BitReader) throws -> Int {
        var code = 0, first = 0, index = 0
        for len in 1 ... 15 {
            code |= try r.bits(1)
            let count = counts[len]
            if code - first < count { return symbols[index + code - first] }
            index += count
            first = (first + count) << 1
            code <<= 1
        }
        throw InflateError.badCode("no symbol has this code")
    }
}

/// Reads DEFLATE's least-significant-bit-first bit stream.
struct BitReader {
    let bytes: [UInt8]
    var pos: Int
    var buffer: UInt64 = 0
    var count = 0

    init(bytes: [UInt8], start: Int) {
        self.bytes = bytes
        pos = start
    }

    mutating func bits(_ n: Int) throws -> Int {
        if n == 0 { return 0 }
        while count < n {
            guard pos < bytes.count else { throw InflateError.truncated("DEFLATE bit stream") }
            buffer |= UInt64(bytes[pos]) << UInt64(count)
            pos += 1
            count += 8
        }
        let v = Int(buffer & ((1 << UInt64(n)) - 1))
        buffer >>= UInt64(n)
        count -= n
        return v
    }

    mutating func dropToByteBoundary() {
        buffer >>= UInt64(count % 8)
        count -= count % 8
    }

    /// The offset of the first byte not yet consumed once the partial byte is dropped.
    var alignedByteOffset: Int { pos - count / 8 }

    mutating func restart(at offset: Int) {
        pos = offset
        buffer = 0
        count = 0
    }
}
