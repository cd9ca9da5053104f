// Stage 1 of EX2 as a library call: the reference's train.py. Queries are every (concept, query
// template) pair, shuffled once per epoch from the seed (last partial batch dropped); each step samples
// one response per query from the adapted policy with TRL's generation settings, scores the decoded
// responses with the VLM reward, and runs one PPO step (TRL's PPOTrainer.step). A run lives in one
// output directory: config.json, metrics.jsonl, rollouts.jsonl, checkpoints (TrainCheckpoint.swift) and,
// on request, TensorBoard event files.
//
// Everything random is a function of (seed, step): the data order of an epoch, the sampling stream of
// each rollout, the mini-batch order of the PPO step. A checkpoint therefore needs no RNG state beyond
// the step, and N steps + resume + M steps gives the bits of N + M steps.
//
// Sampling: TRL samples with model.generate while PEFT's LoRA dropout modules are in training mode (they
// are never switched to eval before generate), so its rollouts come from a policy with dropout noise on
// the LoRA branch. Here rollouts come from the policy itself, the distribution whose log-probabilities the
// step recomputes; with B = 0 at the start the two are the same.
import CLIP
import Concepts
import Foundation
import Llama
import ModelFiles
import PPO
import Tensors

public struct TrainRequest: Sendable {
    public var policy: String
    public var vlm: String
    public var dataset: String
    public var dataRoot: URL?
    public var split: String?
    /// A JSON list of templates; nil = the reference's 25.
    public var templates: URL?
    public var outputDir: URL
    public var ppo: PPOConfig
    public var lora: LoRAConfig
    /// TRL's value-head dropout; recorded, but inactive: TRL's step forwards run in eval mode.
    public var valueHeadDropout: Float
    public var reward: RewardOptions
    public var steps: Int
    /// A checkpoint step_N every this many steps (0: only final/).
    public var saveFreq: Int
    public var maxNewTokens: Int
    public var samplingBatchSize: Int
    public var resume: Bool
    public var tensorboard: Bool

    /// Defaults are the reference train.py's (batch 32, mini-batch 1, accumulation 8, lr 1.41e-5, target 10,
    /// LoRA 16/32/0.05 on q, v, 1000 steps, a checkpoint every 20), TRL's otherwise.
    public init(policy: String, vlm: String, dataset: String, outputDir: URL, dataRoot: URL? = nil, split: String? = nil,
                templates: URL? = nil, ppo: PPOConfig = TrainRequest.referencePPO, lora: LoRAConfig = LoRAConfig(),
                valueHeadDropout: Float = 0.1, reward: RewardOptions = RewardOptions(), steps: Int = 1000, saveFreq: Int = 20,
                maxNewTokens: Int = 32, samplingBatchSize: Int = 32, resume: Bool = false, tensorboard: Bool = false) {
        self.policy = policy; self.vlm = vlm; self.dataset = dataset; self.outputDir = outputDir; self.dataRoot = dataRoot
        self.split = split; self.templates = templates; self.ppo = ppo; self.lora = lora; self.valueHeadDropout = valueHeadDropout
        self.reward = reward; self.steps = steps; self.saveFreq = saveFreq; self.maxNewTokens = maxNewTokens
        self.samplingBatchSize = samplingBatchSize; self.resume = resume; self.tensorboard = tensorboard
    }

    /// The reference's PPOConfig (train.py): TRL's defaults with these set.
    public static var referencePPO: PPOConfig {
        var c = PPOConfig()
        c.learningRate = 1.41e-5; c.batchSize = 32; c.miniBatchSize = 1; c.gradientAccumulationSteps = 8
        c.target = 10; c.targetKL = 0.1
        return c
    }

    func validate() throws {
        try ppo.validate()
        func bad(_ m: String) -> TrainError { .badRequest(m) }
        guard steps > 0 else { throw bad("--steps must be positive") }
        guard saveFreq >= 0 else { throw bad("--save-freq must be 0 (final checkpoint only) or positive") }
        guard maxNewTokens > 0, samplingBatchSize > 0 else { throw bad("--max-new-tokens and the sampling batch size must be positive") }
        guard lora.rank > 0, lora.alpha > 0, !lora.targets.isEmpty else { throw bad("LoRA needs a positive rank and alpha and at least one target module") }
        guard lora.dropout >= 0, lora.dropout < 1, valueHeadDropout >= 0, valueHeadDropout < 1 else { throw bad("dropout probabilities must be in [0, 1)") }
    }
}

