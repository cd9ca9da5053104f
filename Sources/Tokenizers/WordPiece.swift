// BERT's tokenizer, as transformers' BertTokenizerFast (the `tokenizers` pipeline BertNormalizer ->
// BertPreTokenizer -> WordPiece -> [CLS] A [SEP]) computes it, for ALIGN's and other BERT text towers:
// - special tokens written in the text ([CLS], [SEP], [MASK], ...) are cut out first and keep their ids;
// - normalising: control characters and U+FFFD are dropped and other whitespace becomes a space, CJK
//   ideographs are padded with spaces, accents are stripped (NFD, then the non-spacing marks dropped) and the
//   text is lower-cased, as uncased checkpoints ask;
// - pre-tokenising splits on whitespace and makes every punctuation character (ASCII symbols and Unicode P*)
//   a word of its own;
// - WordPiece takes, left to right, the longest vocabulary entry that prefixes the rest of the word (pieces
//   after the first carry "##"); a word with an unmatched rest, or longer than 100 characters, is [UNK].
// Reads vocab.txt (one entry per line, the id is the line number) or tokenizer.json's WordPiece model.
import Foundation

public struct WordPieceTokenizer: Sendable {
    public let vocab: [String: Int]
    public let pieces: [String]
    public let unkId: Int
    public let clsId: Int
    public let sepId: Int
    public let padId: Int
    public var lowercase = true
    public var stripAccents = true
    public var handleChineseChars = true
    public var cleanText = true
    public var continuingPrefix = "##"
    public var maxInputCharsPerWord = 100
    /// Special tokens matched verbatim in the raw text (the longest match wins).
    let specials: AddedTokenMatcher

    public var vocabularySize: Int { pieces.count }

    /// From a vocab.txt, with the usual BERT special tokens; `lowercase` (do_lower_case) also strips accents.
    public init(vocabTXT url: URL, lowercase: Bool = true) throws {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw TokenizerError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        try self.init(pieces: lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }, file: url.path,
                      unk: "[UNK]", specials: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
        self.lowercase = lowercase
        self.stripAccents = lowercase
    }

