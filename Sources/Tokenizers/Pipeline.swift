// The one concrete tokenizer: a Hugging Face-style pipeline (added-token split -> normalizer ->
// pre-tokenizer -> BPE model -> post-processor, and a decoder chain back) that both loaders fill
// in. GGUF files are mapped onto the same stages (a "gpt2" model becomes pattern split + byte-level
// BPE, a "llama" model becomes space escaping + SentencePiece merges), so encode and decode have a
// single implementation to test.

import Foundation

enum NormalizerStep: Sendable {
    case prepend(String)
    case replace(String, String)
    case replaceRegex(RegexReplacer)
    case precompiled(PrecompiledCharsmap)
    case lowercase
    case nfc, nfkc, nfd, nfkd
    case strip(left: Bool, right: Bool)

    func apply(_ s: String) -> String {
        switch self {
        case let .prepend(p): return s.isEmpty ? s : p + s
        case let .replace(a, b): return s.replacingOccurrences(of: a, with: b)
        case let .replaceRegex(r): return r.apply(s)
        case let .precompiled(cm): return cm.normalizeLikeTokenizers(s)
        case .lowercase: return s.lowercased()
        case .nfc: return s.precomposedStringWithCanonicalMapping
        case .nfkc: return s.precomposedStringWithCompatibilityMapping
        case .nfd: return s.decomposedStringWithCanonicalMapping
        case .nfkd: return s.decomposedStringWithCompatibilityMapping
        case let .strip(l, r):
            var sc = Substring(s)
            if l { sc = sc.drop(while: { $0.isWhitespace }) }
            if r { while let last = sc.last, last.isWhitespace { sc = sc.dropLast() } }
            return String(sc)
        }
    }
}

/// A normalizer Replace with a regex pattern (NSRegularExpression / ICU; the patterns tokenizer.json files
/// carry, such as " {2,}", mean the same in both engines). The content is inserted literally.
struct RegexReplacer: @unchecked Sendable {  // NSRegularExpression is immutable and thread-safe
    let regex: NSRegularExpression
    let content: String

    func apply(_ s: String) -> String {
        regex.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s),
                                       withTemplate: NSRegularExpression.escapedTemplate(for: content))
    }
}

enum PrependScheme: String, Sendable { case always, first, never }

enum PreTokenizerStep: Sendable {
    case pattern(SplitPattern)
    /// A Split regex this package has no hand-written scanner for (behavior "isolated" or "removed").
    case regex(RegexSplitter)
    case digits(individual: Bool)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case metaspace(replacement: UInt32, prepend: PrependScheme, split: Bool)
    case whitespaceSplit
}

/// Fallback for unknown Split regexes (NSRegularExpression / ICU): correct but slow.
struct RegexSplitter: @unchecked Sendable {  // NSRegularExpression is immutable and thread-safe
    let regex: NSRegularExpression
    let removeMatches: Bool
    let invert: Bool

    func split(_ s: [UInt32], into out: inout [Range<Int>]) {
        var str = String.UnicodeScalarView()
        var utf16ToScalar = [Int]()
        for (k, v) in s.enumerated() {
            let u = Unicode.Scalar(v)!
            str.append(u)
            utf16ToScalar.append(k)
            if v > 0xFFFF { utf16ToScalar.append(k) }
        }
        utf16ToScalar.append(s.count)
        let string = String(str)
        var pos = 0
        for m in regex.matches(in: string, range: NSRange(location: 0, length: (string as NSString).length)) {
            let a = utf16ToScalar[m.range.location], b = utf16ToScalar[m.range.location + m.range.length]
            if a == b { continue }
            if invert {
                out.append(a..<b)
            } else {
                if pos < a { out.append(pos..<a) }
                if !removeMatches { out.append(a..<b) }
            }
            pos = b
        }
        if !invert, pos < s.count { out.append(pos..<s.count) }
    }
}

enum ModelKind: Sendable {
    /// HF BPE. `byteLevel`: words are UTF-8 bytes spelled with the GPT-2 map; otherwise characters,
    /// with `byteFallback` to <0xXX> tokens and/or `unknown`.
    case bpe(merges: RankedMerges, byteLevel: Bool, byteFallback: Bool, unknown: Int32?, fuseUnknown: Bool,
             ignoreMerges: Bool)
    case sentencePiece(SentencePieceMerger)
    /// HF Unigram: the best-scoring segmentation of each pre-tokenized word (scores added in Double).
    case unigram(UnigramModel)
}

