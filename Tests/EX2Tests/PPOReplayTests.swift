// `ex2 ppo-step`'s library call: replaying TRL's logged step (fixture Tests/PPOTests/Fixtures/ppo_step,
// mini-batches of one with accumulation 2, TRL's permutations) writes TRL's updated adapter and value head
// in PEFT/TRL format and the stats; bad rollouts and orders are refused naming the file.
import EX2
import Foundation
import Llama
import PPO
import XCTest

final class PPOReplayTests: XCTestCase {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testReplayWritesTRLsUpdate() throws {
        let f = root.appendingPathComponent("Tests/PPOTests/Fixtures/ppo_step")
        let base = root.appendingPathComponent("Tests/LlamaTests/Fixtures/train/tiny-llama-gqa/model")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-ppo-step-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        var c = PPOConfig()
        c.batchSize = 0; c.learningRate = 1e-3; c.miniBatchSize = 1; c.gradientAccumulationSteps = 2; c.ppoEpochs = 2
        let request = PPOReplayRequest(policy: base.path, adapter: f.appendingPathComponent("start/adapter"),
                                       valueHead: f.appendingPathComponent("start/value_head.safetensors"),
                                       rollouts: f.appendingPathComponent("rollouts.json"), output: out,
                                       minibatchOrder: f.appendingPathComponent("accum/minibatch_order.json"), config: c, loraDropout: 0)
        let stats = try PPOReplay.run(request)
        let model = try DecoderModel.load(hfDirectory: base)
        let got = try PEFTAdapter.load(out, model: model.config)
        let want = try PEFTAdapter.load(f.appendingPathComponent("accum/expected"), model: model.config,
                                        valueHead: f.appendingPathComponent("accum/expected/value_head.safetensors"))
        XCTAssertEqual(got.count, want.count)
        let worst = (0..<want.count).map { abs(got.parameters[$0] - want.parameters[$0]) }.max()!
        XCTAssertLessThan(worst, 1e-6, "replayed step vs TRL's")
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("stats.json"))) as! [String: Double]
        XCTAssertEqual(written["objective/kl"]!, stats["objective/kl"]!, accuracy: 1e-12)
        for k in ["objective/kl", "objective/kl_coef", "objective/entropy", "ppo/loss/total", "ppo/policy/clipfrac", "ppo/val/var_explained",
                  "ppo/mean_scores", "tokens/responses_len_mean", "time/ppo/total"] {
            XCTAssertNotNil(written[k], "stats.json lacks \(k)")
        }
    }

    func testBadInputsAreRefusedNamingTheFile() throws {
        let f = root.appendingPathComponent("Tests/PPOTests/Fixtures/ppo_step")
        let base = root.appendingPathComponent("Tests/LlamaTests/Fixtures/train/tiny-llama-gqa/model")
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-ppo-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        func attempt(rollouts: String, order: String? = nil, config: (inout PPOConfig) -> Void = { _ in }) -> String {
            let r = tmp.appendingPathComponent("rollouts-\(UUID().uuidString).json")
            try? rollouts.write(to: r, atomically: true, encoding: .utf8)
            var o: URL? = nil
            if let order { o = tmp.appendingPathComponent("order.json"); try? order.write(to: o!, atomically: true, encoding: .utf8) }
            var c = PPOConfig(); c.batchSize = 0; c.miniBatchSize = 1; c.ppoEpochs = 1
            config(&c)
            let req = PPOReplayRequest(policy: base.path, adapter: f.appendingPathComponent("start/adapter"),
                                       valueHead: f.appendingPathComponent("start/value_head.safetensors"), rollouts: r,
                                       output: tmp.appendingPathComponent("out"), minibatchOrder: o, config: c)
            do { try PPOReplay.run(req); return "no error" } catch { return "\(error)" }
        }
        let ok = #"{"queries": [[5, 6], [7]], "responses": [[8, 9], [10, 11]], "scores": [1.0, -1.0], "extra": 1}"#
        XCTAssertEqual(attempt(rollouts: ok), "no error")
        XCTAssertTrue(attempt(rollouts: "not json").contains("is not a rollouts file"))
        XCTAssertTrue(attempt(rollouts: #"{"queries": [[5]], "responses": [[8], [9]], "scores": [1]}"#).contains("must match"))
        XCTAssertTrue(attempt(rollouts: #"{"queries": [[5]], "responses": [[9999]], "scores": [1]}"#).contains("outside the model's vocabulary"))
        XCTAssertTrue(attempt(rollouts: #"{"queries": [[5]], "responses": [[]], "scores": [1]}"#).contains("empty"))
        XCTAssertTrue(attempt(rollouts: ok, order: "[[0, 0]]").contains("permutation"))
        XCTAssertTrue(attempt(rollouts: ok, order: "{}").contains("is not a mini-batch order"))
        XCTAssertTrue(attempt(rollouts: ok) { $0.miniBatchSize = 3 }.contains("not a multiple"))
    }
}
