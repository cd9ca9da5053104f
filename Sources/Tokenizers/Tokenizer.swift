// The public face of the Tokenizers target: the `Tokenizer` protocol the models and the CLI code
// against, the typed error every loader throws, and `TokenizerLoader`, which picks the right
// implementation from a GGUF file's `tokenizer.ggml.*` metadata or from a Hugging Face model
// directory (tokenizer.json plus its config files).

import Foundation
import ModelFiles

public protocol Tokenizer: Sendable {
    var vocabularySize: Int { get }
    var bosTokenId: Int? { get }
    var eosTokenId: Int? { get }
    var padTokenId: Int? { get }
    /// End of generation: eos plus the end-of-turn tokens the vocabulary names (e.g. `<|im_end|>`,
    /// `<end_of_turn>`, `<|eot_id|>`).
    var stopTokenIds: Set<Int> { get }
    var addsBOS: Bool { get }
    var chatTemplate: String? { get }
    /// Special and added tokens written in `text` (e.g. `<|im_start|>`) always become their ids;
    /// `addSpecialTokens` adds BOS (and EOS when the model asks for it).
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int]
    func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String
    /// The raw vocabulary entry (byte-level pieces keep their `Ġ`, SentencePiece ones their `▁`).
    func piece(for id: Int) -> String?
    func isSpecial(_ id: Int) -> Bool
    /// The bytes token `id` contributes to decoded text on its own (a byte-level piece may be part of
    /// a UTF-8 character); nil for special tokens and ids outside the vocabulary. Constrained decoding
    /// and streaming work on these.
    func tokenBytes(_ id: Int) -> [UInt8]?
}

public extension Tokenizer {
    func tokenBytes(_ id: Int) -> [UInt8]? {
        guard id >= 0, id < vocabularySize, !isSpecial(id) else { return nil }
        return Array(decode([id], skipSpecialTokens: true).utf8)
    }
    func encode(_ text: String) -> [Int] { encode(text, addSpecialTokens: true) }
    func decode(_ ids: [Int]) -> String { decode(ids, skipSpecialTokens: false) }
}

public enum TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    case missingMetadata(file: String, key: String)
    case unsupported(file: String, field: String, value: String)
    case invalid(file: String, field: String, reason: String)
    case unreadable(file: String, reason: String)

    public var description: String {
        switch self {
        case let .missingMetadata(file, key):
            return "\(file): the tokenizer needs metadata key '\(key)', which is absent; re-convert the model with a recent llama.cpp convert_hf_to_gguf.py"
        case let .unsupported(file, field, value):
            return "\(file): \(field) = '\(value)' is not supported by this tokenizer implementation; supported: byte-level BPE (gpt2) and SentencePiece BPE (llama)"
        case let .invalid(file, field, reason):
            return "\(file): \(field) is invalid: \(reason)"
        case let .unreadable(file, reason):
            return "\(file): cannot read: \(reason)"
        }
    }
}

public enum TokenizerLoader {
    /// Reads the tokenizer stored in a GGUF file (`tokenizer.ggml.model` "gpt2" or "llama").
    public static func load(gguf: GGUFFile) throws -> any Tokenizer {
        try GGUFTokenizerBuilder(gguf).build()
    }

    /// Reads `tokenizer.json` from a Hugging Face model directory, with BOS/EOS/add_bos from
    /// `tokenizer_config.json`, `special_tokens_map.json` and `generation_config.json` when present.
    public static func load(directory: URL) throws -> any Tokenizer {
        try TokenizerJSONBuilder(directory: directory).build()
    }
}