enum DecoderStep: Sendable {
    case byteLevel
    case replace(String, String)
    case byteFallback
    case fuse
    case strip(Character, start: Int, stop: Int)
    case metaspace(Character, prependScheme: PrependScheme)
}

enum DecodeMode: Sendable {
    case chain([DecoderStep])
    /// llama.cpp's SentencePiece detokenizer: ▁ -> space, byte tokens -> bytes, user tokens verbatim.
    case llamaSPM(addSpacePrefix: Bool)
}

enum TokenType: UInt8, Sendable { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

struct PipelineTokenizer: Tokenizer {
    let pieces: [String]
    let index: VocabIndex
    let types: [TokenType]  // per id
    let special: Set<Int32>
    let added: AddedTokenMatcher
    let normalizers: [NormalizerStep]
    let preTokenizers: [PreTokenizerStep]
    let model: ModelKind
    let byteSymbols: [Int32]  // id of each byte's GPT-2 character (byte-level models)
    let prefix: [Int32], suffix: [Int32]
    let decodeMode: DecodeMode

    let bosTokenId: Int?
    let eosTokenId: Int?
    let padTokenId: Int?
    let stopTokenIds: Set<Int>
    let chatTemplate: String?

    var vocabularySize: Int { pieces.count }
    var addsBOS: Bool { bosTokenId.map { prefix.contains(Int32($0)) } ?? false }

    func piece(for id: Int) -> String? { pieces.indices.contains(id) ? pieces[id] : nil }
    func isSpecial(_ id: Int) -> Bool { special.contains(Int32(truncatingIfNeeded: id)) }

    // MARK: encode

    private struct Scratch {
        var heap = PairHeap()
        var symbols: [Int32] = []
        var cache: [[UInt32]: [Int32]] = [:]
        var ranges: [Range<Int>] = []
    }

    func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        var out = [Int32]()
        var scratch = Scratch()
        if addSpecialTokens { out.append(contentsOf: prefix) }
        let bytes = Array(text.utf8)
        let segments = added.isEmpty ? [.text(bytes[...], atStart: true)] : added.segments(bytes)
        for seg in segments {
            switch seg {
            case let .token(id): out.append(id)
            case let .text(slice, atStart): encodeText(String(decoding: slice, as: UTF8.self), atStart: atStart, &out, &scratch)
            }
        }
        if addSpecialTokens { out.append(contentsOf: suffix) }
        return out.map(Int.init)
    }

    private func encodeText(_ raw: String, atStart: Bool, _ out: inout [Int32], _ scratch: inout Scratch) {
        var text = raw
        for n in normalizers { text = n.apply(text) }
        var words: [[UInt32]] = [text.unicodeScalars.map(\.value)]
        var firstIsStart = atStart
        for step in preTokenizers {
            var next = [[UInt32]]()
            next.reserveCapacity(words.count)
            for (w, word) in words.enumerated() {
                apply(step, to: word, isStart: firstIsStart && w == 0, into: &next, &scratch.ranges)
            }
            words = next
            if case .metaspace = step { firstIsStart = false }
        }
        for word in words where !word.isEmpty {
            if word.count <= 48, let hit = scratch.cache[word] { out.append(contentsOf: hit); continue }
            let before = out.count
            encodeWord(word, &out, &scratch)
            if word.count <= 48 { scratch.cache[word] = Array(out[before...]) }
        }
    }

