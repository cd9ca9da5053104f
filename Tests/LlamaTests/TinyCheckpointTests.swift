// Parity of the decoder engine with transformers on tiny random checkpoints of each supported family
// (Llama with grouped-query heads, untied Llama, Qwen2 with q/k/v biases, Gemma 3 with sliding and full
// layers), loaded from safetensors. Expected logits and greedy continuations come from
// scripts/fixtures/llm_fixtures.py (transformers float32).
import Foundation
import Llama
import XCTest

final class TinyCheckpointTests: XCTestCase {
    /// The fixtures store 6 significant digits; logits of these models are O(1).
    let logitTolerance: Float = 2e-4

    func check(_ name: String, configFile: String = "config.json", file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = TestPaths.fixtures.appendingPathComponent(name)
        let expected = try loadJSON(dir.appendingPathComponent("expected.json"))
        // Build the model from whichever config file style is under test.
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-tiny-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        try FileManager.default.copyItem(at: dir.appendingPathComponent(configFile), to: tmp.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: dir.appendingPathComponent("model.safetensors"), to: tmp.appendingPathComponent("model.safetensors"))
        let model = try DecoderModel.load(hfDirectory: tmp)
        let V = model.config.vocabSize
        let inputs = (expected["inputs"] as! [Any]).map(ints)
        let logits = expected["logits"] as! [Any]
        let greedy = (expected["greedy"] as! [Any]).map(ints)

        // Unbatched: every position's logits.
        var worst: Float = 0
        for (s, ids) in inputs.enumerated() {
            let cache = model.makeCache(slots: 1, capacity: 64)
            let got = model.forward([SequenceChunk(slot: 0, tokens: ids, startPosition: 0)], cache: cache, logits: .all)
            let want = (logits[s] as! [Any]).flatMap(floats)
            XCTAssertEqual(got.count, want.count, file: file, line: line)
            for i in 0..<min(got.count, want.count) { worst = max(worst, abs(got[i] - want[i])) }
            XCTAssertEqual(got.count, ids.count * V)
        }
        XCTAssertLessThan(worst, logitTolerance, "\(name): max |logit - transformers| = \(worst)", file: file, line: line)

        // All sequences in one ragged batch, fed in two chunks each, must give the same last logits.
        let cache = model.makeCache(slots: inputs.count, capacity: 64)
        let heads = inputs.enumerated().map { SequenceChunk(slot: $0.offset, tokens: Array($0.element.prefix(2)), startPosition: 0) }
        _ = model.forward(heads, cache: cache, logits: .none)
        let tails = inputs.enumerated().map { SequenceChunk(slot: $0.offset, tokens: Array($0.element.dropFirst(2)), startPosition: 2) }
        let batched = model.forward(tails, cache: cache, logits: .lastOfEachChunk)
        for (s, ids) in inputs.enumerated() {
            let want = floats((logits[s] as! [Any])[ids.count - 1])
            let got = Array(batched[s * V..<(s + 1) * V])
            let d = zip(got, want).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(d, logitTolerance, "\(name): batched chunked prefill, sequence \(s)", file: file, line: line)
        }

        // Greedy continuations (EOS ignored), batched.
        let gen = Generator(model: model, stopTokens: [])
        let results = gen.generate(prompts: inputs, seeds: inputs.indices.map { UInt64($0) },
                                   params: SamplingParameters(temperature: 0, maxNewTokens: greedy[0].count, stopAtEOS: false))
        for (s, r) in results.enumerated() {
            XCTAssertEqual(r.tokens, greedy[s], "\(name): greedy continuation of sequence \(s)", file: file, line: line)
        }
    }

    func testTinyLlama() throws { try check("tiny-llama") }
    func testTinyLlamaTransformers5Config() throws { try check("tiny-llama", configFile: "config.transformers5.json") }
    func testTinyLlamaUntied() throws { try check("tiny-llama-untied") }
    func testTinyQwen2() throws { try check("tiny-qwen2") }
    func testTinyGemma3() throws { try check("tiny-gemma3") }
    func testTinyGemma3Transformers5Config() throws { try check("tiny-gemma3", configFile: "config.transformers5.json") }

    func testStrictLoadingNamesTheTensor() throws {
        let dir = TestPaths.fixtures.appendingPathComponent("tiny-llama")
        // A config that promises one more layer than the checkpoint has must fail naming the missing tensor.
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as! [String: Any]
        config["num_hidden_layers"] = (config["num_hidden_layers"] as! Int) + 1
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-strict-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        try JSONSerialization.data(withJSONObject: config).write(to: tmp.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: dir.appendingPathComponent("model.safetensors"), to: tmp.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try DecoderModel.load(hfDirectory: tmp)) { error in
            XCTAssertTrue("\(error)".contains("model.layers."), "error should name the tensor: \(error)")
        }
    }
}
