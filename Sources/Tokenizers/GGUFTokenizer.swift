// Builds a tokenizer from a GGUF file's `tokenizer.ggml.*` metadata, following llama.cpp's
// llama-vocab.cpp: "gpt2" models are byte-level BPE with the pre-tokenizer regex named by
// `tokenizer.ggml.pre`, "llama" models are SentencePiece BPE over scores with byte fallback.
// Control (3) and user-defined (4) tokens are matched in the raw text, as llama.cpp does when it
// parses special tokens.

import Foundation
import ModelFiles

/// End-of-turn texts llama.cpp treats as end of generation when the vocabulary has them.
let knownStopTexts: Set<String> = [
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
    "<|end_of_text|>", "<｜end▁of▁sentence｜>",
]

struct GGUFTokenizerBuilder {
    let gguf: GGUFFile
    let file: String

    init(_ gguf: GGUFFile) {
        self.gguf = gguf
        file = gguf.url.lastPathComponent
    }

    func build() throws -> PipelineTokenizer {
        guard let kind = gguf.string("tokenizer.ggml.model") else {
            throw TokenizerError.missingMetadata(file: file, key: "tokenizer.ggml.model")
        }
        guard let pieces = gguf.strings("tokenizer.ggml.tokens") else {
            throw TokenizerError.missingMetadata(file: file, key: "tokenizer.ggml.tokens")
        }
        let rawTypes = gguf.ints("tokenizer.ggml.token_type") ?? []
        guard rawTypes.isEmpty || rawTypes.count == pieces.count else {
            throw TokenizerError.invalid(file: file, field: "tokenizer.ggml.token_type",
                                         reason: "\(rawTypes.count) entries for \(pieces.count) tokens")
        }
        let types = rawTypes.isEmpty ? [TokenType](repeating: .normal, count: pieces.count)
            : rawTypes.map { TokenType(rawValue: UInt8(clamping: $0)) ?? .normal }
        let index = VocabIndex(pieces: pieces)

        func tokenId(_ key: String) throws -> Int? {
            guard let v = gguf.int(key) else { return nil }
            guard v >= 0, v < pieces.count else {
                throw TokenizerError.invalid(file: file, field: key, reason: "id \(v) outside the vocabulary of \(pieces.count)")
            }
            return v
        }
        let bos = try tokenId("tokenizer.ggml.bos_token_id")
        let eos = try tokenId("tokenizer.ggml.eos_token_id")
        let unk = try tokenId("tokenizer.ggml.unknown_token_id")
        let pad = try tokenId("tokenizer.ggml.padding_token_id")
        let eot = try tokenId("tokenizer.ggml.eot_token_id")
        let eom = try tokenId("tokenizer.ggml.eom_token_id")

        var addedList = [AddedToken]()
        var special = Set<Int32>()
        for (i, t) in types.enumerated() where t == .control || t == .userDefined {
            addedList.append(AddedToken(id: Int32(i), content: pieces[i]))
            if t == .control { special.insert(Int32(i)) }
        }
        let added = AddedTokenMatcher(addedList)

        var stops = Set<Int>([eos, eot, eom].compactMap { $0 })
        for (i, p) in pieces.enumerated() where knownStopTexts.contains(p) && (types[i] == .control || types[i] == .userDefined) {
            stops.insert(i)
        }

        let model: ModelKind
        let pre: [PreTokenizerStep]
        let decodeMode: DecodeMode
        var byteSymbols = [Int32](repeating: -1, count: 256)
        let addBOSDefault: Bool
        switch kind {
        case "gpt2":
            guard let mergeList = gguf.strings("tokenizer.ggml.merges") else {
                throw TokenizerError.missingMetadata(file: file, key: "tokenizer.ggml.merges")
            }
            let preName = gguf.string("tokenizer.ggml.pre") ?? "default"
            let (steps, ignoreMerges) = try Self.preTokenizer(named: preName, file: file)
            pre = steps
            var merges = RankedMerges()
            for (rank, m) in mergeList.enumerated() {
                // Pieces never contain a plain space (it is spelled Ġ), so the first space separates.
                guard let sp = m.firstIndex(of: " ") else {
                    throw TokenizerError.invalid(file: file, field: "tokenizer.ggml.merges[\(rank)]", reason: "'\(m)' has no space")
                }
                let a = String(m[..<sp]), b = String(m[m.index(after: sp)...])
                guard let ia = index.id(a), let ib = index.id(b), let ic = index.id(a + b) else { continue }
                merges.add(left: ia, right: ib, merged: ic, rank: rank)
            }
            for b in 0..<256 { byteSymbols[b] = index.id(String(ByteLevel.byteToScalar[b])) ?? -1 }
            model = .bpe(merges: merges, byteLevel: true, byteFallback: false, unknown: unk.map(Int32.init),
                         fuseUnknown: false, ignoreMerges: ignoreMerges)
            decodeMode = .chain([.byteLevel])
            addBOSDefault = false
        case "llama":
            guard let scores = gguf.floats(metadata: "tokenizer.ggml.scores"), scores.count == pieces.count else {
                throw TokenizerError.missingMetadata(file: file, key: "tokenizer.ggml.scores")
            }
            var byteTokens = [Int32](repeating: -1, count: 256)
            for b in 0..<256 {
                byteTokens[b] = index.id(String(format: "<0x%02X>", b)) ?? -1
            }
            let addSpacePrefix = gguf.bool("tokenizer.ggml.add_space_prefix") ?? true
            pre = [.metaspace(replacement: 0x2581, prepend: addSpacePrefix ? .always : .never, split: false)]
            model = .sentencePiece(SentencePieceMerger(index: index, scores: scores, byteTokens: byteTokens,
                                                       unknownId: Int32(unk ?? 0)))
            decodeMode = .llamaSPM(addSpacePrefix: addSpacePrefix)
            addBOSDefault = true
        default:
            throw TokenizerError.unsupported(file: file, field: "tokenizer.ggml.model", value: kind)
        }

        let addBOS = gguf.bool("tokenizer.ggml.add_bos_token") ?? addBOSDefault
        let addEOS = gguf.bool("tokenizer.ggml.add_eos_token") ?? false
        return PipelineTokenizer(
            pieces: pieces, index: index, types: types, special: special, added: added, normalizers: [],
            preTokenizers: pre, model: model, byteSymbols: byteSymbols,
            prefix: addBOS ? bos.map { [Int32($0)] } ?? [] : [],
            suffix: addEOS ? eos.map { [Int32($0)] } ?? [] : [],
            decodeMode: decodeMode, bosTokenId: bos, eosTokenId: eos, padTokenId: pad, stopTokenIds: stops,
            chatTemplate: gguf.string("tokenizer.chat_template"))
    }