    private func apply(_ step: PreTokenizerStep, to word: [UInt32], isStart: Bool, into next: inout [[UInt32]],
                       _ ranges: inout [Range<Int>]) {
        ranges.removeAll(keepingCapacity: true)
        switch step {
        case let .pattern(p):
            p.split(word, into: &ranges)
        case let .regex(r):
            r.split(word, into: &ranges)
        case let .digits(individual):
            DigitSplitter.split(word, individual: individual, into: &ranges)
        case let .byteLevel(addPrefixSpace, useRegex):
            var w = word
            if addPrefixSpace, w.first != 0x20 { w.insert(0x20, at: 0) }
            if useRegex {
                SplitPattern.gpt2.split(w, into: &ranges)
                for r in ranges { next.append(Array(w[r])) }
            } else {
                next.append(w)
            }
            return
        case let .metaspace(rep, prepend, split):
            // Nothing is left of an all-whitespace text after a Strip normalizer; tokenizers prepends nothing to it.
            if word.isEmpty { return }
            var w = word.map { $0 == 0x20 ? rep : $0 }
            let wants = prepend == .always || (prepend == .first && isStart)
            if wants, w.first != rep { w.insert(rep, at: 0) }
            if split {
                var start = 0
                for k in 1..<max(w.count, 1) where w[k] == rep {
                    next.append(Array(w[start..<k]))
                    start = k
                }
                if start < w.count { next.append(Array(w[start...])) }
            } else {
                next.append(w)
            }
            return
        case .whitespaceSplit:
            var start = -1
            for (k, v) in word.enumerated() {
                let ws = CharClasses.of(v) == .space
                if ws, start >= 0 { ranges.append(start..<k); start = -1 }
                if !ws, start < 0 { start = k }
            }
            if start >= 0 { ranges.append(start..<word.count) }
        }
        for r in ranges where !r.isEmpty { next.append(Array(word[r])) }
    }

    private func encodeWord(_ word: [UInt32], _ out: inout [Int32], _ scratch: inout Scratch) {
        switch model {
        case let .unigram(u):
            var bytes = [UInt8]()
            bytes.reserveCapacity(word.count)
            for v in word { bytes.append(contentsOf: Unicode.Scalar(v)!.utf8) }
            out.append(contentsOf: u.encode(bytes))
        case let .sentencePiece(spm):
            var bytes = [UInt8]()
            bytes.reserveCapacity(word.count)
            for v in word { bytes.append(contentsOf: Unicode.Scalar(v)!.utf8) }
            spm.encode(bytes, into: &out, heap: &scratch.heap)
        case let .bpe(merges, byteLevel, byteFallback, unknown, fuseUnknown, ignoreMerges):
            scratch.symbols.removeAll(keepingCapacity: true)
            if byteLevel {
                var utf8 = [UInt8]()
                for v in word { utf8.append(contentsOf: Unicode.Scalar(v)!.utf8) }
                if ignoreMerges {
                    var spelled = [UInt8]()
                    for b in utf8 { spelled.append(contentsOf: ByteLevel.byteToScalar[Int(b)].utf8) }
                    if let id = index.id(spelled) { out.append(id); return }
                }
                for b in utf8 {
                    let id = byteSymbols[Int(b)]
                    if id >= 0 { scratch.symbols.append(id) } else if let u = unknown { scratch.symbols.append(u) }
                }
            } else {
                if ignoreMerges {
                    var s = String.UnicodeScalarView()
                    for v in word { s.append(Unicode.Scalar(v)!) }
                    if let id = index.id(String(s)) { out.append(id); return }
                }
                var lastWasUnknown = false
                for v in word {
                    let ch = Array(Unicode.Scalar(v)!.utf8)
                    if let id = index.id(ch) {
                        scratch.symbols.append(id)
                        lastWasUnknown = false
                        continue
                    }
                    if byteFallback {
                        let ids = ch.map { byteTokenId($0) }
                        if ids.allSatisfy({ $0 >= 0 }) {
                            scratch.symbols.append(contentsOf: ids)
                            lastWasUnknown = false
                            continue
                        }
                    }
                    if let u = unknown {
                        if !(fuseUnknown && lastWasUnknown) { scratch.symbols.append(u) }
                        lastWasUnknown = true
                    }
                }
            }
            merges.merge(scratch.symbols, into: &out, heap: &scratch.heap)
        }
    }

    private func byteTokenId(_ b: UInt8) -> Int32 {
        let hex = String(b, radix: 16, uppercase: true)
        return index.id("<0x" + (b < 16 ? "0" : "") + hex + ">") ?? -1
    }

    // MARK: decode

