// SentencePiece's own files and normaliser, for tokenizers that ship a `spiece.model` (SigLIP, T5) or a
// tokenizer.json whose normaliser is SentencePiece's "Precompiled" character map:
// - `SentencePieceModelFile` reads the ModelProto protobuf: the pieces (text, score, type), the trainer's
//   model type and special ids, and the normaliser spec. Only the fields used here are decoded; the wire
//   format is walked field by field, so unknown fields are skipped and a truncated or corrupt file is an
//   error naming the file, never a crash.
// - `PrecompiledCharsmap` is the normalisation rule table compiled into a Darts double-array trie over UTF-8
//   bytes plus a pool of replacement strings (nmt_nfkc: NFKC with a few extras). At each position the longest
//   matching key is replaced; elsewhere one UTF-8 character is copied (an invalid byte becomes U+FFFD).
// - `SentencePieceNormalizer` is Normalizer::Normalize: that table, then whitespace handling (leading,
//   trailing and repeated spaces dropped, a dummy "▁" prefix, spaces escaped as "▁") as the spec says.
import Foundation

public struct SentencePieceModelFile: Sendable {
    public struct Piece: Sendable, Equatable {
        public var text: String
        public var score: Float
        public var type: UInt8  // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
    }
    public var pieces: [Piece] = []
    /// 1 unigram, 2 BPE, 3 word, 4 char.
    public var modelType = 1
    public var unkId = 0, bosId = 1, eosId = 2, padId = -1
    public var byteFallback = false
    public var normalizerName = ""
    public var precompiledCharsmap = Data()
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = true
    public var escapeWhitespaces = true

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        try self.init(data: data, file: url.path)
    }

    public init(data: Data, file: String) throws {
        let bytes = [UInt8](data)
        var r = ProtoReader(buf: bytes[...], file: file)
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 2): pieces.append(try Self.piece(try r.bytes(), file: file))
            case (2, 2): try readTrainer(try r.bytes(), file: file)
            case (3, 2): try readNormalizer(try r.bytes(), file: file)
            default: try r.skip(wire)
            }
        }
        guard !pieces.isEmpty else {
            throw TokenizerError.invalid(file: file, field: "pieces", reason: "no pieces: not a SentencePiece model file")
        }
        for (name, id) in [("unk_id", unkId)] where id < 0 || id >= pieces.count {
            throw TokenizerError.invalid(file: file, field: "trainer_spec.\(name)", reason: "\(id) is outside the \(pieces.count) pieces")
        }
    }

    private static func piece(_ b: ArraySlice<UInt8>, file: String) throws -> Piece {
        var r = ProtoReader(buf: b, file: file)
        var p = Piece(text: "", score: 0, type: 1)
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 2): p.text = String(decoding: try r.bytes(), as: UTF8.self)
            case (2, 5): p.score = Float(bitPattern: try r.fixed32())
            case (3, 0): p.type = UInt8(truncatingIfNeeded: try r.varint())
            default: try r.skip(wire)
            }
        }
        return p
    }

    private mutating func readTrainer(_ b: ArraySlice<UInt8>, file: String) throws {
        var r = ProtoReader(buf: b, file: file)
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (3, 0): modelType = Int(truncatingIfNeeded: try r.varint())
            case (35, 0): byteFallback = try r.varint() != 0
            case (40, 0): unkId = Int(Int32(truncatingIfNeeded: try r.varint()))
            case (41, 0): bosId = Int(Int32(truncatingIfNeeded: try r.varint()))
            case (42, 0): eosId = Int(Int32(truncatingIfNeeded: try r.varint()))
            case (43, 0): padId = Int(Int32(truncatingIfNeeded: try r.varint()))
            default: try r.skip(wire)
            }
        }
    }

    private mutating func readNormalizer(_ b: ArraySlice<UInt8>, file: String) throws {
        var r = ProtoReader(buf: b, file: file)
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 2): normalizerName = String(decoding: try r.bytes(), as: UTF8.self)
            case (2, 2): precompiledCharsmap = Data(try r.bytes())
            case (3, 0): addDummyPrefix = try r.varint() != 0
            case (4, 0): removeExtraWhitespaces = try r.varint() != 0
            case (5, 0): escapeWhitespaces = try r.varint() != 0
            default: try r.skip(wire)
            }
        }
    }
}

/// Protobuf wire format, just enough to walk messages.
struct ProtoReader {
    var buf: ArraySlice<UInt8>
    let file: String