public enum TrainError: Error, CustomStringConvertible {
    case badRequest(String)
    case existingRun(dir: String)
    case resumeMismatch(dir: String, differences: [String])
    case nonFinite(step: Int, message: String)
    case tooFewQueries(queries: Int, batch: Int)
    /// Raised inside a step when the caller asked to stop; the trainer undid the step's partial work.
    case interrupted

    public var description: String {
        switch self {
        case .badRequest(let m): return "train: \(m)"
        case .existingRun(let d):
            return "\(d) already holds a training run (config.json); pass --resume to continue it, or choose another --output-dir"
        case let .resumeMismatch(d, diffs):
            return "\(d): cannot resume, the run was started with other settings: \(diffs.joined(separator: "; ")). Use the original settings or a new --output-dir"
        case let .nonFinite(step, m):
            return "step \(step): \(m). Training stopped; the last good state is kept as a checkpoint (resume with --resume, perhaps with a lower --learning-rate)"
        case let .tooFewQueries(q, b):
            return "the dataset gives \(q) queries (concepts x templates), fewer than one batch of \(b); lower --batch-size"
        case .interrupted: return "interrupted"
        }
    }
}

/// One (concept, template) query of a step and what came of it.
public struct RolloutRecord: Sendable, Codable, Equatable {
    public var classIndex: Int
    public var className: String
    public var template: Int
    public var queryIds: [Int]
    public var responseIds: [Int]
    public var response: String
    public var score: Float

    enum CodingKeys: String, CodingKey {
        case classIndex = "class", className = "class_name", template, queryIds = "query_ids", responseIds = "response_ids"
        case response, score
    }
}

public struct StepRecord: Sendable {
    /// 1-based: the number of steps done once this one is.
    public var step: Int
    /// TRL's stat names, env/reward_mean and env/reward_std, and time/ex2/* (seconds).
    public var stats: [String: Double]
    public var rollouts: [RolloutRecord]
    /// TRL's warnings (negative KL, mini-batches skipped over ratio_threshold).
    public var warnings: [String]
}

public enum TrainPhase: String, Sendable { case loadingPolicy, loadingVLM, rewardImages, sampling, scoring, optimising }

public final class Trainer: @unchecked Sendable {  // reason: one training loop owns it
    public let request: TrainRequest
    public let policy: LanguageModel
    public let reward: RewardModel
    public let state: PPOState
    public let prompts: [ConceptPrompt]
    public let queryTokens: [[Int]]
    /// Steps completed so far (the next step to run is step + 1).
    public private(set) var step = 0
    public let batchesPerEpoch: Int
    /// The checkpoint this run resumed from, if any.
    public private(set) var resumedFrom: URL?
    let stopTokens: Set<Int>
    let metricsLog: JSONLines
    let rolloutsLog: JSONLines
    var events: TensorBoardWriter?
    var checkpointsWritten = 0
    /// Test hook: called with the state and the 1-based step just before each PPO step (fault injection).
    var beforeOptimising: ((PPOState, Int) -> Void)?

