// `ex2 describe`'s library call: one description per (concept, template), in class order, in the
// reference's list-per-class format, equal to sampling the same query texts directly.
import EX2
import Foundation
import Llama
import XCTest

final class DescribeTests: XCTestCase {
    func testDescriptionsFollowConceptsAndTemplates() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let models = ProcessInfo.processInfo.environment["EX2_MODELS"].map { URL(fileURLWithPath: $0) } ?? root.appendingPathComponent("models")
        let gguf = models.appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: gguf.path) else {
            throw XCTSkip("SKIPPED: \(gguf.path) is missing; run scripts/setup.sh")
        }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-describe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        for concept in ["sea_otter", "tulip"] {
            try FileManager.default.createDirectory(at: tmp.appendingPathComponent("concepts/\(concept)"), withIntermediateDirectories: true)
            try Data([0x89]).write(to: tmp.appendingPathComponent("concepts/\(concept)/a.png"))
        }
        let templates = tmp.appendingPathComponent("templates.json")
        try JSONSerialization.data(withJSONObject: ["Describe a photo of a {}.", "What does a {} look like?"]).write(to: templates)

        let lm = try LanguageModel(spec: gguf.path)
        let params = SamplingParameters(temperature: 1, maxNewTokens: 5)
        let request = DescribeRequest(policy: gguf.path, dataset: "folder:\(tmp.appendingPathComponent("concepts").path)",
                                      templates: templates, params: params, seed: 4, batchSize: 3)
        let result = try Describing.run(request, model: lm)
        XCTAssertEqual(result.classNames, ["sea otter", "tulip"])
        XCTAssertEqual(result.descriptions.map(\.count), [2, 2])
        let direct = try lm.generate(prompts: ["Describe a photo of a sea otter.\n\n", "What does a sea otter look like?\n\n",
                                           "Describe a photo of a tulip.\n\n", "What does a tulip look like?\n\n"],
                                 params: params, seed: 4)
        XCTAssertEqual(result.descriptions.flatMap { $0 }, direct.map(\.text))

        let out = tmp.appendingPathComponent("descriptions.json")
        try Describing.write(result, to: out)
        let back = try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [[String]]
        XCTAssertEqual(back, result.descriptions)
        XCTAssertEqual(try Describing.classNames(dataset: "fgvc_aircraft", dataRoot: nil, split: nil).first, "Boeing 707-320 aircraft")  // first entry of the reference list + " aircraft"
    }

    /// With a PEFT adapter (saved by Python PEFT), describing samples from the adapted model: greedy
    /// descriptions equal PEFT's greedy continuation from the fixture and differ from the base model's.
    func testDescribeWithAPEFTAdapter() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let models = ProcessInfo.processInfo.environment["EX2_MODELS"].map { URL(fileURLWithPath: $0) } ?? root.appendingPathComponent("models")
        let gguf = models.appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: gguf.path) else {
            throw XCTSkip("SKIPPED: \(gguf.path) is missing; run scripts/setup.sh")
        }
        let fixture = root.appendingPathComponent("Tests/LlamaTests/Fixtures/train/peft_smollm2")
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture.appendingPathComponent("expected.json"))) as! [String: Any]
        let prompt = (expected["prompts"] as! [[String: Any]])[0]
        let greedy = (prompt["greedy"] as! [NSNumber]).map(\.intValue)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-describe-adapter-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try FileManager.default.createDirectory(at: tmp.appendingPathComponent("concepts/beagle"), withIntermediateDirectories: true)
        try Data([0x89]).write(to: tmp.appendingPathComponent("concepts/beagle/a.png"))
        let templates = tmp.appendingPathComponent("templates.json")
        try JSONSerialization.data(withJSONObject: ["Describe a photo of a {}."]).write(to: templates)
        let params = SamplingParameters(temperature: 0, maxNewTokens: greedy.count, stopAtEOS: false)
        let adapted = try LanguageModel(spec: gguf.path, adapter: fixture.appendingPathComponent("adapter"))
        XCTAssertEqual(adapted.encode(prompt["text"] as! String), (prompt["prompt_ids"] as! [NSNumber]).map(\.intValue))
        let request = DescribeRequest(policy: gguf.path, dataset: "folder:\(tmp.appendingPathComponent("concepts").path)",
                                      templates: templates, params: params, seed: 0,
                                      adapter: fixture.appendingPathComponent("adapter"))
        let withAdapter = try Describing.run(request, model: adapted)
        XCTAssertEqual(withAdapter.descriptions[0][0], adapted.tokenizer.decode(greedy, skipSpecialTokens: true))
        let base = try Describing.run(request, model: LanguageModel(spec: gguf.path))
        XCTAssertNotEqual(base.descriptions[0][0], withAdapter.descriptions[0][0])
        // The request's adapter is what the library loads when no model is passed in.
        XCTAssertEqual(try Describing.run(request).descriptions, withAdapter.descriptions)
        // A directory that is not an adapter is refused with its path named.
        XCTAssertThrowsError(try LanguageModel(spec: gguf.path, adapter: tmp)) { XCTAssertTrue("\($0)".contains(tmp.path), "\($0)") }
    }
}
