// Checks that the oracle files written by scripts/fixtures/llm_fixtures.py are complete and
// self-consistent before any engine test leans on them: every tiny checkpoint has its config,
// weights and expected logits with matching shapes, and the real-model summaries agree with
// themselves (greedy step 1 is the last argmax, probe logits equal the top-k where they overlap).
// No engine code runs here; a failure means the fixtures need regenerating, not that Llama is wrong.

import Foundation
import XCTest

private struct TinyConfig: Decodable {
    let vocabSize: Int
    let tieWordEmbeddings: Bool
    let modelType: String

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case tieWordEmbeddings = "tie_word_embeddings"
        case modelType = "model_type"
    }
}

private struct TinyExpected: Decodable {
    let seed: Int
    let modelSha256: String
    let inputs: [[Int]]
    let logits: [[[Float]]]
    let greedy: [[Int]]
    let greedyMinMargin: [Float]

    enum CodingKeys: String, CodingKey {
        case seed, inputs, logits, greedy
        case modelSha256 = "model_sha256"
        case greedyMinMargin = "greedy_min_margin"
    }
}

private struct RealPrompt: Decodable {
    let kind: String
    let text: String
    let ids: [Int]
    let lastLogitsAtProbes: [Float]
    let topIndices: [Int]
    let topValues: [Float]
    let logsumexp: Float
    let argmax: [Int]
    let greedy: [Int]
    let greedyMargins: [Float]

    enum CodingKeys: String, CodingKey {
        case kind, text, ids, logsumexp, argmax, greedy
        case lastLogitsAtProbes = "last_logits_at_probes"
        case topIndices = "top_indices"
        case topValues = "top_values"
        case greedyMargins = "greedy_margins"
    }
}

private struct RealExpected: Decodable {
    let modelFile: String
    let modelSha256: String
    let probeIndices: [Int]
    let prompts: [RealPrompt]

    enum CodingKeys: String, CodingKey {
        case prompts
        case modelFile = "model_file"
        case modelSha256 = "model_sha256"
        case probeIndices = "probe_indices"
    }
}

