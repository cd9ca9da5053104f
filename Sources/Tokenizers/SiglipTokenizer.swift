// transformers' SiglipTokenizer (the slow, SentencePiece one: SigLIP checkpoints ship spiece.model and no
// tokenizer.json), step by step as PreTrainedTokenizer.tokenize drives it:
// 1. "▁" is put in front of the text (and any "▁" in it becomes a space);
// 2. outside the special tokens the text is lower-cased (do_lower_case);
// 3. the special tokens written in the text (</s>, <unk>, <pad>) are cut out, taking the whitespace around
//    them (they are lstrip/rstrip AddedTokens);
// 4. each other piece is canonicalised (ASCII punctuation removed, whitespace runs collapsed, stripped) and
//    run through SentencePiece as "<unk>" + piece with the dummy prefix off, the first pieces (those of
//    "<unk>") dropped: the trick the slow tokenizer uses to keep a leading "▁" meaningful;
// 5. the pieces become ids (consecutive unknown characters are one <unk>), </s> is appended unless the ids
//    already end with it, and truncation keeps the first max_length - 1 ids and the </s>.
import Foundation

public struct SiglipTokenizer: Sendable {
    public let model: SentencePieceModelFile
    let normalizer: SentencePieceNormalizer
    let unigram: UnigramModel
    let pieceIds: [String: Int]
    public let eosId: Int
    public let unkId: Int
    public let padId: Int
    public var lowercase = true
    /// Special tokens cut out of the text (the longest match wins); their whitespace is stripped here.
    let specials: AddedTokenMatcher
    /// How many pieces "<unk>" itself encodes to (dropped from the front of every encoding).
    let unkPrefixCount: Int

    public init(spieceModel url: URL, lowercase: Bool = true) throws {
        let m = try SentencePieceModelFile(contentsOf: url)
        guard m.modelType == 1 else {
            throw TokenizerError.unsupported(file: url.path, field: "trainer_spec.model_type", value: "\(m.modelType) (SigLIP's tokenizer is a unigram model, type 1)")
        }
        let charsmap = m.precompiledCharsmap.isEmpty ? nil : try PrecompiledCharsmap(m.precompiledCharsmap, file: url.path)
        model = m
        // SiglipTokenizer turns the dummy prefix off.
        normalizer = SentencePieceNormalizer(charsmap: charsmap, addDummyPrefix: false,
                                             removeExtraWhitespaces: m.removeExtraWhitespaces, escapeWhitespaces: m.escapeWhitespaces)
        unigram = UnigramModel(pieces: m.pieces.map(\.text), scores: m.pieces.map(\.score), types: m.pieces.map(\.type),
                               unkId: m.unkId, doublePrecision: false, fuseUnknown: true)
        var ids: [String: Int] = [:]
        for (i, p) in m.pieces.enumerated() where ids[p.text] == nil { ids[p.text] = i }
        pieceIds = ids
        func id(_ s: String) throws -> Int {
            guard let i = ids[s] else { throw TokenizerError.invalid(file: url.path, field: "pieces", reason: "no '\(s)' piece, which SigLIP's tokenizer needs") }
            return i
        }
        eosId = try id("</s>")
        unkId = try id("<unk>")
        padId = eosId  // SiglipTokenizer pads with </s>
        self.lowercase = lowercase
        specials = AddedTokenMatcher([AddedToken(id: Int32(eosId), content: "</s>"), AddedToken(id: Int32(unkId), content: "<unk>")])
        unkPrefixCount = unigram.encode(normalizer.normalize("<unk>")).count
    }

    /// The ids SiglipTokenizer gives `text` (with </s>), truncated to `maxLength` when given.
    public func encode(_ text: String, maxLength: Int? = nil) -> [Int] {
        var ids: [Int] = []
        let prefixed = "\u{2581}" + text.replacingOccurrences(of: "\u{2581}", with: " ")
        var segments: [Segment] = specials.segments(Array((lowercase ? lowercased(prefixed) : prefixed).utf8)).map {
            switch $0 {
            case .token(let id): return .special(Int(id))
            case .text(let bytes, _): return .text(String(decoding: bytes, as: UTF8.self))
            }
        }
        // AddedToken lstrip/rstrip: the text on either side of a special token loses its whitespace there.
        for i in segments.indices {
            guard case .special = segments[i] else { continue }
            if i > 0, case .text(let s) = segments[i - 1] { segments[i - 1] = .text(String(s.reversed().drop(while: \.isWhitespace).reversed())) }
            if i + 1 < segments.count, case .text(let s) = segments[i + 1] { segments[i + 1] = .text(String(s.drop(while: \.isWhitespace))) }
        }
        var pieces: [(id: Int, special: Bool)] = []
        for seg in segments {
            switch seg {
            case .special(let id): pieces.append((id, true))
            case .text(let s):
                if s.isEmpty { continue }
                for id in encodePieces(canonicalize(s)) { pieces.append((id, false)) }
            }
        }
        // SiglipTokenizer.tokenize: a lone leading "▁" before a special token is dropped.
        if pieces.count > 1, !pieces[0].special, pieces[0].id == pieceIds["\u{2581}"], pieces[1].special { pieces.removeFirst() }
        ids = pieces.map(\.id)
        if let m = maxLength, m >= 1, ids.count > m - 1 { ids = Array(ids.prefix(m - 1)) }
        if ids.last != eosId { ids.append(eosId) }
        return ids
    }

    // MARK: steps

    private enum Segment { case text(String), special(Int) }

    /// Python's str.lower() outside the special tokens (re.sub with `.+?` leaves newlines as they are).
    private func lowercased(_ text: String) -> String {
        specials.segments(Array(text.utf8)).map { seg -> String in
            switch seg {
            case .token(let id): return id == Int32(eosId) ? "</s>" : "<unk>"
            case .text(let bytes, _): return String(decoding: bytes, as: UTF8.self).lowercased()
            }
        }.joined()
    }

    /// SiglipTokenizer.canonicalize_text: string.punctuation removed, \s+ -> " ", strip().
    func canonicalize(_ text: String) -> String {
        let punctuation = Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".unicodeScalars)
        var out = String.UnicodeScalarView()
        var inSpace = false
        for u in text.unicodeScalars where !punctuation.contains(u) {
            if Self.isPythonWhitespace(u) {
                if !inSpace { out.append(" ") }
                inSpace = true
            } else {
                out.append(u)
                inSpace = false
            }
        }
        var s = Substring(String(out))
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }

    /// Python's `\s` for str patterns (Unicode whitespace as str.isspace sees it).
    static func isPythonWhitespace(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x09...0x0D, 0x1C...0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// SentencePiece's ids for "<unk>" + text, less those of "<unk>" (consecutive unknown characters are one
    /// <unk>, as SentencePiece merges them).
    private func encodePieces(_ text: String) -> [Int] {
        Array(unigram.encode(normalizer.normalize("<unk>" + text)).dropFirst(unkPrefixCount).map(Int.init))
    }
}
