// Stage 2 of EX2 as a library call: the policy writes one description per (concept, query template) —
// 25 per concept with the reference's templates — and the result is the reference's generate format,
// a JSON list (one per concept, in class order) of lists of strings. Sampling follows the reference
// (temperature 1, top-p 1, top-k off, 32 new tokens, stop at EOS) unless told otherwise.
import Concepts
import Foundation
import Llama

public struct DescribeRequest: Sendable {
    public var policy: String
    /// A PEFT adapter directory applied to the policy (nil: the base model).
    public var adapter: URL?
    /// A built-in dataset name (class names need no data) or folder:PATH.
    public var dataset: String
    public var dataRoot: URL?
    public var split: String?
    /// A JSON list of templates; nil = the reference's 25.
    public var templates: URL?
    public var params: SamplingParameters
    public var seed: UInt64
    public var batchSize: Int

    public init(policy: String, dataset: String, dataRoot: URL? = nil, split: String? = nil, templates: URL? = nil,
                params: SamplingParameters = SamplingParameters(temperature: 1, topK: 0, topP: 1, maxNewTokens: 32),
                seed: UInt64 = 0, batchSize: Int = 32, adapter: URL? = nil) {
        self.policy = policy; self.adapter = adapter; self.dataset = dataset; self.dataRoot = dataRoot; self.split = split
        self.templates = templates; self.params = params; self.seed = seed; self.batchSize = batchSize
    }
}

public struct DescribeResult: Sendable {
    public var classNames: [String]
    /// descriptions[c][t]: concept c, template t.
    public var descriptions: [[String]]
    public init(classNames: [String], descriptions: [[String]]) { self.classNames = classNames; self.descriptions = descriptions }
}

public enum Describing {
    /// The concept names a dataset spec stands for: built-in lists for the six datasets, folder names for folder:PATH.
    public static func classNames(dataset: String, dataRoot: URL?, split: String?) throws -> [String] {
        if dataset.hasPrefix("folder:") {
            return try DatasetLoader.load(name: dataset, root: dataRoot ?? URL(fileURLWithPath: "."), split: split).classNames
        }
        return try ClassNames.builtIn(dataset)
    }

    /// `progress(done, total)` counts descriptions; returning false stops early (the rest stay empty).
    public static func run(_ r: DescribeRequest, model: LanguageModel? = nil,
                           progress: ((Int, Int) -> Bool)? = nil) throws -> DescribeResult {
        let names = try classNames(dataset: r.dataset, dataRoot: r.dataRoot, split: r.split)
        let templates = try r.templates.map(QueryTemplates.load) ?? QueryTemplates.builtIn()
        let prompts = templates.prompts(classNames: names)
        let lm = try model ?? LanguageModel(spec: r.policy, adapter: r.adapter)
        let done = try lm.generate(prompts: prompts.map(\.text), params: r.params, seed: r.seed, batchSize: r.batchSize,
                               progress: progress)
        var out = names.map { _ in [String](repeating: "", count: templates.templates.count) }
        for (p, c) in zip(prompts, done) { out[p.classIndex][p.templateIndex] = c.text }
        return DescribeResult(classNames: names, descriptions: out)
    }

    /// Writes the reference's format (a list per class of strings) atomically.
    public static func write(_ result: DescribeResult, to url: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: result.descriptions, options: [.prettyPrinted, .withoutEscapingSlashes])
        try data.write(to: url, options: .atomic)
    }
}