    func tokenBytes(_ id: Int) -> [UInt8]? {
        guard pieces.indices.contains(id), !isSpecial(id) else { return nil }
        let p = pieces[id]
        switch decodeMode {
        case .llamaSPM:
            switch types[id] {
            case .byte: return Self.byteValue(p).map { [$0] } ?? []
            case .unknown: return Array("\u{2585}".utf8)
            case .control, .userDefined, .unused: return Array(p.utf8)
            case .normal:
                var out = [UInt8]()
                Self.appendUnescaped(p, to: &out)
                return out
            }
        case let .chain(steps):
            if steps.contains(where: { if case .byteLevel = $0 { return true } else { return false } }) {
                var out = [UInt8]()
                ByteLevel.appendBytes(of: p, to: &out)
                return out
            }
            if steps.contains(where: { if case .byteFallback = $0 { return true } else { return false } }), let b = Self.byteValue(p) {
                return [b]
            }
            // Other chains (metaspace/replace): the token's text as decoded mid-sequence.
            var piece = p
            for s in steps {
                switch s {
                case let .replace(a, b): piece = piece.replacingOccurrences(of: a, with: b)
                case let .metaspace(c, _): piece = piece.replacingOccurrences(of: String(c), with: " ")
                default: break
                }
            }
            return Array(piece.utf8)
        }
    }

    func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        let valid = ids.filter { pieces.indices.contains($0) && !(skipSpecialTokens && isSpecial($0)) }
        switch decodeMode {
        case let .chain(steps):
            var toks = valid.map { pieces[$0] }
            for s in steps { toks = Self.run(s, toks) }
            return toks.joined()
        case let .llamaSPM(addSpacePrefix):
            var bytes = [UInt8]()
            for (k, id) in valid.enumerated() {
                let p = pieces[id]
                let start = bytes.count
                switch types[id] {
                case .byte:
                    if let b = Self.byteValue(p) { bytes.append(b) }
                case .unknown:
                    bytes.append(contentsOf: "\u{2585}".utf8)
                case .control:
                    bytes.append(contentsOf: p.utf8)
                case .userDefined, .unused:
                    bytes.append(contentsOf: p.utf8)
                case .normal:
                    Self.appendUnescaped(p, to: &bytes)
                }
                if k == 0, addSpacePrefix, bytes.count > start, bytes[start] == 0x20 { bytes.remove(at: start) }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// UTF-8 of `piece` with each U+2581 (E2 96 81) turned back into a space.
    private static func appendUnescaped(_ piece: String, to out: inout [UInt8]) {
        var piece = piece
        piece.withUTF8 { u in
            var k = 0
            while k < u.count {
                if u[k] == 0xE2, k + 2 < u.count, u[k + 1] == 0x96, u[k + 2] == 0x81 {
                    out.append(0x20)
                    k += 3
                } else {
                    out.append(u[k])
                    k += 1
                }
            }
        }
    }

    static func byteValue(_ piece: String) -> UInt8? {
        let u = Array(piece.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }  // <0xXX>
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    private static func run(_ step: DecoderStep, _ toks: [String]) -> [String] {
        switch step {
        case .byteLevel:
            var bytes = [UInt8]()
            for t in toks { ByteLevel.appendBytes(of: t, to: &bytes) }
            return [String(decoding: bytes, as: UTF8.self)]
        case let .replace(a, b):
            return toks.map { $0.replacingOccurrences(of: a, with: b) }
        case .byteFallback:
            var out = [String]()
            var pending = [UInt8]()
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(s)
                } else {
                    out.append(String(repeating: "\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for t in toks {
                if let b = byteValue(t) { pending.append(b) } else { flush(); out.append(t) }
            }
            flush()
            return out
        case .fuse:
            return [toks.joined()]
        case let .strip(c, start, stop):
            return toks.map { t in
                var chars = Substring(t)
                var k = 0
                while k < start, chars.first == c { chars = chars.dropFirst(); k += 1 }
                k = 0
                while k < stop, chars.last == c { chars = chars.dropLast(); k += 1 }
                return String(chars)
            }
        case let .metaspace(rep, scheme):
            return toks.enumerated().map { i, t in
                var s = t.replacingOccurrences(of: String(rep), with: " ")
                if i == 0, scheme != .never, t.first == rep { s.removeFirst() }
                return s
            }
        }
    }
}
