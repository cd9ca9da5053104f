// Reads a Hugging Face model directory: tokenizer.json (the `tokenizers` library's serialized
// pipeline) plus tokenizer_config.json, special_tokens_map.json and generation_config.json for
// BOS/EOS/padding, add_bos_token and the chat template. Each pipeline component is decoded from
// its "type" tag; components this package does not implement are reported by name instead of
// being silently ignored.

import Foundation

/// One tokenizer.json component (normalizer, pre-tokenizer, post-processor or decoder): the union
/// of the fields the supported types use.
struct TJComponent: Decodable {
    var type: String
    var normalizers: [TJComponent]?
    var pretokenizers: [TJComponent]?
    var processors: [TJComponent]?
    var decoders: [TJComponent]?
    var prepend: String?
    var pattern: TJPattern?
    var content: String?
    var behavior: String?
    var invert: Bool?
    var add_prefix_space: Bool?
    var use_regex: Bool?
    var individual_digits: Bool?
    var replacement: String?
    var prepend_scheme: String?
    var split: Bool?
    var start: Int?
    var stop: Int?
    var left: Bool?
    var right: Bool?
    var strip_left: Bool?
    var strip_right: Bool?
    var precompiled_charsmap: String?
    var single: [TJTemplateItem]?
    var special_tokens: [String: TJTemplateSpecial]?
    var cls: TJNamedId?
    var sep: TJNamedId?
}

struct TJPattern: Decodable {
    var String: String?
    var Regex: String?
}

struct TJTemplateItem: Decodable {
    struct Ref: Decodable { var id: String }
    var SpecialToken: Ref?
    var Sequence: Ref?
}

struct TJTemplateSpecial: Decodable { var ids: [Int] }

/// `["<s>", 0]` in Roberta/Bert processors.
struct TJNamedId: Decodable {
    var id: Int
    init(from decoder: Decoder) throws {
        var c = try decoder.unkeyedContainer()
        _ = try c.decode(String.self)
        id = try c.decode(Int.self)
    }
}

struct TJAddedToken: Decodable {
    var id: Int
    var content: String
    var lstrip: Bool?
    var rstrip: Bool?
    var special: Bool?
}

struct TJModel: Decodable {
    var type: String?
    var vocab: [String: Int]?
    /// A Unigram model's vocabulary: [piece, log-probability] in id order.
    var unigramVocab: [(piece: String, score: Double)]?
    var unk_id: Int?
    var merges: [String]
    var unk_token: String?
    var byte_fallback: Bool?
    var fuse_unk: Bool?
    var ignore_merges: Bool?
    var continuing_subword_prefix: String?
    var end_of_word_suffix: String?

    enum CodingKeys: String, CodingKey {
        case type, vocab, merges, unk_token, byte_fallback, fuse_unk, ignore_merges, continuing_subword_prefix, end_of_word_suffix
        case unk_id
    }

    /// One `[piece, score]` entry of a Unigram vocabulary.
    private struct ScoredPiece: Decodable {
        var piece: String, score: Double
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            piece = try c.decode(String.self)
            score = try c.decode(Double.self)
        }
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decodeIfPresent(String.self, forKey: .type)
        vocab = try? c.decodeIfPresent([String: Int].self, forKey: .vocab)
        if type == "Unigram" {
            unigramVocab = try c.decodeIfPresent([ScoredPiece].self, forKey: .vocab)?.map { ($0.piece, $0.score) }
            unk_id = try c.decodeIfPresent(Int.self, forKey: .unk_id)
        }
        // Merges are "a b" strings in older files and ["a", "b"] pairs in newer ones.
        if let s = try? c.decodeIfPresent([String].self, forKey: .merges) {
            merges = s
        } else if let pairs = try? c.decodeIfPresent([[String]].self, forKey: .merges) {
            merges = pairs.map { $0.joined(separator: " ") }
        } else {
            merges = []
        }
        unk_token = try c.decodeIfPresent(String.self, forKey: .unk_token)
        byte_fallback = try c.decodeIfPresent(Bool.self, forKey: .byte_fallback)
        fuse_unk = try c.decodeIfPresent(Bool.self, forKey: .fuse_unk)
        ignore_merges = try c.decodeIfPresent(Bool.self, forKey: .ignore_merges)
        continuing_subword_prefix = try c.decodeIfPresent(String.self, forKey: .continuing_subword_prefix)
        end_of_word_suffix = try c.decodeIfPresent(String.self, forKey: .end_of_word_suffix)
    }
}

