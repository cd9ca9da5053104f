// CLIP's text tokenizer (OpenAI CLIP, open_clip, transformers' CLIPTokenizer): NFC, lowercase,
// CLIP's split pattern with whitespace dropped, byte-level BPE whose word-final symbols carry
// "</w>", and a fixed 77-token context that keeps the end-of-text token when it truncates.
// It reads transformers' vocab.json + merges.txt (or tokenizer.json), or open_clip's bpe_simple_vocab_16e6.txt.gz as
// shipped (gunzipped by ModelFiles' own reader: Foundation on Linux has no gzip API) or decompressed.
// ftfy's text repair, which open_clip and the slow HF tokenizer apply when it is installed, is not
// reproduced: it only changes mojibake, curly quotes and similar damaged text.

import Foundation
import ModelFiles

public struct CLIPTokenizer: Sendable {
    public static let defaultContextLength = 77

    public let startOfTextId: Int
    /// open_clip's cleaning: html.unescape twice and whitespace runs collapsed before BPE (set for its
    /// bpe_simple_vocab file; transformers' CLIPTokenizer does neither).
    public private(set) var cleansLikeOpenCLIP = false
    public let endOfTextId: Int
    public var vocabularySize: Int { pieces.count }

    private let pieces: [String]
    private let index: VocabIndex
    private let merges: RankedMerges
    private let added: AddedTokenMatcher
    /// ids of each byte's character alone and with "</w>".
    private let byteIds: [Int32], byteEndIds: [Int32]

    /// transformers' files: vocab.json (piece -> id) and merges.txt (first line a header).
    public init(vocabJSON: URL, mergesTXT: URL) throws {
        let vocab: [String: Int]
        do {
            vocab = try JSONDecoder().decode([String: Int].self, from: Data(contentsOf: vocabJSON))
        } catch {
            throw TokenizerError.unreadable(file: vocabJSON.path, reason: "\(error)")
        }
        let text: String
        do { text = try String(contentsOf: mergesTXT, encoding: .utf8) } catch {
            throw TokenizerError.unreadable(file: mergesTXT.path, reason: error.localizedDescription)
        }
        var pieces = [String](repeating: "", count: (vocab.values.max() ?? -1) + 1)
        for (k, v) in vocab where v >= 0 { pieces[v] = k }
        try self.init(pieces: pieces, mergeLines: Self.mergeLines(text), file: mergesTXT.path,
                      specials: ("<|startoftext|>", "<|endoftext|>"))
    }

    /// An HF tokenizer.json whose model is CLIP's BPE (vocab, merges, end_of_word_suffix "</w>"); the
    /// normalizer / pre-tokenizer entries are CLIP's fixed ones and are not read.
    public init(tokenizerJSON url: URL) throws {
        struct File: Decodable {
            struct Model: Decodable {
                var type: String?
                var vocab: [String: Int]
                var merges: [Merge]
                var end_of_word_suffix: String?
            }
            /// "a b" (older files) or ["a", "b"] (newer ones).
            enum Merge: Decodable {
                case line(String)
                case pair([String])
                init(from decoder: Decoder) throws {
                    let c = try decoder.singleValueContainer()
                    if let s = try? c.decode(String.self) { self = .line(s) } else { self = .pair(try c.decode([String].self)) }
                }
                var text: String {
                    switch self { case .line(let s): s; case .pair(let p): p.joined(separator: " ") }
                }
            }
            var model: Model
        }
        let f: File
        do { f = try JSONDecoder().decode(File.self, from: Data(contentsOf: url)) } catch {
            throw TokenizerError.unreadable(file: url.path, reason: "not a tokenizer.json with a BPE model: \(error)")
        }
        guard f.model.type == nil || f.model.type == "BPE" else {
            throw TokenizerError.unsupported(file: url.path, field: "model.type", value: f.model.type ?? "")
        }
        guard f.model.end_of_word_suffix == "</w>" else {
            throw TokenizerError.invalid(file: url.path, field: "model.end_of_word_suffix",
                                         reason: "CLIP's BPE marks word ends with \"</w>\"; this is not a CLIP tokenizer")
        }
        var pieces = [String](repeating: "", count: (f.model.vocab.values.max() ?? -1) + 1)
        for (k, v) in f.model.vocab where v >= 0 { pieces[v] = k }
        try self.init(pieces: pieces, mergeLines: f.model.merges.map(\.text), file: url.path,
                      specials: ("<|startoftext|>", "<|endoftext|>"))
    }

    /// open_clip's / OpenAI's bpe_simple_vocab_16e6.txt, already decompressed. The vocabulary is
    /// implied: the 256 byte characters, the same with "</w>", one entry per merge, then the two
    /// special tokens (so the full file gives bos 49406, eos 49407).
    public init(bpeVocabulary text: String, file: String = "bpe_simple_vocab_16e6.txt") throws {
        let lines = Self.mergeLines(text)
        var pieces = ByteLevel.orderedScalars.map { String($0) }
        pieces += pieces.map { $0 + "</w>" }
        for l in lines { pieces.append(l.replacingOccurrences(of: " ", with: "")) }
        pieces += ["<|startoftext|>", "<|endoftext|>"]
        try self.init(pieces: pieces, mergeLines: lines, file: file, specials: ("<|startoftext|>", "<|endoftext|>"))
        cleansLikeOpenCLIP = true
    }

