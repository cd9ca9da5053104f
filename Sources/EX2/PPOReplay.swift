// `ex2 ppo-step` as a library call: one PPO step replayed on logged rollouts, without sampling or a VLM.
// The way a user debugs a KL blow-up from a run's rollouts, and the way parity with TRL is shown. Reads
// the policy (base + PEFT adapter + value head), a rollouts file ({"queries", "responses", "scores"};
// other keys ignored) and optionally the mini-batch order; writes the updated adapter (PEFT format), the
// value head and TRL's stats.
import Foundation
import Llama
import ModelFiles
import PPO

public struct PPOReplayRequest: Sendable {
    public var policy: String
    public var adapter: URL
    public var valueHead: URL
    public var rollouts: URL
    public var output: URL
    public var minibatchOrder: URL?
    public var config: PPOConfig
    /// Written to the adapter's config; TRL's PPO forwards run in eval mode, so dropout never acts in a step.
    public var loraDropout: Float?

    public init(policy: String, adapter: URL, valueHead: URL, rollouts: URL, output: URL, minibatchOrder: URL? = nil,
                config: PPOConfig, loraDropout: Float? = nil) {
        self.policy = policy; self.adapter = adapter; self.valueHead = valueHead; self.rollouts = rollouts
        self.output = output; self.minibatchOrder = minibatchOrder; self.config = config; self.loraDropout = loraDropout
    }
}

public struct PPOReplayError: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}

public enum PPOReplay {
    struct RolloutsFile: Decodable {
        var queries: [[Int]]
        var responses: [[Int]]
        var scores: [Float]
    }

    public static func readRollouts(_ url: URL) throws -> [Rollout] {
        let r: RolloutsFile
        do { r = try JSONDecoder().decode(RolloutsFile.self, from: Data(contentsOf: url)) } catch {
            throw PPOReplayError(file: url.path, message: "is not a rollouts file ({\"queries\": [[ids]], \"responses\": [[ids]], \"scores\": [numbers]}): \(error)")
        }
        guard r.queries.count == r.responses.count, r.queries.count == r.scores.count else {
            throw PPOReplayError(file: url.path, message: "has \(r.queries.count) queries, \(r.responses.count) responses and \(r.scores.count) scores; they must match")
        }
        return (0..<r.queries.count).map { Rollout(query: r.queries[$0], response: r.responses[$0], score: r.scores[$0]) }
    }

    public static func readOrder(_ url: URL) throws -> [[Int]] {
        do { return try JSONDecoder().decode([[Int]].self, from: Data(contentsOf: url)) } catch {
            throw PPOReplayError(file: url.path, message: "is not a mini-batch order (a JSON list with one permutation of 0..<batch per PPO epoch): \(error)")
        }
    }

    /// Runs the step and writes output/ (adapter_config.json, adapter_model.safetensors,
    /// value_head.safetensors, stats.json). Returns the stats.
    @discardableResult
    public static func run(_ r: PPOReplayRequest, model given: DecoderModel? = nil) throws -> [String: Double] {
        let rollouts = try readRollouts(r.rollouts)
        let order = try r.minibatchOrder.map(readOrder)
        // Token ids in, numbers out: the step needs the weights, not the tokenizer.
        let model: DecoderModel
        if let given { model = given } else {
            switch try ModelLocator().resolve(r.policy) {
            case .gguf(let url): model = try DecoderModel.load(gguf: GGUFFile(url: url))
            case .hfDirectory(let dir): model = try DecoderModel.load(hfDirectory: dir)
            }
        }
        let adapters = try PEFTAdapter.load(r.adapter, model: model.config, valueHead: r.valueHead)
        for (i, ro) in rollouts.enumerated() {
            if let bad = (ro.query + ro.response).first(where: { $0 < 0 || $0 >= model.config.vocabSize }) {
                throw PPOReplayError(file: r.rollouts.path, message: "rollout \(i) holds token id \(bad), outside the model's vocabulary of \(model.config.vocabSize)")
            }
        }
        var config = r.config
        if config.batchSize <= 0 { config.batchSize = rollouts.count }
        let state = PPOState(adapters: adapters, config: config)
        let stats = try PPOStep.run(model: model, state: state, rollouts: rollouts, config: config, order: order)
        var saved: LoRAState = adapters
        if let p = r.loraDropout, p != adapters.config.dropout {
            var cfg = adapters.config
            cfg.dropout = p
            saved = LoRAState(model: model.config, config: cfg, valueHead: adapters.valueHeadOffset != nil, seed: 0)
            saved.copyParameters(from: adapters)
        }
        try PEFTAdapter.save(saved, to: r.output, baseModel: r.policy)
        let data = try JSONSerialization.data(withJSONObject: stats, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: r.output.appendingPathComponent("stats.json"), options: .atomic)
        return stats
    }
}
