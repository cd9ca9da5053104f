// `ex2 describe`: the policy writes one description per (concept, query template), saved in the
// reference's generate format (a JSON list per concept of strings) that `ex2 score` reads.
import ArgumentParser
import Concepts
import EX2
import Foundation
import Judge
import Llama

struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a description of every concept for every query template (25 per concept by default).",
        discussion: """
            The prompt for concept C and template T is T.format(C) followed by a blank line, as in the EX2 \
            reference; sampling defaults to the reference's (temperature 1, no top-k/top-p, 32 new tokens).
            """)

    @Option(name: .long, help: "The language model: a .gguf file, an HF model directory, or an HF hub id (downloaded into the HF cache when missing; not with --base-url).")
    var policy: String?
    @Option(name: .long, help: "A PEFT LoRA adapter directory to apply to the policy.")
    var adapter: String?
    @OptionGroup var policyRevision: PolicyRevision
    @Option(help: "Sample through an OpenAI-compatible completions endpoint instead (e.g. vLLM or `ex2 serve`): its base URL, such as http://127.0.0.1:8000/v1.")
    var baseURL: String?
    @Option(help: "With --base-url: the served model (or LoRA module) name.")
    var model: String?
    @Option(help: "With --base-url: requests in flight at once.") var concurrency = 8
    @Option(name: .customLong("run"), help: ArgumentHelp("A run directory from `ex2 train --output-dir`: its policy, final adapter, dataset and templates are the defaults, and the descriptions go to RUN/descriptions.json.", valueName: "RUN"))
    var runDirectory: String?
    @Option(help: "cub, flowers, pets, stanford_cars, stanford_dogs, fgvc_aircraft (built-in class names), or folder:PATH (one sub-folder per concept).")
    var dataset: String?
    @Option(help: "Data root for folder datasets given by a relative path (default: the current directory).")
    var dataRoot: String?
    @Option(help: "A JSON list of query templates with {} for the concept (default: the reference's 25).")
    var templates: String?
    @Option(help: "Where to write the descriptions (JSON, a list per concept; default descriptions.json, or RUN/descriptions.json).")
    var output: String?
    @Option(help: "Most tokens per description.") var maxNewTokens: Int = 32
    @Option(help: "Sampling temperature; 0 = greedy.") var temperature: Float = 1
    @Option(help: "Keep only the K most likely tokens (0 = off).") var topK: Int = 0
    @Option(help: "Nucleus sampling mass (1 = off).") var topP: Float = 1
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Sequences decoded together.") var batchSize: Int = 32

    func validate() throws {
        if baseURL != nil {
            guard model != nil, policy == nil, adapter == nil else { throw ValidationError("with --base-url give --model (the served name), not --policy or --adapter") }
        } else {
            guard policy != nil || runDirectory != nil, model == nil else { throw ValidationError("give --policy (a local model) or --run RUN, or --base-url with --model") }
        }
        guard dataset != nil || runDirectory != nil else { throw ValidationError("give --dataset (or --run RUN, whose dataset is the default)") }
        guard maxNewTokens > 0, batchSize > 0 else { throw ValidationError("--max-new-tokens and --batch-size must be positive") }
        guard temperature >= 0, topK >= 0, topP > 0 && topP <= 1 else { throw ValidationError("check --temperature (>= 0), --top-k (>= 0) and --top-p (0, 1]") }
    }

    func resolve() throws -> DescribeSettings {
        let r = try runDirectory.map(RunDirectory.init)
        var adapter = adapter.map { URL(fileURLWithPath: $0) }
        if adapter == nil, baseURL == nil, let r { adapter = try r.requireFinalAdapter() }
        return DescribeSettings(policy: policy ?? r?.policy, adapter: adapter, dataset: dataset ?? r!.dataset,
                        dataRoot: dataRoot.map { URL(fileURLWithPath: $0) } ?? r?.dataRoot,
                        templates: templates.map { URL(fileURLWithPath: $0) } ?? r?.templates,
                        output: output ?? r?.descriptions.path ?? "descriptions.json")
    }

    func run() async throws {
        let s = try resolve()
        if let baseURL, let model { return try await runRemote(baseURL: baseURL, model: model, settings: s) }
        let output = s.output
        let request = DescribeRequest(
            policy: s.policy!, dataset: s.dataset, dataRoot: s.dataRoot, templates: s.templates,
            params: SamplingParameters(temperature: temperature, topK: topK, topP: topP, maxNewTokens: maxNewTokens),
            seed: seed, batchSize: batchSize, adapter: s.adapter)
        let bar = ProgressBar(label: "describing", unit: "descriptions")
        // Ctrl-C stops after the batch in flight; what is done is still written.
        Interrupt.install()
        let result = try Describing.run(request) { done, total in bar.update(done, of: total); return !Interrupt.requested }
        bar.finish()
        try Describing.write(result, to: URL(fileURLWithPath: output))
        if Interrupt.requested {
            let done = result.descriptions.reduce(0) { $0 + $1.filter { !$0.isEmpty }.count }
            FileHandle.standardError.write(Data("interrupted: wrote the \(done) descriptions finished so far to \(output) (the others are empty strings)\n".utf8))
            throw ExitCode(130)
        }
        for (name, ds) in zip(result.classNames, result.descriptions) {
            print("\(name): \(ds.first.map { $0.replacingOccurrences(of: "\n", with: " ") } ?? "")")
        }
        print("wrote \(result.descriptions.reduce(0) { $0 + $1.count }) descriptions of \(result.classNames.count) concepts to \(output)")
    }
}

extension Describe {
    func runRemote(baseURL: String, model: String, settings s: DescribeSettings) async throws {
        let output = s.output
        let names = try Describing.classNames(dataset: s.dataset, dataRoot: s.dataRoot, split: nil)
        let qt = try s.templates.map { try QueryTemplates.load($0) } ?? QueryTemplates.builtIn()
        let prompts = qt.prompts(classNames: names).map { (classIndex: $0.classIndex, templateIndex: $0.templateIndex, text: $0.text) }
        var r = RemoteDescribeRequest(prompts: prompts, classCount: names.count, templateCount: qt.templates.count, model: model)
        r.temperature = Double(temperature); r.topP = Double(topP); r.maxTokens = maxNewTokens; r.seed = seed; r.concurrency = concurrency
        let bar = LockedBar()
        let descs = try await RemoteDescribing.run(r, endpoint: ChatEndpoint(baseURL: baseURL, apiKey: ChatEndpoint.apiKey())) {
            bar.update(label: "describing", unit: "descriptions", $0, of: $1)
        }
        bar.finish()
        try Describing.write(DescribeResult(classNames: names, descriptions: descs), to: URL(fileURLWithPath: output))
        print("wrote \(descs.reduce(0) { $0 + $1.count }) descriptions of \(names.count) concepts to \(output) (sampled by \(model) at \(baseURL))")
    }
}

/// SIGINT as a flag that long loops poll, so they can save their work before exiting.
enum Interrupt {
    nonisolated(unsafe) static var requested = false
    static func install() {
        signal(SIGINT) { _ in
            // A second Ctrl-C exits at once.
            if Interrupt.requested { _exit(130) }
            Interrupt.requested = true
        }
    }
}

/// The settings `ex2 describe` runs with: the flags, else the run directory's.
struct DescribeSettings {
    var policy: String?
    var adapter: URL?
    var dataset: String
    var dataRoot: URL?
    var templates: URL?
    var output: String
}
