// `ex2 generate`: sample continuations of a prompt from the policy model.
import ArgumentParser
import EX2
import Foundation
import Llama

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sample continuations of a prompt from the policy model.")

    @OptionGroup var model: AdaptedPolicyOptions
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
        let lm = try model.load()
        let params = SamplingParameters(temperature: temperature, topK: topK, topP: topP, maxNewTokens: maxNewTokens)
        let out = try lm.generate(prompts: [prompt], samplesPerPrompt: numSamples, params: params, seed: seed)
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
