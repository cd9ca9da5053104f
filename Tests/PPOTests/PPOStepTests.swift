// One PPO step against TRL's PPOTrainer.step (legacy trainer of TRL 0.11.4) on a tiny random Llama with a
// non-zero LoRA adapter on q and v and a value head, no dropout (fixture from
// scripts/fixtures/ppo_step_fixtures.py): (a) one mini-batch = the whole batch, 4 epochs; (b) mini-batches
// of one with gradient accumulation over 2, 2 epochs; (c) the "full" KL penalty. The permutations TRL drew are replayed. Stats,
// updated adapter and value head are compared.
import Foundation
import Llama
import ModelFiles
import XCTest
@testable import PPO

final class PPOStepTests: XCTestCase {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var fixtures: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("ppo_step") }

    func check(_ name: String, configure: (inout PPOConfig) -> Void) throws {
        let dir = Self.fixtures
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path) else {
            throw XCTSkip("SKIPPED: fixture \(dir.path)/\(name) is missing; run scripts/fixtures/ppo_step_fixtures.py")
        }
        let model = try DecoderModel.load(hfDirectory: Self.root.appendingPathComponent("Tests/LlamaTests/Fixtures/train/tiny-llama-gqa/model"))
        let adapters = try PEFTAdapter.load(dir.appendingPathComponent("start/adapter"), model: model.config,
                                            valueHead: dir.appendingPathComponent("start/value_head.safetensors"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("rollouts.json"))) as! [String: Any]
        let q = (json["queries"] as! [[NSNumber]]).map { $0.map(\.intValue) }, r = (json["responses"] as! [[NSNumber]]).map { $0.map(\.intValue) }
        let sc = (json["scores"] as! [NSNumber]).map(\.floatValue)
        let rollouts = (0..<q.count).map { Rollout(query: q[$0], response: r[$0], score: sc[$0]) }
        var c = PPOConfig()
        c.batchSize = rollouts.count; c.learningRate = 1e-3
        configure(&c)
        let order = (try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("\(name)/minibatch_order.json"))) as! [[NSNumber]])
            .map { $0.map(\.intValue) }
        let state = PPOState(adapters: adapters, config: c)
        let stats = try PPOStep.run(model: model, state: state, rollouts: rollouts, config: c, order: order)

        let want = try PEFTAdapter.load(dir.appendingPathComponent("\(name)/expected"), model: model.config,
                                        valueHead: dir.appendingPathComponent("\(name)/expected/value_head.safetensors"))
        let start = try PEFTAdapter.load(dir.appendingPathComponent("start/adapter"), model: model.config,
                                         valueHead: dir.appendingPathComponent("start/value_head.safetensors"))
        var worst: Float = 0, moved: Float = 0
        for i in 0..<want.count {
            worst = max(worst, abs(state.adapters.parameters[i] - want.parameters[i]))
            moved = max(moved, abs(want.parameters[i] - start.parameters[i]))
        }
        print("PPO step \(name): max |param - TRL| \(worst), TRL moved the parameters by up to \(moved)")
        XCTAssertGreaterThan(moved, 1e-3, "the fixture's step must change the parameters")
        XCTAssertLessThan(worst, 1e-6, "\(name): updated adapter and value head (fp32; TRL moved them by \(moved))")

        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("\(name)/stats.json"))) as! [String: Any]
        var compared = 0, worstStat = 0.0, worstKey = ""
        for (k, v) in expected {
            guard let n = v as? NSNumber, let mine = stats[k] ?? (k == "kl_ctl.value" ? state.kl.value : nil) else { continue }
            let e = abs(mine - n.doubleValue) / max(1e-3, abs(n.doubleValue))
            if e > worstStat { worstStat = e; worstKey = k }
            compared += 1
        }
        print("PPO step \(name): \(compared) stats compared, worst relative difference \(worstStat) (\(worstKey))")
        XCTAssertGreaterThan(compared, 20)
        XCTAssertLessThan(worstStat, 5e-4, "\(name): stat \(worstKey)")
    }

    /// Rollouts that carry the old policy's log-probs and values (as the sampler records them, bits pinned
    /// by GenerationTests) give exactly the step that recomputes them; carried numbers are really used.
    func testCarriedOldLogProbsAndValuesGiveTheRecomputedStep() throws {
        let dir = Self.fixtures
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("rollouts.json").path) else {
            throw XCTSkip("SKIPPED: fixture \(dir.path)/rollouts.json is missing; run scripts/fixtures/ppo_step_fixtures.py")
        }
        let model = try DecoderModel.load(hfDirectory: Self.root.appendingPathComponent("Tests/LlamaTests/Fixtures/train/tiny-llama-gqa/model"))
        func start() throws -> LoRAState {
            try PEFTAdapter.load(dir.appendingPathComponent("start/adapter"), model: model.config,
                                 valueHead: dir.appendingPathComponent("start/value_head.safetensors"))
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("rollouts.json"))) as! [String: Any]
        let q = (json["queries"] as! [[NSNumber]]).map { $0.map(\.intValue) }, r = (json["responses"] as! [[NSNumber]]).map { $0.map(\.intValue) }
        let sc = (json["scores"] as! [NSNumber]).map(\.floatValue)
        let plain = (0..<q.count).map { Rollout(query: q[$0], response: r[$0], score: sc[$0]) }
        let a0 = try start()
        let old = try model.trainingForward(plain.map { TrainingSequence(tokens: $0.query + $0.response, scoredFrom: $0.query.count - 1) },
                                            adapters: a0, arena: TrainingArena())
        var carried: [Rollout] = [], at = 0
        for p in plain {
            let n = p.response.count
            carried.append(Rollout(query: p.query, response: p.response, score: p.score, policyLogProbs: Array(old.logProbs[at..<at + n]),
                                   values: Array(old.values[at..<at + n])))
            at += n
        }
        var c = PPOConfig()
        c.batchSize = plain.count; c.learningRate = 1e-3; c.miniBatchSize = 2; c.gradientAccumulationSteps = 1; c.ppoEpochs = 2
        let order = [Array(0..<plain.count), Array((0..<plain.count).reversed())]
        func step(_ rollouts: [Rollout]) throws -> ([Float], [String: Double]) {
            let state = PPOState(adapters: try start(), config: c)
            let stats = try PPOStep.run(model: model, state: state, rollouts: rollouts, config: c, order: order)
            return (Array(UnsafeBufferPointer(start: state.adapters.parameters, count: state.adapters.count)), stats)
        }
        let (p1, s1) = try step(plain), (p2, s2) = try step(carried)
        XCTAssertEqual(p1, p2, "parameters after the step")
        for (k, v) in s1 where !k.hasPrefix("time/") { XCTAssertEqual(v, s2[k], "stat \(k)") }
        var shifted = carried
        for i in shifted.indices { shifted[i].values = shifted[i].values!.map { $0 + 0.5 } }
        XCTAssertNotEqual(try step(shifted).0, p1, "carried values must be what the step uses")
    }

    func testWholeBatchFourEpochsMatchesTRL() throws {
        try check("whole") { c in c.miniBatchSize = 4; c.gradientAccumulationSteps = 1; c.ppoEpochs = 4 }
    }

    func testMiniBatchesWithAccumulationMatchTRL() throws {
        try check("accum") { c in c.miniBatchSize = 1; c.gradientAccumulationSteps = 2; c.ppoEpochs = 2 }
    }

    /// kl_penalty "full": the per-token KL of the whole next-token distributions.
    func testFullKLPenaltyMatchesTRL() throws {
        try check("full") { c in c.miniBatchSize = 2; c.gradientAccumulationSteps = 1; c.ppoEpochs = 2; c.klPenalty = .full }
    }
}