    private func corrupt(_ why: String) -> TokenizerError {
        TokenizerError.invalid(file: file, field: "protobuf", reason: "\(why): the file is truncated or not a SentencePiece model")
    }

    mutating func nextField() throws -> (Int, Int)? {
        if buf.isEmpty { return nil }
        let key = try varint()
        let field = Int(key >> 3), wire = Int(key & 7)
        guard field > 0 else { throw corrupt("field number 0") }
        return (field, wire)
    }

    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard let b = buf.first else { throw corrupt("a varint runs past the end") }
            buf = buf.dropFirst()
            v |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
            guard shift < 64 else { throw corrupt("a varint longer than 10 bytes") }
        }
    }

    mutating func fixed32() throws -> UInt32 {
        guard buf.count >= 4 else { throw corrupt("a fixed32 runs past the end") }
        let s = buf.startIndex
        let v = UInt32(buf[s]) | UInt32(buf[s + 1]) << 8 | UInt32(buf[s + 2]) << 16 | UInt32(buf[s + 3]) << 24
        buf = buf.dropFirst(4)
        return v
    }

    mutating func bytes() throws -> ArraySlice<UInt8> {
        let n = try varint()
        guard n <= UInt64(buf.count) else { throw corrupt("a length of \(n) bytes runs past the end") }
        let out = buf.prefix(Int(n))
        buf = buf.dropFirst(Int(n))
        return out
    }

    mutating func skip(_ wire: Int) throws {
        switch wire {
        case 0: _ = try varint()
        case 1: guard buf.count >= 8 else { throw corrupt("a fixed64 runs past the end") }; buf = buf.dropFirst(8)
        case 2: _ = try bytes()
        case 5: _ = try fixed32()
        default: throw corrupt("wire type \(wire)")
        }
    }
}

/// SentencePiece's compiled normalisation rules: [u32 trie size][Darts units][replacement pool].
public struct PrecompiledCharsmap: Sendable {
    let units: [UInt32]
    let pool: [UInt8]

    public init(_ data: Data, file: String) throws {
        let b = [UInt8](data)
        guard b.count >= 4 else { throw TokenizerError.invalid(file: file, field: "precompiled_charsmap", reason: "shorter than its 4-byte header") }
        let trieBytes = Int(UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24)
        guard trieBytes % 4 == 0, trieBytes <= b.count - 4, trieBytes >= 4 else {
            throw TokenizerError.invalid(file: file, field: "precompiled_charsmap", reason: "its trie size \(trieBytes) does not fit the \(b.count) bytes")
        }
        var u = [UInt32](repeating: 0, count: trieBytes / 4)
        for i in u.indices {
            let o = 4 + 4 * i
            u[i] = UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
        }
        units = u
        pool = Array(b[(4 + trieBytes)...])
    }

    /// The longest rule matching a prefix of `s`: (bytes consumed, replacement), nil when none matches.
    func longestMatch(_ s: ArraySlice<UInt8>) -> (length: Int, replacement: ArraySlice<UInt8>)? {
        var pos = 0
        var unit = units[0]
        pos ^= Self.offset(unit)
        var best: (Int, Int)?
        var i = 0
        for byte in s {
            pos ^= Int(byte)
            guard pos >= 0, pos < units.count else { break }
            unit = units[pos]
            guard Self.label(unit) == UInt32(byte) else { break }
            pos ^= Self.offset(unit)
            guard pos >= 0, pos < units.count else { break }
            i += 1
            if Self.hasLeaf(unit) { best = (i, Int(units[pos] & 0x7fff_ffff)) }
        }
        guard let (len, at) = best, at < pool.count else { return nil }
        let end = pool[at...].firstIndex(of: 0) ?? pool.endIndex
        return (len, pool[at..<end])
    }

    /// The replacement of the SHORTEST rule matching a prefix of `s` (a 0 byte ends the search), nil when none
    /// matches: what HF tokenizers' Precompiled normalizer (spm_precompiled's `transform`) puts in place of a
    /// whole grapheme or character, however much of it the rule covered.
    func firstMatch(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var pos = Self.offset(units[0])
        for byte in s {
            if byte == 0 { return nil }
            pos ^= Int(byte)
            guard pos >= 0, pos < units.count else { return nil }
            let unit = units[pos]
            guard Self.label(unit) == UInt32(byte) else { return nil }
            pos ^= Self.offset(unit)
            guard pos >= 0, pos < units.count else { return nil }
            if Self.hasLeaf(unit) {
                let at = Int(units[pos] & 0x7fff_ffff)
                guard at < pool.count else { return nil }
                let end = pool[at...].firstIndex(of: 0) ?? pool.endIndex
                return pool[at..<end]
            }
        }
        return nil
    }

