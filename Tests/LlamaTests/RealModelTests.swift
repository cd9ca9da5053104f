// Parity of the engine on the two real GGUF models (SmolLM2-135M-Instruct Q4_1 and gemma-3-270m Q4_K_M)
// with transformers float32 on the same dequantized weights: last-position logits at 512 probe indices and
// the top 32, the argmax at every position, and 24-token greedy continuations. Token ids come from the
// fixture (transformers for SmolLM2, llama.cpp for Gemma), so these tests check the model alone.
import Foundation
import Llama
import ModelFiles
import XCTest

final class RealModelTests: XCTestCase {
    /// Logits of these models are O(10); float32 summation order differs from PyTorch's.
    static let logitTolerance: Float = 5e-4  // measured: 7e-5 on both models
    nonisolated(unsafe) static var cache: [String: DecoderModel] = [:]

    func model(_ file: String) throws -> DecoderModel {
        if let m = Self.cache[file] { return m }
        let m = try DecoderModel.load(gguf: GGUFFile(url: TestPaths.model(file)))
        Self.cache[file] = m
        return m
    }

    func check(fixture: String, modelFile: String) throws {
        let url = TestPaths.fixtures.appendingPathComponent(fixture)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("SKIPPED: fixture \(fixture) is missing; run scripts/fixtures/llm_fixtures.py")
        }
        let fx = try loadJSON(url)
        let model = try model(modelFile)
        let V = model.config.vocabSize
        let probes = ints(fx["probe_indices"])
        let prompts = fx["prompts"] as! [[String: Any]]
        XCTAssertGreaterThan(prompts.count, 3)
        var worst: Float = 0
        var greedyPrompts: [[Int]] = [], greedyWant: [[Int]] = [], margins: [[Float]] = []
        for p in prompts {
            let ids = ints(p["ids"])
            let cache = model.makeCache(slots: 1, capacity: ids.count + 1)
            let all = model.forward([SequenceChunk(slot: 0, tokens: ids, startPosition: 0)], cache: cache, logits: .all)
            // argmax at every position
            let argmax = (0..<ids.count).map { t -> Int in
                let row = all[t * V..<(t + 1) * V]
                return row.indices.max { row[$0] < row[$1] }! - t * V
            }
            XCTAssertEqual(argmax, ints(p["argmax"]), "argmax per position for \(String(reflecting: p["text"]!))")
            let last = Array(all[(ids.count - 1) * V..<ids.count * V])
            for (i, v) in zip(probes, floats(p["last_logits_at_probes"])) { worst = max(worst, abs(last[i] - v)) }
            for (i, v) in zip(ints(p["top_indices"]), floats(p["top_values"])) { worst = max(worst, abs(last[i] - v)) }
            greedyPrompts.append(ids)
            greedyWant.append(ints(p["greedy"]))
            margins.append(floats(p["greedy_margins"]))
        }
        XCTAssertLessThan(worst, Self.logitTolerance, "\(fixture): max |logit - transformers| = \(worst)")
        print("\(fixture): max |logit - transformers| over probes and top-32 = \(worst)")

        // Greedy continuations, all prompts in one batch.
        let gen = Generator(model: model, stopTokens: [])
        let results = gen.generate(prompts: greedyPrompts, seeds: greedyPrompts.indices.map { UInt64($0) },
                                   params: SamplingParameters(temperature: 0, maxNewTokens: 24, stopAtEOS: false))
        for (i, r) in results.enumerated() {
            // A step whose top-2 margin in transformers is below our tolerance may legitimately flip; compare up to it.
            let m = margins[i]
            let firstTie = m.firstIndex { $0 < Self.logitTolerance } ?? greedyWant[i].count
            XCTAssertEqual(Array(r.tokens.prefix(firstTie)), Array(greedyWant[i].prefix(firstTie)),
                           "\(fixture): greedy continuation of prompt \(i)")
        }
    }

    func testSmolLM2MatchesTransformers() throws {
        try check(fixture: "smollm2.json", modelFile: "SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    func testGemma3MatchesTransformers() throws {
        try check(fixture: "gemma3.json", modelFile: "gemma-3-270m-q4_k_m.gguf")
    }
}