    /// open_clip's vocabulary file, gzipped (bpe_simple_vocab_16e6.txt.gz) or plain text.
    public init(bpeFile url: URL) throws {
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: url)) } catch {
            throw TokenizerError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        var text = bytes
        if Gzip.isGzip(bytes) {
            // The real file inflates to 1.6 MB; the limit only stops a hostile file from filling memory.
            do { text = try Gzip.decompress(bytes, limit: 64 << 20) } catch {
                throw TokenizerError.unreadable(file: url.path, reason: "\(error)")
            }
        }
        guard let s = String(validating: text, as: UTF8.self) else {
            throw TokenizerError.unreadable(file: url.path, reason: "the vocabulary is not UTF-8 text")
        }
        try self.init(bpeVocabulary: s, file: url.path)
    }

    /// Lines 1 ..< 49152-256-2+1, as both reference implementations read them.
    private static func mergeLines(_ text: String) -> [String] {
        let all = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let upper = min(all.count, 49152 - 256 - 2 + 1)
        guard upper > 1 else { return [] }
        return all[1..<upper].filter { !$0.isEmpty }
    }

    private init(pieces: [String], mergeLines: [String], file: String, specials: (String, String)) throws {
        self.pieces = pieces
        index = VocabIndex(pieces: pieces)
        guard let sot = index.id(specials.0), let eot = index.id(specials.1) else {
            throw TokenizerError.invalid(file: file, field: "vocabulary", reason: "no \(specials.0) / \(specials.1) entries")
        }
        startOfTextId = Int(sot)
        endOfTextId = Int(eot)
        var merges = RankedMerges()
        for (rank, line) in mergeLines.enumerated() {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else {
                throw TokenizerError.invalid(file: file, field: "merge line \(rank + 2)", reason: "'\(line)' is not a pair")
            }
            let a = String(parts[0]), b = String(parts[1])
            guard let ia = index.id(a), let ib = index.id(b), let ic = index.id(a + b) else { continue }
            merges.add(left: ia, right: ib, merged: ic, rank: rank)
        }
        self.merges = merges
        let idx = index
        byteIds = ByteLevel.byteToScalar.map { idx.id(String($0)) ?? -1 }
        byteEndIds = ByteLevel.byteToScalar.map { idx.id(String($0) + "</w>") ?? -1 }
        added = AddedTokenMatcher([AddedToken(id: sot, content: specials.0), AddedToken(id: eot, content: specials.1)])
    }

    /// The BPE ids of `text`, without start/end tokens.
    public func tokenize(_ text: String) -> [Int] {
        var out = [Int32]()
        var heap = PairHeap()
        var symbols = [Int32]()
        let text = cleansLikeOpenCLIP ? HTMLUnescape.unescape(HTMLUnescape.unescape(text)) : text
        for seg in added.segments(Array(text.utf8)) {
            switch seg {
            case let .token(id): out.append(id)
            case let .text(slice, _):
                let clean = String(decoding: slice, as: UTF8.self).precomposedStringWithCanonicalMapping.lowercased()
                let scalars = clean.unicodeScalars.map(\.value)
                for r in SplitPattern.clip.split(scalars) {
                    if CharClasses.of(scalars[r.lowerBound]) == .space { continue }  // whitespace is dropped
                    var bytes = [UInt8]()
                    for v in scalars[r] { bytes.append(contentsOf: Unicode.Scalar(v)!.utf8) }
                    symbols.removeAll(keepingCapacity: true)
                    for (k, b) in bytes.enumerated() {
                        let id = k == bytes.count - 1 ? byteEndIds[Int(b)] : byteIds[Int(b)]
                        if id >= 0 { symbols.append(id) }
                    }
                    merges.merge(symbols, into: &out, heap: &heap)
                }
            }
        }
        return out.map(Int.init)
    }

    /// start + tokens + end, truncated to `contextLength` with the end token kept last, then padded
    /// with `padId` (open_clip pads with 0; transformers with the end token).
    public func encode(_ text: String, contextLength: Int = CLIPTokenizer.defaultContextLength, padId: Int = 0) -> [Int] {
        var ids = [startOfTextId] + tokenize(text) + [endOfTextId]
        if ids.count > contextLength {
            ids = Array(ids.prefix(contextLength))
            ids[contextLength - 1] = endOfTextId
        }
        ids += [Int](repeating: padId, count: contextLength - ids.count)
        return ids
    }

    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var bytes = [UInt8]()
        for id in ids where pieces.indices.contains(id) {
            if skipSpecialTokens, id == startOfTextId || id == endOfTextId { continue }
            let p = pieces[id]
            if p.hasSuffix("</w>") {
                ByteLevel.appendBytes(of: String(p.dropLast(4)), to: &bytes)
                bytes.append(0x20)
            } else {
                ByteLevel.appendBytes(of: p, to: &bytes)
            }
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }

    public func piece(for id: Int) -> String? { pieces.indices.contains(id) ? pieces[id] : nil }
}