    /// HF tokenizers' Precompiled normalizer: each grapheme cluster under 6 UTF-8 bytes that a rule matches
    /// becomes that rule's replacement; any other grapheme is mapped character by character the same way.
    public func normalizeLikeTokenizers(_ text: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        for g in text {
            let bytes = Array(String(g).utf8)
            if bytes.count < 6, let rep = firstMatch(bytes[...]) { out += rep; continue }
            for u in g.unicodeScalars {
                let c = Array(String(u).utf8)
                if let rep = firstMatch(c[...]) { out += rep } else { out += c }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always) static func hasLeaf(_ u: UInt32) -> Bool { (u >> 8) & 1 == 1 }
    @inline(__always) static func label(_ u: UInt32) -> UInt32 { u & (0x8000_0000 | 0xff) }
    @inline(__always) static func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }
}

/// SentencePiece's Normalizer::Normalize (no user-defined symbols).
public struct SentencePieceNormalizer: Sendable {
    public var charsmap: PrecompiledCharsmap?
    public var addDummyPrefix: Bool
    public var removeExtraWhitespaces: Bool
    public var escapeWhitespaces: Bool

    public init(charsmap: PrecompiledCharsmap?, addDummyPrefix: Bool, removeExtraWhitespaces: Bool, escapeWhitespaces: Bool) {
        self.charsmap = charsmap; self.addDummyPrefix = addDummyPrefix
        self.removeExtraWhitespaces = removeExtraWhitespaces; self.escapeWhitespaces = escapeWhitespaces
    }

    static let space: [UInt8] = [0xE2, 0x96, 0x81]  // U+2581 "▁"

    /// One step: the replacement for the start of `s` and how many bytes it consumes.
    func prefix(_ s: ArraySlice<UInt8>) -> (ArraySlice<UInt8>, Int) {
        if let cm = charsmap, let m = cm.longestMatch(s) { return (m.replacement, m.length) }
        let n = utf8Length(s)
        if n == 0 { return ([0xEF, 0xBF, 0xBD][...], 1) }  // invalid UTF-8: U+FFFD, one byte consumed
        return (s.prefix(n), n)
    }

    /// The normalised UTF-8 bytes of `text`.
    public func normalize(_ text: String) -> [UInt8] {
        var input = Array(text.utf8)[...]
        var out: [UInt8] = []
        if removeExtraWhitespaces {
            while !input.isEmpty {
                let (rep, n) = prefix(input)
                guard rep.elementsEqual([0x20]) else { break }
                input = input.dropFirst(n)
            }
        }
        if input.isEmpty { return [] }
        if addDummyPrefix { out += escapeWhitespaces ? Self.space : [0x20] }
        var prevSpace = removeExtraWhitespaces
        while !input.isEmpty {
            var (rep, n) = prefix(input)
            while prevSpace, rep.first == 0x20 { rep = rep.dropFirst() }
            if !rep.isEmpty {
                for b in rep { if escapeWhitespaces && b == 0x20 { out += Self.space } else { out.append(b) } }
                prevSpace = rep.last == 0x20
            }
            input = input.dropFirst(n)
            if !removeExtraWhitespaces { prevSpace = false }
        }
        if removeExtraWhitespaces {
            let tail = escapeWhitespaces ? Self.space : [0x20]
            while out.count >= tail.count, Array(out.suffix(tail.count)) == tail { out.removeLast(tail.count) }
        }
        return out
    }
}

/// The byte length of the valid UTF-8 character at the start of `s`, 0 when it is not one.
func utf8Length(_ s: ArraySlice<UInt8>) -> Int {
    guard let b0 = s.first else { return 0 }
    let n: Int
    switch b0 {
    case 0x00...0x7f: return 1
    case 0xc2...0xdf: n = 2
    case 0xe0...0xef: n = 3
    case 0xf0...0xf4: n = 4
    default: return 0
    }
    guard s.count >= n else { return 0 }
    let i = s.startIndex
    for k in 1..<n where s[i + k] & 0xc0 != 0x80 { return 0 }
    if n == 3 {
        if b0 == 0xe0 && s[i + 1] < 0xa0 { return 0 }
        if b0 == 0xed && s[i + 1] > 0x9f { return 0 }
    }
    if n == 4 {
        if b0 == 0xf0 && s[i + 1] < 0x90 { return 0 }
        if b0 == 0xf4 && s[i + 1] > 0x8f { return 0 }
    }
    return n
}
