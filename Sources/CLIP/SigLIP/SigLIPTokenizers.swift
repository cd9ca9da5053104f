// Which tokenizer a SigLIP checkpoint brings: spiece.model (SigLIP: transformers' slow SiglipTokenizer,
// reproduced by Tokenizers.SiglipTokenizer) or tokenizer.json (SigLIP 2's Gemma tokenizer, run by the
// general tokenizer pipeline). Either way a text becomes ids ending as the processor leaves them, at most the
// context long; the model pads them.
import Foundation
import Tokenizers

enum SigLIPTokenizers {
    /// The tokenize function, the id the processor pads with (nil: the config's pad_token_id) and whether it pads
    /// on the left (tokenizer.json tokenizers: their padding side, as HFTextTokenizer reads it).
    static func find(_ dir: URL, contextLength: Int, vocabSize: Int) throws -> (tokenize: @Sendable (String) -> [Int], padId: Int?, padsLeft: Bool)? {
        let fm = FileManager.default
        let spiece = dir.appendingPathComponent("spiece.model")
        if fm.fileExists(atPath: spiece.path) {
            let tok = try SiglipTokenizer(spieceModel: spiece, lowercase: VLMLoader.doLowerCase(dir))
            guard tok.model.pieces.count <= vocabSize else {
                throw CLIPError.badConfig(file: spiece.path, detail: "the tokenizer has \(tok.model.pieces.count) pieces but the text tower only \(vocabSize)")
            }
            return ({ tok.encode($0, maxLength: contextLength) }, tok.padId, false)
        }
        if fm.fileExists(atPath: dir.appendingPathComponent("tokenizer.json").path) {
            let tok = try TokenizerLoader.load(directory: dir)
            guard tok.vocabularySize <= vocabSize else {
                throw CLIPError.badConfig(file: dir.appendingPathComponent("tokenizer.json").path, detail: "the tokenizer has \(tok.vocabularySize) entries but the text tower only \(vocabSize)")
            }
            return ({ text in
                let ids = tok.encode(text, addSpecialTokens: true)
                return Array(ids.prefix(contextLength))
            }, tok.padTokenId, try HFTextTokenizer.padsLeft(dir))
        }
        return nil
    }
}