    /// llama.cpp's `tokenizer.ggml.pre` table (llama-vocab.cpp), for the regex families implemented here.
    /// Returns the steps and whether whole words found in the vocabulary skip merging (Llama 3).
    static func preTokenizer(named name: String, file: String) throws -> ([PreTokenizerStep], Bool) {
        switch name {
        case "llama3", "llama-bpe", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2":
            return ([.pattern(.llama3)], true)
        case "dbrx", "smaug-bpe":
            return ([.pattern(.llama3)], false)
        case "qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan", "megrez", "kimi-k2":
            return ([.pattern(.qwen2)], false)
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            return ([.digits(individual: true), .pattern(.gpt2)], false)
        // llama.cpp's "default" adds punctuation and 3-digit pre-splits to the GPT-2 regex; models
        // converted with a recognised pre-tokenizer never carry it, so the GPT-2 regex stands in.
        case "default", "gpt2", "gpt-2", "phi-2", "roberta-bpe", "olmo", "jais", "trillion", "jina-es", "jina-de",
             "jina-v2-es", "jina-v2-de", "jina-v1-en", "jina-v2-code", "mpt", "gpt3-finnish", "poro-chat", "viking",
             "bloom", "chameleon":
            return ([.pattern(.gpt2)], false)
        default:
            throw TokenizerError.unsupported(file: file, field: "tokenizer.ggml.pre", value: name)
        }
    }
}