final class FixtureSanityTests: XCTestCase {
    private func fixtures() throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil),
                      "Tests/LlamaTests/Fixtures is missing from the test bundle")
    }

    private func decode<T: Decodable>(_ type: T.Type, _ url: URL) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(contentsOf: url))
        } catch {
            XCTFail("\(url.path): \(error); regenerate with scripts/fixtures/llm_fixtures.py")
            throw error
        }
    }

    /// Tensor names and element counts from a safetensors header, checking each tensor is F32
    /// and lies inside the file.
    private func safetensorsTensors(_ url: URL) throws -> [String: Int] {
        let data = try Data(contentsOf: url)
        XCTAssertGreaterThan(data.count, 8, url.path)
        let headerSize = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try XCTUnwrap(
            JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerSize))) as? [String: Any])
        var counts: [String: Int] = [:]
        for (name, value) in header where name != "__metadata__" {
            let info = try XCTUnwrap(value as? [String: Any], name)
            XCTAssertEqual(info["dtype"] as? String, "F32", "\(url.lastPathComponent): \(name)")
            let shape = try XCTUnwrap(info["shape"] as? [Int], name)
            let offsets = try XCTUnwrap(info["data_offsets"] as? [Int], name)
            let count = shape.reduce(1, *)
            XCTAssertEqual(offsets[1] - offsets[0], 4 * count, name)
            XCTAssertLessThanOrEqual(8 + headerSize + offsets[1], data.count, name)
            counts[name] = count
        }
        return counts
    }

    func testTinyCheckpointsAreComplete() throws {
        let root = try fixtures()
        for name in ["tiny-llama", "tiny-llama-untied", "tiny-qwen2", "tiny-gemma3"] {
            let dir = root.appendingPathComponent(name)
            let config = try decode(TinyConfig.self, dir.appendingPathComponent("config.json"))
            _ = try decode(TinyConfig.self, dir.appendingPathComponent("config.transformers5.json"))
            let expected = try decode(TinyExpected.self, dir.appendingPathComponent("expected.json"))
            let tensors = try safetensorsTensors(dir.appendingPathComponent("model.safetensors"))

            XCTAssertEqual(tensors["lm_head.weight"] == nil, config.tieWordEmbeddings,
                           "\(name): lm_head.weight presence must match tie_word_embeddings")
            XCTAssertEqual(expected.modelSha256.count, 64, name)
            XCTAssertGreaterThanOrEqual(expected.inputs.count, 2, name)
            XCTAssertEqual(expected.logits.count, expected.inputs.count, name)
            XCTAssertEqual(expected.greedy.count, expected.inputs.count, name)
            XCTAssertEqual(expected.greedyMinMargin.count, expected.inputs.count, name)
            for (s, ids) in expected.inputs.enumerated() {
                XCTAssertTrue((5...12).contains(ids.count), "\(name) sequence \(s)")
                XCTAssertTrue(ids.allSatisfy { (0..<config.vocabSize).contains($0) }, "\(name) sequence \(s)")
                XCTAssertEqual(expected.logits[s].count, ids.count, "\(name) sequence \(s)")
                for row in expected.logits[s] {
                    XCTAssertEqual(row.count, config.vocabSize, "\(name) sequence \(s)")
                    XCTAssertTrue(row.allSatisfy(\.isFinite), "\(name) sequence \(s)")
                }
                XCTAssertEqual(expected.greedy[s].count, 12, "\(name) sequence \(s)")
                // Greedy step 1 must be the argmax of the last stored position (two oracle
                // outputs of the same run).
                let last = expected.logits[s][ids.count - 1]
                let argmax = last.indices.max { last[$0] < last[$1] }
                XCTAssertEqual(argmax, expected.greedy[s].first, "\(name) sequence \(s)")
                XCTAssertGreaterThan(expected.greedyMinMargin[s], 0, "\(name) sequence \(s)")
            }
        }
    }

    func testRealModelSummariesAreConsistent() throws {
        let root = try fixtures()
        for name in ["smollm2.json", "gemma3.json"] {
            let url = root.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                XCTFail("\(name) is missing; run scripts/fixtures/llm_fixtures.py")
                continue
            }
            let expected = try decode(RealExpected.self, url)
            XCTAssertEqual(expected.probeIndices.count, 512, name)
            XCTAssertEqual(Set(expected.probeIndices).count, 512, "\(name): duplicate probe indices")
            XCTAssertGreaterThanOrEqual(expected.prompts.count, 6, name)
            let probePosition = Dictionary(uniqueKeysWithValues: expected.probeIndices.enumerated().map { ($1, $0) })
            for prompt in expected.prompts {
                let label = "\(name) \(prompt.kind) \(prompt.text.prefix(30).debugDescription)"
                XCTAssertFalse(prompt.ids.isEmpty, label)
                XCTAssertEqual(prompt.lastLogitsAtProbes.count, 512, label)
                XCTAssertEqual(prompt.topIndices.count, 32, label)
                XCTAssertEqual(prompt.topValues.count, 32, label)
                XCTAssertEqual(prompt.argmax.count, prompt.ids.count, label)
                XCTAssertEqual(prompt.greedy.count, 24, label)
                XCTAssertEqual(prompt.greedyMargins.count, 24, label)
                XCTAssertEqual(prompt.topIndices.first, prompt.argmax.last, label)
                XCTAssertEqual(prompt.greedy.first, prompt.argmax.last, label)
                XCTAssertEqual(prompt.topValues, prompt.topValues.sorted(by: >), label)
                XCTAssertGreaterThanOrEqual(prompt.logsumexp, prompt.topValues[0], label)
                for (index, value) in zip(prompt.topIndices, prompt.topValues) {
                    if let p = probePosition[index] {
                        XCTAssertEqual(prompt.lastLogitsAtProbes[p], value, accuracy: 1e-4 * max(1, abs(value)), label)
                    }
                }
            }
        }
    }
}
