// The LanguageModel entry point: a model given as an HF hub id is found offline in a local HF cache
// layout and gives the same tokens and samples as the file itself; mismatched tokenizer and weights
// are refused with a message.
import EX2
import Foundation
import Llama
import ModelFiles
import XCTest

final class LanguageModelTests: XCTestCase {
    var packageRoot: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    func smolLM2() throws -> URL {
        let dir = ProcessInfo.processInfo.environment["EX2_MODELS"].map { URL(fileURLWithPath: $0) } ?? packageRoot.appendingPathComponent("models")
        let url = dir.appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("SKIPPED: \(url.path) is missing; run scripts/setup.sh")
        }
        return url
    }

    func testHubIdInTheLocalCacheResolvesToTheSameModel() throws {
        let gguf = try smolLM2()
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-hub-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let snap = cache.appendingPathComponent("models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF/snapshots/0123abc")
        try FileManager.default.createDirectory(at: snap, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: snap.appendingPathComponent(gguf.lastPathComponent), withDestinationURL: gguf)
        let locator = ModelLocator(environment: ["HF_HUB_CACHE": cache.path])
        let viaHub = try LanguageModel(spec: "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", locator: locator)
        let direct = try LanguageModel(spec: gguf.path)
        let text = "Describe a photo of a beagle.\n\n"
        XCTAssertEqual(viaHub.encode(text), direct.encode(text))
        let p = SamplingParameters(temperature: 1, maxNewTokens: 6)
        XCTAssertEqual(try viaHub.generate(prompts: [text], params: p, seed: 3).map(\.tokens),
                       try direct.generate(prompts: [text], params: p, seed: 3).map(\.tokens))
    }

    /// A 9,001-token prompt does not fit SmolLM2's 8,192-token context: refused, not run.
    func testPromptLongerThanTheContextIsRefused() throws {
        let lm = try LanguageModel(spec: try smolLM2().path)
        var text = ""
        while lm.encode(text).count < 9001 { text += String(repeating: "the quick brown fox ", count: 500) }
        XCTAssertThrowsError(try lm.generate(prompts: ["short", text], params: SamplingParameters(maxNewTokens: 4), seed: 0)) { error in
            guard case LanguageModelError.contextLengthExceeded(_, let prompt, let tokens, let context) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(prompt, 1)
            XCTAssertGreaterThanOrEqual(tokens, 9001)
            XCTAssertEqual(context, 8192)
            XCTAssertTrue("\(error)".contains("8192"), "\(error)")
        }
    }

    func testMissingModelSaysWhereItLooked() {
        let locator = ModelLocator(environment: ["HF_HUB_CACHE": "/nonexistent-ex2-cache"])
        XCTAssertThrowsError(try LanguageModel(spec: "nobody/nothing", locator: locator)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("/nonexistent-ex2-cache"), text)
            XCTAssertTrue(text.contains("nobody/nothing"), text)
        }
    }
}
