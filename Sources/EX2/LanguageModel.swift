// A policy language model as the pipeline uses it: weights and tokenizer resolved from one spec (a GGUF
// file, an HF model directory, or an HF hub id from the HF cache, downloaded when missing), text in, text out.
// This is the library call `ex2 generate` and `ex2 tokenize` wrap, and what training and describing
// will call later.
import Foundation
import Llama
import ModelFiles
import Tensors
import Tokenizers

public final class LanguageModel: @unchecked Sendable {  // reason: immutable after loading
    public let spec: String
    public let location: ModelLocation
    public let model: DecoderModel
    public let tokenizer: any Tokenizer
    /// A PEFT LoRA adapter applied on top of the base (nil: the base model).
    public let adapters: LoRAState?

    /// `adapter`: a PEFT adapter directory (ours or Python PEFT's) to apply.
    public init(spec: String, adapter: URL? = nil, locator: ModelLocator = ModelLocator(), options: LoadOptions = LoadOptions()) throws {
        self.spec = spec
        location = try locator.resolve(spec)
        switch location {
        case .gguf(let url):
            let file = try GGUFFile(url: url)
            tokenizer = try TokenizerLoader.load(gguf: file)
            model = try DecoderModel.load(gguf: file, options: options)
        case .hfDirectory(let dir):
            tokenizer = try TokenizerLoader.load(directory: dir)
            model = try DecoderModel.load(hfDirectory: dir)
        }
        // A tokenizer that can emit ids the model has no embedding for would fail mid-generation.
        if tokenizer.vocabularySize > model.config.vocabSize {
            throw LanguageModelError.vocabularyMismatch(spec: spec, tokenizer: tokenizer.vocabularySize, model: model.config.vocabSize)
        }
        let config = model.config
        adapters = try adapter.map { try PEFTAdapter.load($0, model: config) }
        BLAS.setThreads(Parallel.cores)
    }

    /// The tokens that end a sequence: the tokenizer's stop tokens and the model's EOS ids.
    public var stopTokens: Set<Int> { tokenizer.stopTokenIds.union(model.config.eosTokenIds) }

    /// Token ids of `text` as the model's tokenizer makes them (BOS when the model adds one).
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        tokenizer.encode(text, addSpecialTokens: addSpecialTokens)
    }

    public struct Completion: Sendable {
        public var prompt: String
        public var text: String
        public var tokens: [Int]
        public var logprobs: [Float]
        public var finishReason: GenerationResult.FinishReason
    }

    /// Samples `samplesPerPrompt` continuations of each prompt. Sample j of prompt i uses the stream
    /// seeded by (seed, i * samplesPerPrompt + j), so results do not depend on the batch size.
    /// A prompt must leave room for at least one new token in the model's context; a sequence that fills
    /// the context ends there (finish reason length).
    public func generate(prompts: [String], samplesPerPrompt: Int = 1, params: SamplingParameters, seed: UInt64,
                         batchSize: Int = 32, progress: ((Int, Int) -> Bool)? = nil) throws -> [Completion] {
        var ids: [[Int]] = [], texts: [String] = []
        for (i, p) in prompts.enumerated() {
            let t = encode(p)
            if t.count >= model.config.maxPositions {
                throw LanguageModelError.contextLengthExceeded(spec: spec, prompt: i, tokens: t.count, context: model.config.maxPositions)
            }
            for _ in 0..<samplesPerPrompt { ids.append(t); texts.append(p) }
        }
        let seeds = ids.indices.map { Generator.sequenceSeed(seed, $0) }
        let gen = Generator(model: model, stopTokens: stopTokens, adapters: adapters)
        let results = gen.generate(prompts: ids, seeds: seeds, params: params, batchSize: batchSize, progress: progress)
        return results.enumerated().map { i, r in
            Completion(prompt: texts[i], text: responseText(r), tokens: r.tokens, logprobs: r.logprobs, finishReason: r.finishReason)
        }
    }

    /// The text of a sampled continuation: the stop token is kept in `tokens` (PPO scores it) but not in
    /// the text, and special tokens are skipped (as the reference's batch_decode does).
    public func responseText(_ r: GenerationResult) -> String {
        tokenizer.decode(r.finishReason == .eos ? Array(r.tokens.dropLast()) : r.tokens, skipSpecialTokens: true)
    }
}

public enum LanguageModelError: Error, CustomStringConvertible {
    case vocabularyMismatch(spec: String, tokenizer: Int, model: Int)
    case contextLengthExceeded(spec: String, prompt: Int, tokens: Int, context: Int)

    public var description: String {
        switch self {
        case let .contextLengthExceeded(spec, prompt, tokens, context):
            return "prompt \(prompt) is \(tokens) tokens long; \(spec) has a context of \(context) tokens, which must also hold the new tokens: shorten the prompt"
        case let .vocabularyMismatch(spec, tokenizer, model):
            return "\(spec): the tokenizer has \(tokenizer) tokens but the model only \(model) embeddings; the tokenizer files do not belong to these weights"
        }
    }
}
