// `ex2`: the command line of EX2 (Extract and Explore). Each subcommand builds a library call and
// prints its result; the work itself lives in the EX2 library.
import ArgumentParser
import EX2
import Foundation
import Llama

@main
struct EX2Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ex2",
        abstract: "Extract and Explore: which features does a vision-language model rely on?",
        discussion: """
            Models are given as a GGUF file, an HF model directory, or an HF hub id (ORG/NAME) that is \
            already in the local HF cache (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub); \
            nothing is downloaded.
            """,
        subcommands: [Generate.self, Tokenize.self])
}

struct PolicyOptions: ParsableArguments {
    @Option(name: .long, help: "The language model: a .gguf file, an HF model directory, or an HF hub id in the local cache.")
    var policy: String
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sample continuations of a prompt from the policy model.")

    @OptionGroup var model: PolicyOptions
    @Option(help: "The prompt text (use $'...' in bash for newlines).") var prompt: String
    @Option(help: "Most tokens to generate per sample.") var maxNewTokens: Int = 32
    @Option(help: "Sampling temperature; 0 picks the most likely token (greedy).") var temperature: Float = 1
    @Option(help: "Keep only the K most likely tokens (0 = off).") var topK: Int = 0
    @Option(help: "Keep the most likely tokens whose probability adds up to P (1 = off).") var topP: Float = 1
    @Option(help: "Random seed; the same seed gives the same samples.") var seed: UInt64 = 0
    @Option(help: "How many samples to draw.") var numSamples: Int = 1
    @Flag(help: "Print JSON (text, token ids, log-probabilities) instead of plain text.") var json = false

    func validate() throws {
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be at least 1") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be 0 (greedy) or positive") }
        guard topK >= 0 else { throw ValidationError("--top-k must be 0 (off) or positive") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard numSamples > 0 else { throw ValidationError("--num-samples must be at least 1") }
    }

    func run() throws {
        let lm = try loadModel(model.policy)
        let params = SamplingParameters(temperature: temperature, topK: topK, topP: topP, maxNewTokens: maxNewTokens)
        let out = lm.generate(prompts: [prompt], samplesPerPrompt: numSamples, params: params, seed: seed)
        if json {
            let items: [[String: Any]] = out.map {
                ["text": $0.text, "tokens": $0.tokens, "logprobs": $0.logprobs.map(Double.init),
                 "finish_reason": $0.finishReason.rawValue]
            }
            try printJSON(items)
        } else {
            for (i, c) in out.enumerated() {
                if numSamples > 1 { print("--- sample \(i + 1)") }
                print(c.text)
            }
        }
    }
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the token ids and pieces of a text as JSON.")

    @OptionGroup var model: PolicyOptions
    @Flag(help: "Do not add BOS/EOS.") var noSpecialTokens = false
    @Argument(help: "The text to tokenize.") var text: String

    func run() throws {
        let lm = try loadModel(model.policy)
        let ids = lm.encode(text, addSpecialTokens: !noSpecialTokens)
        try printJSON(["ids": ids, "pieces": ids.map { lm.tokenizer.piece(for: $0) ?? "" }] as [String: Any])
    }
}

/// Errors thrown here reach ArgumentParser, which prints their description and exits with status 1.
func loadModel(_ spec: String) throws -> LanguageModel { try LanguageModel(spec: spec) }

func printJSON(_ obj: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}
