// Shared helpers for the tokenizer tests: fixture loading (golden files written by
// scripts/fixtures/tokenizer_fixtures.py from transformers / tokenizers / llama.cpp) and the
// lookup of the real GGUF models, which skips loudly when scripts/setup.sh has not fetched them.

import Foundation
import XCTest

struct ExpectedCase: Decodable {
    var text: String
    var ids: [Int]
    var ids_with_special: [Int]
    var decoded: String
    var decoded_skip_special: String
}

struct ExpectedFile: Decodable {
    var directory: String?
    var model_file: String?
    var cases: [ExpectedCase]
}

enum Fixtures {
    static var root: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }

    static func load<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        let url = root.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("fixture \(name) is missing: run scripts/fixtures/tokenizer_fixtures.py")
        }
        return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
    }

    /// EX2_MODELS, else <package root>/models.
    static func model(_ file: String) throws -> URL {
        let dir: URL
        if let env = ProcessInfo.processInfo.environment["EX2_MODELS"], !env.isEmpty {
            dir = URL(fileURLWithPath: env)
        } else {
            dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("models")
        }
        let url = dir.appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("""
                ********************************************************************************
                MODEL FILE \(url.path) IS ABSENT: this test did NOT run.
                Run scripts/setup.sh (or set EX2_MODELS) to fetch the GGUF models.
                ********************************************************************************
                """)
        }
        return url
    }
}
