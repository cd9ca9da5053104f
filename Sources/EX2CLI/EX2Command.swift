// `ex2`: the command line of EX2 (Extract and Explore). Each subcommand builds a library call and
// prints its result; the work itself lives in the EX2 library.
import ArgumentParser
import EX2
import Foundation
import Llama

@main
struct EX2Command: AsyncParsableCommand {
    /// Installs the hub downloader before any subcommand resolves a model.
    static func main() async {
        HubSetup.install()
        await main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "ex2",
        abstract: "Extract and Explore: which features does a vision-language model rely on?",
        discussion: """
            Models are given as a GGUF file, an HF model directory, or an HF hub id (ORG/NAME, or \
            ORG/NAME/FILE.gguf). Hub ids are read from the HF cache (HF_HUB_CACHE, HF_HOME/hub or \
            ~/.cache/huggingface/hub) and what it lacks is downloaded from HF_ENDPOINT (default \
            https://huggingface.co) with HF_TOKEN, laid out as huggingface_hub does; HF_HUB_OFFLINE=1 \
            uses the cache only.
            """,
        subcommands: [Generate.self, Tokenize.self, Embed.self, Score.self, Describe.self, Train.self, PPOStepCommand.self, Inspect.self, Serve.self, ReportCommand.self, Demo.self])
}

struct PolicyOptions: ParsableArguments {
    @Option(name: .long, help: "The language model: a .gguf file, an HF model directory, or an HF hub id (downloaded into the HF cache when missing).")
    var policy: String
    @OptionGroup var policyRevision: PolicyRevision

    /// Errors thrown here reach ArgumentParser, which prints their description and exits with status 1.
    func load() throws -> LanguageModel { try LanguageModel(spec: policy) }
}

/// The policy with an optional LoRA adapter, for the commands that sample.
struct AdaptedPolicyOptions: ParsableArguments {
    @OptionGroup var base: PolicyOptions
    @Option(name: .long, help: "A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors, ours or Python PEFT's) to apply to the policy.")
    var adapter: String?

    var policy: String { base.policy }
    var adapterURL: URL? { adapter.map { URL(fileURLWithPath: $0) } }
    func load() throws -> LanguageModel { try LanguageModel(spec: base.policy, adapter: adapterURL) }
}


func printJSON(_ obj: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}