    /// Loads the policy and the VLM (or takes them), embeds the reward images, prepares the output
    /// directory and, with `resume`, restores the latest checkpoint in it.
    public init(_ r: TrainRequest, policy given: LanguageModel? = nil, reward givenReward: RewardModel? = nil,
                progress: ((TrainPhase, Int, Int) -> Void)? = nil) throws {
        try r.validate()
        request = r
        let fm = FileManager.default
        let dir = r.outputDir
        let configURL = dir.appendingPathComponent("config.json")
        if fm.fileExists(atPath: configURL.path), !r.resume { throw TrainError.existingRun(dir: dir.path) }

        progress?(.loadingPolicy, 0, 1)
        policy = try given ?? LanguageModel(spec: r.policy)
        stopTokens = policy.stopTokens
        if let reward = givenReward {
            self.reward = reward
        } else {
            progress?(.loadingVLM, 0, 1)
            let clip = try VLMLoader.load(spec: r.vlm)
            let root = r.dataRoot ?? URL(fileURLWithPath: fm.currentDirectoryPath)
            let dataset = try DatasetLoader.load(name: r.dataset, root: root, split: r.split,
                                                 options: .init(skipMissingImages: r.reward.skipUnreadable))
            self.reward = try RewardModel(clip: clip, dataset: dataset, options: r.reward) { progress?(.rewardImages, $0, $1) }
        }
        let templates = try r.templates.map(QueryTemplates.load) ?? QueryTemplates.builtIn()
        let queries = templates.prompts(classNames: reward.classNames)
        prompts = queries
        // As the reference's tokenizer call: BOS only where the model's tokenizer adds one.
        let lm = policy
        queryTokens = queries.map { lm.encode($0.text) }
        batchesPerEpoch = queries.count / r.ppo.batchSize
        guard batchesPerEpoch > 0 else { throw TrainError.tooFewQueries(queries: queries.count, batch: r.ppo.batchSize) }

        let adapters = LoRAState(model: lm.model.config, config: r.lora, valueHead: true, seed: r.ppo.seed)
        state = PPOState(adapters: adapters, config: r.ppo)

        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let settings = Self.settings(r)
        if r.resume, fm.fileExists(atPath: configURL.path) {
            let old = try TrainCheckpoint.readSettings(configURL)
            let diffs = Self.differences(old, settings)
            if !diffs.isEmpty { throw TrainError.resumeMismatch(dir: dir.path, differences: diffs) }
        }
        if r.resume, let latest = try TrainCheckpoint.latest(in: dir) {
            step = try TrainCheckpoint.load(latest, into: state, model: policy.model.config)
            resumedFrom = latest
        }
        try TrainCheckpoint.writeSettings(settings, to: configURL)
        metricsLog = try JSONLines(url: dir.appendingPathComponent("metrics.jsonl"), keepThroughStep: step)
        rolloutsLog = try JSONLines(url: dir.appendingPathComponent("rollouts.jsonl"), keepThroughStep: step)
        if r.tensorboard { events = try TensorBoardWriter(directory: dir.appendingPathComponent("tensorboard")) }
    }

    /// The queries of step `s` (0-based): batch s mod batchesPerEpoch of epoch s / batchesPerEpoch's order.
    public func batch(step s: Int) -> [Int] {
        let epoch = s / batchesPerEpoch, b = s % batchesPerEpoch, bs = request.ppo.batchSize
        var rng = RandomStream(seed: Generator.sequenceSeed(request.ppo.seed ^ 0xDA7A_0DE5_0000_0000, epoch))
        return Array(PPOStep.permutation(prompts.count, &rng)[b * bs..<(b + 1) * bs])
    }