struct TJFile: Decodable {
    var added_tokens: [TJAddedToken]?
    var normalizer: TJComponent?
    var pre_tokenizer: TJComponent?
    var post_processor: TJComponent?
    var decoder: TJComponent?
    var model: TJModel
}

/// A token named in tokenizer_config.json / special_tokens_map.json: a string or {"content": ...}.
struct TJTokenName: Decodable {
    var content: String
    init(from decoder: Decoder) throws {
        if let s = try? decoder.singleValueContainer().decode(String.self) {
            content = s
        } else {
            struct Obj: Decodable { var content: String }
            content = try Obj(from: decoder).content
        }
    }
}

struct TJConfig: Decodable {
    var bos_token: TJTokenName?
    var eos_token: TJTokenName?
    var pad_token: TJTokenName?
    var unk_token: TJTokenName?
    var add_bos_token: Bool?
    var add_eos_token: Bool?
    var chat_template: TJChatTemplate?
}

/// A string, or a list of {name, template} where "default" is the one used.
struct TJChatTemplate: Decodable {
    var template: String?
    init(from decoder: Decoder) throws {
        if let s = try? decoder.singleValueContainer().decode(String.self) {
            template = s
        } else {
            struct Named: Decodable { var name: String; var template: String }
            let list = try [Named](from: decoder)
            template = (list.first { $0.name == "default" } ?? list.first)?.template
        }
    }
}

struct TJGenerationConfig: Decodable {
    var bos_token_id: Int?
    var eos_token_id: [Int]?
    enum CodingKeys: String, CodingKey { case bos_token_id, eos_token_id }
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bos_token_id = try? c.decodeIfPresent(Int.self, forKey: .bos_token_id)
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eos_token_id) {
            eos_token_id = [one]
        } else {
            eos_token_id = try? c.decodeIfPresent([Int].self, forKey: .eos_token_id)
        }
    }
}

struct TokenizerJSONBuilder {
    let directory: URL