    /// From a tokenizer.json whose model is WordPiece (BertTokenizerFast's file).
    public init(tokenizerJSON url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let model = root["model"] as? [String: Any] else {
            throw TokenizerError.invalid(file: url.path, field: "model", reason: "not a tokenizer.json object with a model")
        }
        guard (model["type"] as? String) == "WordPiece", let v = model["vocab"] as? [String: Any] else {
            throw TokenizerError.unsupported(file: url.path, field: "model.type", value: "\(model["type"] ?? "none") (a WordPiece tokenizer was expected)")
        }
        var pieces = [String](repeating: "", count: v.count)
        for (piece, idValue) in v {
            guard let id = (idValue as? NSNumber)?.intValue, id >= 0, id < v.count, pieces[id].isEmpty else {
                throw TokenizerError.invalid(file: url.path, field: "model.vocab", reason: "ids must be 0..<\(v.count), each used once ('\(piece)')")
            }
            pieces[id] = piece
        }
        let added = (root["added_tokens"] as? [[String: Any]] ?? []).filter { ($0["special"] as? Bool) ?? false }
            .compactMap { $0["content"] as? String }
        try self.init(pieces: pieces, file: url.path, unk: model["unk_token"] as? String ?? "[UNK]",
                      specials: added.isEmpty ? ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] : added)
        if let p = model["continuing_subword_prefix"] as? String { continuingPrefix = p }
        if let m = (model["max_input_chars_per_word"] as? NSNumber)?.intValue { maxInputCharsPerWord = m }
        if let n = root["normalizer"] as? [String: Any], (n["type"] as? String) == "BertNormalizer" {
            lowercase = n["lowercase"] as? Bool ?? true
            // strip_accents null follows lowercase, as in tokenizers.
            stripAccents = n["strip_accents"] as? Bool ?? lowercase
            handleChineseChars = n["handle_chinese_chars"] as? Bool ?? true
            cleanText = n["clean_text"] as? Bool ?? true
        }
    }

    private init(pieces: [String], file: String, unk: String, specials: [String]) throws {
        var vocab: [String: Int] = [:]
        for (i, p) in pieces.enumerated() where vocab[p] == nil { vocab[p] = i }
        func id(_ t: String) throws -> Int {
            guard let i = vocab[t] else {
                throw TokenizerError.invalid(file: file, field: "vocabulary", reason: "has no '\(t)' entry, which a BERT tokenizer needs")
            }
            return i
        }
        self.pieces = pieces
        self.vocab = vocab
        unkId = try id(unk)
        clsId = try id("[CLS]")
        sepId = try id("[SEP]")
        padId = vocab["[PAD]"] ?? 0
        self.specials = AddedTokenMatcher(specials.compactMap { s in vocab[s].map { AddedToken(id: Int32($0), content: s) } })
    }

    /// [CLS] pieces [SEP], truncated to `maxLength` ids (the [SEP] kept last) when given.
    public func encode(_ text: String, maxLength: Int? = nil) -> [Int] {
        var ids = [clsId] + tokenIds(text) + [sepId]
        if let m = maxLength, ids.count > m, m >= 2 { ids = Array(ids[..<(m - 1)]) + [sepId] }
        return ids
    }

    /// The pieces' ids, without [CLS]/[SEP].
    public func tokenIds(_ text: String) -> [Int] {
        var out: [Int] = []
        for segment in specials.segments(Array(text.utf8)) {
            switch segment {
            case .token(let id): out.append(Int(id))
            case .text(let bytes, _):
                for word in preTokenize(normalize(String(decoding: bytes, as: UTF8.self))) { out += wordPiece(word) }
            }
        }
        return out
    }

    // MARK: steps

    func normalize(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            if cleanText {
                if u.value == 0 || u.value == 0xFFFD || Self.isControl(u) { continue }
                if Self.isWhitespace(u) { scalars.append(" "); continue }
            }
            if handleChineseChars, Self.isCJK(u.value) {
                scalars.append(" "); scalars.append(u); scalars.append(" ")
            } else {
                scalars.append(u)
            }
        }
        var s = String(scalars)
        if stripAccents {
            s = String(String.UnicodeScalarView(s.decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                $0.properties.generalCategory != .nonspacingMark
            }))
        }
        if lowercase { s = s.lowercased() }
        return s
    }

    func preTokenize(_ text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        func flush() { if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() } }
        for u in text.unicodeScalars {
            if u.properties.isWhitespace { flush(); continue }
            if Self.isPunctuation(u) { flush(); words.append(String(u)); continue }
            current.append(u)
        }
        flush()
        return words
    }

    func wordPiece(_ word: String) -> [Int] {
        let chars = Array(word.unicodeScalars)
        if chars.count > maxInputCharsPerWord { return [unkId] }
        var out: [Int] = []
        var start = 0
        while start < chars.count {
            var end = chars.count
            var found: Int?
            while start < end {
                var piece = String(String.UnicodeScalarView(chars[start..<end]))
                if start > 0 { piece = continuingPrefix + piece }
                if let id = vocab[piece] { found = id; break }
                end -= 1
            }
            guard let id = found else { return [unkId] }
            out.append(id)
            start = end
        }
        return out
    }

    // MARK: character classes (as tokenizers' BertNormalizer and BertPreTokenizer define them)

    static func isWhitespace(_ u: Unicode.Scalar) -> Bool {
        switch u {
        case " ", "\t", "\n", "\r": return true
        default: return u.properties.generalCategory == .spaceSeparator
        }
    }

    static func isControl(_ u: Unicode.Scalar) -> Bool {
        switch u {
        case "\t", "\n", "\r": return false
        default:
            switch u.properties.generalCategory {
            case .control, .format, .unassigned, .privateUse, .surrogate: return true
            default: return false
            }
        }
    }

    static func isPunctuation(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch u.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    static func isCJK(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