    /// Runs the next step: sample, score, optimise, log, and checkpoint when --save-freq says so. On
    /// interruption or a non-finite value the step's partial changes are undone before the error.
    @discardableResult
    public func runStep(shouldStop: (() -> Bool)? = nil, phase: ((TrainPhase, Int, Int) -> Void)? = nil) throws -> StepRecord {
        let s = step, c = request.ppo
        let idx = batch(step: s)
        let before = state.snapshot()
        let t0 = Date()
        func undo(_ error: Error) -> Error {
            state.restore(before)
            switch error {
            case PPOError.cancelled: return TrainError.interrupted
            case PPOError.nonFinite(let m): return TrainError.nonFinite(step: s + 1, message: m)
            default: return error
            }
        }

        // Rollouts from the adapted policy, TRL's settings: temperature 1, no top-k/top-p, stop after the first EOS.
        phase?(.sampling, 0, idx.count)
        let stepSeed = Generator.sequenceSeed(c.seed ^ 0x5A3B_1E00_0000_0000, s)
        let gen = Generator(model: policy.model, stopTokens: stopTokens, adapters: state.adapters, recordsPolicyOutputs: true)
        let params = SamplingParameters(temperature: 1, topK: 0, topP: 1, maxNewTokens: request.maxNewTokens)
        let results = gen.generate(prompts: idx.map { queryTokens[$0] }, seeds: idx.indices.map { Generator.sequenceSeed(stepSeed, $0) },
                                   params: params, batchSize: request.samplingBatchSize) { done, total in
            phase?(.sampling, done, total)
            return shouldStop?() != true
        }
        if results.count < idx.count || shouldStop?() == true { throw undo(PPOError.cancelled) }
        let tSample = Date()

        // TRL's generate(remove_padding=True) keeps the first EOS in the response; the decoded text skips
        // special tokens, as the reference's batch_decode does.
        phase?(.scoring, 0, idx.count)
        let texts = results.map(policy.responseText)
        let scores = try reward.rewards(descriptions: texts, classes: idx.map { prompts[$0].classIndex })
        if let bad = scores.firstIndex(where: { !$0.isFinite }) {
            throw undo(PPOError.nonFinite("the VLM's score of rollout \(bad) is \(scores[bad])"))
        }
        let tReward = Date()

        phase?(.optimising, 0, 1)
        beforeOptimising?(state, s + 1)
        // The sampler's log-probs and values are the step's old ones (same adapters, no dropout): no second forward.
        let rollouts = idx.indices.map {
            Rollout(query: queryTokens[idx[$0]], response: results[$0].tokens, score: scores[$0],
                    policyLogProbs: results[$0].policyLogProbs, values: results[$0].values)
        }
        var stats: [String: Double]
        do {
            stats = try PPOStep.run(model: policy.model, state: state, rollouts: rollouts, config: c, shouldStop: shouldStop)
        } catch { throw undo(error) }
        let n = state.adapters.count, p = state.adapters.parameters
        if let bad = (0..<n).first(where: { !p[$0].isFinite }) {
            throw undo(PPOError.nonFinite("parameter \(bad) became \(p[bad]) in the update"))
        }
        let tStep = Date()

        (stats["env/reward_mean"], stats["env/reward_std"]) = PPOMath.meanAndStd(scores.map { Double($0) })
        stats["time/ex2/sampling"] = tSample.timeIntervalSince(t0)
        stats["time/ex2/reward"] = tReward.timeIntervalSince(tSample)
        stats["time/ex2/ppo_step"] = tStep.timeIntervalSince(tReward)
        var warnings: [String] = []
        // TRL warns below -1 (small negative values are sampling noise of the estimate).
        if let kl = stats["objective/kl"], kl < -1 {
            warnings.append("KL divergence is starting to become negative (objective/kl = \(String(format: "%.2f", kl))): this may precede failed training; check the sampling settings and hyperparameters")
        }
        if state.lastSkippedMiniBatches > 0 {
            warnings.append("\(state.lastSkippedMiniBatches) mini-batch(es) skipped: the mean ratio exceeded ratio_threshold \(c.ratioThreshold)")
        }
        let records = idx.indices.map { i in
            RolloutRecord(classIndex: prompts[idx[i]].classIndex, className: reward.classNames[prompts[idx[i]].classIndex],
                          template: prompts[idx[i]].templateIndex, queryIds: rollouts[i].query, responseIds: rollouts[i].response,
                          response: texts[i], score: scores[i])
        }
        step = s + 1
        stats["time/ex2/total"] = Date().timeIntervalSince(t0)
        try metricsLog.append(step: step, fields: ["stats": stats, "warnings": warnings])
        try rolloutsLog.append(step: step, fields: ["rollouts": records.map(Self.json)])
        try events?.scalars(step: step, stats)
        if request.saveFreq > 0, step % request.saveFreq == 0 { try saveCheckpoint(named: "step_\(step)") }
        return StepRecord(step: step, stats: stats, rollouts: records, warnings: warnings)
    }

    public enum Outcome: Sendable, Equatable { case finished, interrupted }

    /// Runs the remaining steps and writes final/. Interrupted (shouldStop), it keeps the state of the last
    /// complete step as a checkpoint; on a non-finite value it does the same, then throws.
    public func run(shouldStop: (() -> Bool)? = nil, phase: ((TrainPhase, Int, Int) -> Void)? = nil,
                    onStep: ((StepRecord) -> Void)? = nil) throws -> Outcome {
        while step < request.steps {
            if shouldStop?() == true { try saveCurrentIfNeeded(); return .interrupted }
            do {
                let record = try runStep(shouldStop: shouldStop, phase: phase)
                onStep?(record)
            } catch TrainError.interrupted {
                try saveCurrentIfNeeded()
                return .interrupted
            } catch let error as TrainError {
                if case .nonFinite = error { try saveCurrentIfNeeded() }
                throw error
            }
        }
        try saveCheckpoint(named: "final")
        return .finished
    }

    /// The checkpoint of the current state, unless the latest one already holds it.
    public func saveCurrentIfNeeded() throws {
        guard step > 0 else { return }
        if let latest = try TrainCheckpoint.latest(in: request.outputDir), (try? TrainCheckpoint.step(of: latest)) == step { return }
        try saveCheckpoint(named: "step_\(step)")
    }