    private func read<T: Decodable>(_ name: String, _ type: T.Type, required: Bool) throws -> T? {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            if required { throw TokenizerError.unreadable(file: url.path, reason: "file not found; the directory must hold a Hugging Face tokenizer.json") }
            return nil
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
        } catch let e as DecodingError {
            throw TokenizerError.invalid(file: url.path, field: "JSON", reason: "\(e)")
        } catch {
            throw TokenizerError.unreadable(file: url.path, reason: error.localizedDescription)
        }
    }

    func build() throws -> PipelineTokenizer {
        let path = directory.appendingPathComponent("tokenizer.json").path
        guard let tj = try read("tokenizer.json", TJFile.self, required: true) else { fatalError("unreachable") }
        let config = try read("tokenizer_config.json", TJConfig.self, required: false)
        let specialMap = try read("special_tokens_map.json", TJConfig.self, required: false)
        let generation = try read("generation_config.json", TJGenerationConfig.self, required: false)

        let modelType = tj.model.type ?? "BPE"
        guard modelType == "BPE" || modelType == "Unigram" else {
            throw TokenizerError.unsupported(file: path, field: "model.type", value: modelType)
        }
        if let p = tj.model.continuing_subword_prefix, !p.isEmpty {
            throw TokenizerError.unsupported(file: path, field: "model.continuing_subword_prefix", value: p)
        }
        if let p = tj.model.end_of_word_suffix, !p.isEmpty {
            throw TokenizerError.unsupported(file: path, field: "model.end_of_word_suffix (use CLIPTokenizer)", value: p)
        }

        // id -> piece over the model vocabulary and the added tokens.
        var vocab = tj.model.vocab ?? [:]
        if modelType == "Unigram" {
            guard let list = tj.model.unigramVocab, !list.isEmpty else {
                throw TokenizerError.invalid(file: path, field: "model.vocab", reason: "a Unigram model needs a list of [piece, score] pairs")
            }
            vocab = [:]
            for (i, e) in list.enumerated() where vocab[e.piece] == nil { vocab[e.piece] = i }
        }
        let addedTokens = tj.added_tokens ?? []
        let size = max((vocab.values.max() ?? -1), (addedTokens.map(\.id).max() ?? -1)) + 1
        var pieces = [String](repeating: "", count: size)
        for (k, v) in vocab where v >= 0 { pieces[v] = k }
        for a in addedTokens where a.id >= 0 { pieces[a.id] = a.content }
        let index = VocabIndex(pieces: pieces)

        var types = [TokenType](repeating: .normal, count: size)
        var special = Set<Int32>()
        for a in addedTokens {
            types[a.id] = (a.special ?? false) ? .control : .userDefined
            if a.special ?? false { special.insert(Int32(a.id)) }
        }
        let added = AddedTokenMatcher(addedTokens.map {
            AddedToken(id: Int32($0.id), content: $0.content, lstrip: $0.lstrip ?? false, rstrip: $0.rstrip ?? false)
        })

        let normalizers = try tj.normalizer.map { try normalizerSteps($0, path) } ?? []
        let pre = try tj.pre_tokenizer.map { try preSteps($0, path) } ?? []
        let byteLevel = pre.contains { if case .byteLevel = $0 { return true } else { return false } }

        var merges = RankedMerges()
        for (rank, m) in tj.model.merges.enumerated() {
            guard let sp = m.firstIndex(of: " ") else {
                throw TokenizerError.invalid(file: path, field: "model.merges[\(rank)]", reason: "'\(m)' is not a pair")
            }
            let a = String(m[..<sp]), b = String(m[m.index(after: sp)...])
            guard let ia = index.id(a), let ib = index.id(b), let ic = index.id(a + b) else { continue }
            merges.add(left: ia, right: ib, merged: ic, rank: rank)
        }
        var byteSymbols = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { byteSymbols[b] = index.id(String(ByteLevel.byteToScalar[b])) ?? -1 }
        let model: ModelKind
        if let list = tj.model.unigramVocab, modelType == "Unigram" {
            model = try unigramModel(list, unkId: tj.model.unk_id, special: special, byteFallback: tj.model.byte_fallback ?? false, path)
        } else {
            let unknown = tj.model.unk_token.flatMap { index.id($0) }
            model = ModelKind.bpe(merges: merges, byteLevel: byteLevel, byteFallback: tj.model.byte_fallback ?? false,
                                  unknown: unknown, fuseUnknown: tj.model.fuse_unk ?? false,
                                  ignoreMerges: tj.model.ignore_merges ?? false)
        }

        let decoders = try tj.decoder.map { try decoderSteps($0, path) } ?? []

        func named(_ t: TJTokenName?) -> Int? { t.flatMap { index.id($0.content) }.map(Int.init) }
        let bos = named(config?.bos_token) ?? named(specialMap?.bos_token) ?? generation?.bos_token_id
        let eos = named(config?.eos_token) ?? named(specialMap?.eos_token) ?? generation?.eos_token_id?.first
        let pad = named(config?.pad_token) ?? named(specialMap?.pad_token)

        var prefix = [Int32](), suffix = [Int32]()
        if let post = tj.post_processor {
            try postProcess(post, path, &prefix, &suffix)
        } else {
            if config?.add_bos_token ?? false, let b = bos { prefix = [Int32(b)] }
            if config?.add_eos_token ?? false, let e = eos { suffix = [Int32(e)] }
        }

        var stops = Set<Int>(generation?.eos_token_id ?? [])
        if let e = eos { stops.insert(e) }
        for a in addedTokens where knownStopTexts.contains(a.content) { stops.insert(a.id) }

        return PipelineTokenizer(
            pieces: pieces, index: index, types: types, special: special, added: added, normalizers: normalizers,
            preTokenizers: pre, model: model, byteSymbols: byteSymbols, prefix: prefix, suffix: suffix,
            decodeMode: .chain(decoders), bosTokenId: bos, eosTokenId: eos, padTokenId: pad, stopTokenIds: stops,
            chatTemplate: config?.chat_template?.template)
    }

    /// HF tokenizers' Unigram: every vocabulary piece takes part except the special tokens (which the added-token
    /// split handles first) and <unk>; unknown characters become one fused <unk> (fuse_unk is always on there).
    private func unigramModel(_ list: [(piece: String, score: Double)], unkId: Int?, special: Set<Int32>,
                              byteFallback: Bool, _ path: String) throws -> ModelKind {
        guard !byteFallback else {
            throw TokenizerError.unsupported(file: path, field: "model.byte_fallback (Unigram)", value: "true")
        }
        guard let unk = unkId, unk >= 0, unk < list.count else {
            throw TokenizerError.invalid(file: path, field: "model.unk_id", reason: "a Unigram model needs the id of its <unk> piece")
        }
        let types: [UInt8] = list.indices.map { i in i == unk ? 2 : special.contains(Int32(i)) ? 3 : 1 }
        return .unigram(UnigramModel(pieces: list.map(\.piece), scores: list.map { Float($0.score) }, types: types,
                                     unkId: unk, doublePrecision: true, fuseUnknown: true))
    }

    private func normalizerSteps(_ c: TJComponent, _ path: String) throws -> [NormalizerStep] {
        switch c.type {
        case "Sequence": return try (c.normalizers ?? []).flatMap { try normalizerSteps($0, path) }
        case "Prepend": return [.prepend(c.prepend ?? "")]
        case "Replace":
            if let from = c.pattern?.String { return [.replace(from, c.content ?? "")] }
            guard let source = c.pattern?.Regex, let regex = try? NSRegularExpression(pattern: source) else {
                throw TokenizerError.unsupported(file: path, field: "normalizer Replace pattern", value: c.pattern?.Regex ?? "?")
            }
            return [.replaceRegex(RegexReplacer(regex: regex, content: c.content ?? ""))]
        case "Precompiled":
            // An empty charsmap (models trained with the identity rule) normalises nothing.
            guard let b64 = c.precompiled_charsmap, !b64.isEmpty else { return [] }
            guard let data = Data(base64Encoded: b64) else {
                throw TokenizerError.invalid(file: path, field: "normalizer Precompiled.precompiled_charsmap", reason: "not base64")
            }
            return [.precompiled(try PrecompiledCharsmap(data, file: path))]
        case "Lowercase": return [.lowercase]
        case "NFC": return [.nfc]
        case "NFKC": return [.nfkc]
        case "NFD": return [.nfd]
        case "NFKD": return [.nfkd]
        case "Strip": return [.strip(left: c.strip_left ?? c.left ?? true, right: c.strip_right ?? c.right ?? true)]
        default: throw TokenizerError.unsupported(file: path, field: "normalizer.type", value: c.type)
        }
    }

    private func preSteps(_ c: TJComponent, _ path: String) throws -> [PreTokenizerStep] {
        switch c.type {
        case "Sequence": return try (c.pretokenizers ?? []).flatMap { try preSteps($0, path) }
        case "ByteLevel":
            return [.byteLevel(addPrefixSpace: c.add_prefix_space ?? false, useRegex: c.use_regex ?? true)]
        case "Digits": return [.digits(individual: c.individual_digits ?? false)]
        case "WhitespaceSplit": return [.whitespaceSplit]
        case "Metaspace":
            let rep = c.replacement?.unicodeScalars.first?.value ?? 0x2581
            let scheme: PrependScheme
            if let s = c.prepend_scheme {
                guard let p = PrependScheme(rawValue: s) else {
                    throw TokenizerError.unsupported(file: path, field: "Metaspace.prepend_scheme", value: s)
                }
                scheme = p
            } else {
                scheme = (c.add_prefix_space ?? true) ? .always : .never
            }
            return [.metaspace(replacement: rep, prepend: scheme, split: c.split ?? true)]
        case "Split":
            let behavior = c.behavior ?? "Isolated"
            let invert = c.invert ?? false
            if let r = c.pattern?.Regex, let known = SplitPattern(regex: r), behavior.lowercased() == "isolated", !invert {
                return [.pattern(known)]
            }
            let source = c.pattern?.Regex ?? NSRegularExpression.escapedPattern(for: c.pattern?.String ?? "")
            guard ["isolated", "removed"].contains(behavior.lowercased()) else {
                throw TokenizerError.unsupported(file: path, field: "Split.behavior", value: behavior)
            }
            do {
                let re = try NSRegularExpression(pattern: source)
                return [.regex(RegexSplitter(regex: re, removeMatches: behavior.lowercased() == "removed", invert: invert))]
            } catch {
                throw TokenizerError.unsupported(file: path, field: "Split.pattern", value: source)
            }
        default: throw TokenizerError.unsupported(file: path, field: "pre_tokenizer.type", value: c.type)
        }
    }

    private func decoderSteps(_ c: TJComponent, _ path: String) throws -> [DecoderStep] {
        switch c.type {
        case "Sequence": return try (c.decoders ?? []).flatMap { try decoderSteps($0, path) }
        case "ByteLevel": return [.byteLevel]
        case "ByteFallback": return [.byteFallback]
        case "Fuse": return [.fuse]
        case "Replace":
            guard let from = c.pattern?.String else {
                throw TokenizerError.unsupported(file: path, field: "decoder Replace pattern", value: c.pattern?.Regex ?? "?")
            }
            return [.replace(from, c.content ?? "")]
        case "Strip":
            return [.strip(c.content?.first ?? " ", start: c.start ?? 0, stop: c.stop ?? 0)]
        case "Metaspace":
            let rep = c.replacement?.first ?? "\u{2581}"
            let scheme = c.prepend_scheme.flatMap(PrependScheme.init(rawValue:))
                ?? ((c.add_prefix_space ?? true) ? .always : .never)
            return [.metaspace(rep, prependScheme: scheme)]
        default: throw TokenizerError.unsupported(file: path, field: "decoder.type", value: c.type)
        }
    }

    private func postProcess(_ c: TJComponent, _ path: String, _ prefix: inout [Int32], _ suffix: inout [Int32]) throws {
        switch c.type {
        case "Sequence":
            for p in c.processors ?? [] { try postProcess(p, path, &prefix, &suffix) }
        case "ByteLevel":
            break  // only adjusts offsets
        case "TemplateProcessing":
            var seenSequence = false
            for item in c.single ?? [] {
                if item.Sequence != nil { seenSequence = true; continue }
                guard let name = item.SpecialToken?.id else { continue }
                guard let ids = c.special_tokens?[name]?.ids else {
                    throw TokenizerError.invalid(file: path, field: "post_processor.special_tokens", reason: "'\(name)' is not listed")
                }
                if seenSequence { suffix += ids.map(Int32.init) } else { prefix += ids.map(Int32.init) }
            }
        case "RobertaProcessing", "BertProcessing":
            if let cls = c.cls { prefix.append(Int32(cls.id)) }
            if let sep = c.sep { suffix.append(Int32(sep.id)) }
        default:
            throw TokenizerError.unsupported(file: path, field: "post_processor.type", value: c.type)
        }
    }
}
