// Shared helpers for the ModelFiles tests: where fixtures and the real model files live.

import Foundation
import XCTest

enum TestFiles {
    static var fixtures: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }

    static func fixture(_ name: String) -> URL { fixtures.appendingPathComponent(name) }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: fixture(name))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any], "\(name) is not a JSON object")
    }

    /// The models folder: $EX2_MODELS, else <package root>/models.
    static var modelsDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["EX2_MODELS"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        // #filePath is <root>/Tests/ModelFilesTests/TestSupport.swift
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("models")
    }

    static func model(_ name: String) throws -> URL {
        let url = modelsDirectory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("""
                !!! SKIPPED: real model file \(url.path) is missing. Run scripts/setup.sh (or set EX2_MODELS \
                to the folder holding \(name)) to run this test.
                """)
        }
        return url
    }
}
