// open_clip's HFTokenizer: the Hugging Face tokenizer a config names (text_cfg.hf_tokenizer_name), after
// open_clip's cleaning (tokenizer_kwargs.clean, default "whitespace"), called as
// tokenizer(texts, max_length=context, padding="max_length", truncation=True): special tokens added, the text
// truncated so that they still fit, padded to the context with the tokenizer's pad token on its padding side
// (open_clip 3.3 keeps the tokenizer's own: tokenizer_config.json's padding_side, else the class default, which
// is left for Llama- and Gemma-family tokenizers such as SigLIP 2's), and with strip_sep_token the separator
// replaced by id 0 (CLIPA's BERT). The ids come back padded, exactly as open_clip's text tower receives them.
// The files are found, in order, beside the weights (hub snapshots of timm's SigLIP repositories carry them),
// then in the Hugging Face cache under the tokenizer's own repository name.
import Foundation
import ModelFiles
import Tokenizers

struct HFTextTokenizer: CLIPTextTokenizing {
    enum Backend: Sendable {
        case pipeline(any Tokenizer)
        case wordPiece(WordPieceTokenizer)
    }
    let backend: Backend
    let clean: OpenCLIPTextClean
    /// The separator to overwrite with 0 (strip_sep_token), nil to keep it.
    let stripSepId: Int?
    let padTokenId: Int?
    let padsLeft: Bool
    let vocabularySize: Int

    func tokenIds(_ text: String, contextLength: Int) -> [Int] {
        let cleaned = clean.apply(text)
        var ids: [Int]
        switch backend {
        case .wordPiece(let wp):
            ids = wp.encode(cleaned, maxLength: contextLength)
        case .pipeline(let tok):
            ids = tok.encode(cleaned, addSpecialTokens: true)
            if ids.count > contextLength {
                // ids = specials before + the text's own ids + specials after; truncation cuts the text's part.
                let own = tok.encode(cleaned, addSpecialTokens: false)
                let extra = ids.count - own.count
                if extra >= 0, extra <= contextLength,
                   let before = (0...extra).first(where: { ids[$0..<($0 + own.count)].elementsEqual(own) }) {
                    ids = Array(ids[..<before]) + own.prefix(contextLength - extra) + Array(ids[(before + own.count)...])
                } else {
                    ids = Array(ids.prefix(contextLength))
                }
            }
        }
        if let pad = padTokenId, ids.count < contextLength {
            let padding = [Int](repeating: pad, count: contextLength - ids.count)
            ids = padsLeft ? padding + ids : ids + padding
        }
        if let sep = stripSepId { ids = ids.map { $0 == sep ? 0 : $0 } }
        return ids
    }
}

/// The local Hugging Face cache snapshot of a hub id as open_clip configs name them: ORG/NAME, or a legacy id
/// without an organisation (roberta-base, bert-base-uncased); nil when it is not cached (nothing is downloaded).
func cachedSnapshot(_ name: String) -> URL? {
    let legacy = !name.isEmpty && !name.contains("/") && !name.contains("\\") && !name.contains("..") && !name.hasPrefix("-")
    guard HubCacheLayout.split(name) != nil || legacy else { return nil }
    return HubCacheLayout(root: ModelLocator().hubCache).snapshot(name, revision: nil)
}

extension HFTextTokenizer {
    /// The tokenizer `name` (text_cfg.hf_tokenizer_name) from `dir` (the model's directory) or the HF cache;
    /// nil when neither has its files.
    static func find(_ name: String, near dir: URL?, config t: OpenCLIPModelConfig.TextCfg) throws -> HFTextTokenizer? {
        var candidates: [URL] = []
        if let dir { candidates.append(dir) }
        if let snapshot = cachedSnapshot(name) { candidates.append(snapshot) }
        for d in candidates where FileManager.default.fileExists(atPath: d.appendingPathComponent("tokenizer.json").path) {
            return try load(d, config: t)
        }
        return nil
    }

    static func load(_ dir: URL, config t: OpenCLIPModelConfig.TextCfg) throws -> HFTextTokenizer {
        let json = dir.appendingPathComponent("tokenizer.json")
        let clean: OpenCLIPTextClean
        if let c = t.tokenizerClean {
            guard let known = OpenCLIPTextClean(rawValue: c) else {
                throw CLIPError.unsupportedArchitecture(model: dir.path, detail: "text_cfg.tokenizer_kwargs.clean '\(c)' (open_clip has: \(OpenCLIPTextClean.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            clean = known
        } else {
            clean = .whitespace
        }
        let modelType = (try? JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
            .flatMap { ($0["model"] as? [String: Any])?["type"] as? String }
        let padsLeft = try Self.padsLeft(dir)
        let tok: HFTextTokenizer
        do {
            if modelType == "WordPiece" {
                let wp = try WordPieceTokenizer(tokenizerJSON: json)
                tok = HFTextTokenizer(backend: .wordPiece(wp), clean: clean, stripSepId: t.stripSepToken ? wp.sepId : nil,
                                      padTokenId: wp.padId, padsLeft: padsLeft, vocabularySize: wp.vocabularySize)
            } else {
                let p = try TokenizerLoader.load(directory: dir)
                var sep: Int?
                if t.stripSepToken {
                    guard let s = p.eosTokenId else {
                        throw CLIPError.badConfig(file: json.path, detail: "strip_sep_token is set but the tokenizer names no separator token")
                    }
                    sep = s
                }
                guard let pad = p.padTokenId else {
                    throw CLIPError.badConfig(file: json.path, detail: "the tokenizer names no pad token, and open_clip pads every text to the context (set pad_token in tokenizer_config.json)")
                }
                tok = HFTextTokenizer(backend: .pipeline(p), clean: clean, stripSepId: sep, padTokenId: pad, padsLeft: padsLeft,
                                      vocabularySize: p.vocabularySize)
            }
        } catch let e as TokenizerError {
            throw CLIPError.badConfig(file: json.path, detail: e.description)
        }
        guard tok.vocabularySize <= t.vocabSize else {
            throw CLIPError.badConfig(file: json.path, detail: "the tokenizer has \(tok.vocabularySize) entries but the text tower only \(t.vocabSize); this is not the tokenizer the model was trained with")
        }
        return tok
    }
}

extension HFTextTokenizer {
    /// The tokenizer's padding side: tokenizer_config.json's padding_side, else its class default (left for the
    /// Llama, CodeLlama, Gemma, Cohere and XLNet tokenizers, as transformers' classes set it).
    static func padsLeft(_ dir: URL) throws -> Bool {
        let tokConfig = (try? Data(contentsOf: dir.appendingPathComponent("tokenizer_config.json")))
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        if let side = tokConfig["padding_side"] as? String {
            guard side == "left" || side == "right" else {
                throw CLIPError.badConfig(file: dir.appendingPathComponent("tokenizer_config.json").path, detail: "padding_side '\(side)' (left or right)")
            }
            return side == "left"
        }
        let cls = (tokConfig["tokenizer_class"] as? String ?? "").replacingOccurrences(of: "Fast", with: "")
        return ["LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer", "CohereTokenizer", "XLNetTokenizer"].contains(cls)
    }
}
