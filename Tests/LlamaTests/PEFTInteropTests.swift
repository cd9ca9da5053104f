// PEFT interop on SmolLM2-135M: an adapter saved by Python PEFT (r 2 on q, k, v, o, gate; non-zero B),
// applied here to the GGUF, gives PEFT's greedy continuation, log-probs and last-position logits
// (fixture train/peft_smollm2 from scripts/fixtures/train_fixtures.py). And an adapter saved here is
// written with the expected logits beside it, for scripts/fixtures/peft_check_ours.py to load in PEFT.
import Foundation
import ModelFiles
import Tensors
import XCTest
@testable import Llama

final class PEFTInteropTests: XCTestCase {
    func testPEFTAdapterOnTheGGUFGivesPEFTsContinuation() throws {
        let model = try DecoderModel.load(gguf: GGUFFile(url: TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf")))
        let dir = TestPaths.fixtures.appendingPathComponent("train/peft_smollm2")
        let expected = try loadJSON(dir.appendingPathComponent("expected.json"))
        let adapters = try PEFTAdapter.load(dir.appendingPathComponent("adapter"), model: model.config)
        XCTAssertEqual(adapters.config.targets, [.q, .k, .v, .o, .gate])
        let probes = ints(expected["probe_indices"])
        var worstLogit: Float = 0, worstLogProb: Float = 0
        for p in expected["prompts"] as! [[String: Any]] {
            let ids = ints(p["prompt_ids"]), greedy = ints(p["greedy"]), margins = floats(p["greedy_margins"])
            let want = floats(p["greedy_logprobs"])
            let gen = Generator(model: model, stopTokens: [], adapters: adapters)
            let got = gen.generate(prompts: [ids], seeds: [0], params: SamplingParameters(temperature: 0, maxNewTokens: greedy.count))[0]
            // Identical up to the first near-tie (a top-2 margin below 1e-3 could go either way in fp32).
            let firstTie = margins.firstIndex { $0 < 1e-3 } ?? greedy.count
            XCTAssertEqual(Array(got.tokens.prefix(firstTie)), Array(greedy.prefix(firstTie)), "greedy continuation")
            for i in 0..<firstTie { worstLogProb = max(worstLogProb, abs(got.logprobs[i] - want[i])) }
            XCTAssertNotEqual(greedy, ints(p["base_greedy"]), "the fixture's adapter must change the continuation")
            // And the base model gives the base continuation, so the adapter is what made the difference.
            let base = Generator(model: model, stopTokens: []).generate(prompts: [ids], seeds: [0], params: SamplingParameters(temperature: 0, maxNewTokens: greedy.count))[0]
            let baseGreedy = ints(p["base_greedy"]), baseMargins = floats(p["base_greedy_margins"])
            let baseTie = baseMargins.firstIndex { $0 < 1e-3 } ?? baseGreedy.count
            XCTAssertEqual(Array(base.tokens.prefix(baseTie)), Array(baseGreedy.prefix(baseTie)))

            let cache = model.makeCache(slots: 1, capacity: ids.count)
            let logits = model.forward([SequenceChunk(slot: 0, tokens: ids, startPosition: 0)], cache: cache, adapters: adapters)
            for (i, v) in zip(probes, floats(p["last_logits_at_probes"])) { worstLogit = max(worstLogit, abs(logits[i] - v)) }
            for (i, v) in zip(ints(p["top_ids"]), floats(p["top_logits"])) { worstLogit = max(worstLogit, abs(logits[i] - v)) }
        }
        print("PEFT adapter on the GGUF: max |logit - PEFT| \(worstLogit), max |greedy log-prob - PEFT| \(worstLogProb)")
        XCTAssertLessThan(worstLogit, 2e-3)
        XCTAssertLessThan(worstLogProb, 1e-3)
    }

    /// Writes an adapter of our own (seeded A and B on all seven modules, not PEFT's numbers) with our
    /// logits beside it; `scripts/fixtures/peft_check_ours.py DIR` then checks PEFT reads the same model.
    /// DIR is $EX2_PEFT_CHECK_DIR or a folder under the temporary directory; the test also reloads it here.
    func testAdapterSavedHereIsWrittenForPEFT() throws {
        let model = try DecoderModel.load(gguf: GGUFFile(url: TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf")))
        let state = LoRAState(model: model.config, config: LoRAConfig(rank: 2, alpha: 4, dropout: 0, targets: LoRATarget.allCases),
                              valueHead: true, seed: 11)
        var rng = RandomStream(seed: 12)
        for s in state.slots { for j in 0..<(s.outFeatures * 2) { state.parameters[s.b + j] = rng.nextGaussian() * 0.05 } }
        let dir = ProcessInfo.processInfo.environment["EX2_PEFT_CHECK_DIR"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("ex2-peft-check")
        try PEFTAdapter.save(state, to: dir, baseModel: "SmolLM2-135M-Instruct.Q4_1.gguf")
        let ids = [37964, 253, 8003, 282, 253, 325, 12896, 30, 1116]  // "Describe a photo of a beagle.\n\n"
        let cache = model.makeCache(slots: 1, capacity: ids.count)
        let logits = model.forward([SequenceChunk(slot: 0, tokens: ids, startPosition: 0)], cache: cache, adapters: state)
        let json: [String: Any] = ["prompt_ids": ids, "logits": logits.map(Double.init)]
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("expected_logits.json"))
        // Read back: the same model, so the same logits; and different from the base.
        let again = try PEFTAdapter.load(dir, model: model.config)
        let cache2 = model.makeCache(slots: 1, capacity: ids.count)
        XCTAssertEqual(model.forward([SequenceChunk(slot: 0, tokens: ids, startPosition: 0)], cache: cache2, adapters: again), logits)
        let cache3 = model.makeCache(slots: 1, capacity: ids.count)
        let base = model.forward([SequenceChunk(slot: 0, tokens: ids, startPosition: 0)], cache: cache3)
        XCTAssertGreaterThan(zip(base, logits).map { abs($0 - $1) }.max()!, 0.05)
        print("adapter for PEFT written to \(dir.path) (check with scripts/fixtures/peft_check_ours.py)")
    }
}