    /// Writes checkpoint `name` (step_N or final) atomically.
    public func saveCheckpoint(named name: String) throws {
        checkpointsWritten += 1
        let info = TrainCheckpoint.Info(step: step, epoch: step / batchesPerEpoch, batchInEpoch: step % batchesPerEpoch,
                                        batchesPerEpoch: batchesPerEpoch, queries: prompts.count, seed: request.ppo.seed)
        try TrainCheckpoint.save(state, info: info, to: request.outputDir.appendingPathComponent(name), baseModel: request.policy,
                                 ordinal: checkpointsWritten)
    }

    static func json(_ r: RolloutRecord) -> [String: Any] {
        ["class": r.classIndex, "class_name": r.className, "template": r.template, "query_ids": r.queryIds,
         "response_ids": r.responseIds, "response": r.response, "score": Double(r.score)]
    }

    // MARK: settings

    /// Every setting of the run, as config.json holds it.
    static func settings(_ r: TrainRequest) -> [String: Any] {
        let c = r.ppo
        var ppo: [String: Any] = [
            "learning_rate": c.learningRate, "batch_size": c.batchSize, "mini_batch_size": c.miniBatchSize,
            "gradient_accumulation_steps": c.gradientAccumulationSteps, "ppo_epochs": c.ppoEpochs,
            "init_kl_coef": c.initKLCoef, "adap_kl_ctrl": c.adapKLCtrl, "kl_penalty": c.klPenalty.rawValue, "target": c.target,
            "horizon": c.horizon, "target_kl": c.targetKL, "early_stopping": c.earlyStopping, "gamma": Double(c.gamma),
            "lam": Double(c.lam), "cliprange": Double(c.cliprange), "cliprange_value": Double(c.cliprangeValue),
            "vf_coef": Double(c.vfCoef), "ratio_threshold": Double(c.ratioThreshold), "whiten_rewards": c.whitenRewards,
            "use_score_scaling": c.useScoreScaling, "use_score_norm": c.useScoreNorm, "seed": c.seed,
        ]
        ppo["score_clip"] = c.scoreClip.map { Double($0) } ?? NSNull()
        ppo["max_grad_norm"] = c.maxGradNorm ?? NSNull()
        return [
            "format": "ex2-train-run", "version": 1,
            "policy": r.policy, "vlm": r.vlm, "dataset": r.dataset, "data_root": r.dataRoot?.path ?? NSNull(),
            "split": r.split ?? NSNull(), "templates": r.templates?.path ?? NSNull(),
            "ppo": ppo,
            "lora": ["r": r.lora.rank, "lora_alpha": Double(r.lora.alpha), "lora_dropout": Double(r.lora.dropout),
                     "target_modules": r.lora.targets.map(\.rawValue), "use_rslora": r.lora.useRSLoRA],
            "value_head_dropout": Double(r.valueHeadDropout),
            "num_images_for_reward": r.reward.imagesPerClass, "reward_scale": r.reward.scale.map { Double($0) } ?? NSNull(),
            "generation": ["temperature": 1, "top_k": 0, "top_p": 1, "max_new_tokens": r.maxNewTokens, "stop_at_eos": true],
            "steps": r.steps, "save_freq": r.saveFreq,
            "versions": ["ex2": EX2Version.string, "trl_semantics": "0.7.5 PPOTrainer.step", "peft_format": "LORA"],
        ]
    }

    /// Settings a resumed run may change: how long it runs, how often it saves, where it logs.
    static let resumable: Set<String> = ["steps", "save_freq", "versions"]

    static func differences(_ a: [String: Any], _ b: [String: Any]) -> [String] {
        var out: [String] = []
        for key in Set(a.keys).union(b.keys).sorted() where !resumable.contains(key) {
            let x = a[key].map(canonical), y = b[key].map(canonical)
            if x != y { out.append("\(key) was \(x ?? "unset"), now \(y ?? "unset")") }
        }
        return out
    }

    static func canonical(_ v: Any) -> String {
        guard JSONSerialization.isValidJSONObject([v]),
              let d = try? JSONSerialization.data(withJSONObject: [v], options: [.sortedKeys, .withoutEscapingSlashes]) else { return "\(v)" }
        return String(decoding: d, as: UTF8.self).dropFirst().dropLast().description
    }
}

public enum EX2Version {
    public static let string = "0.4.0"
}
