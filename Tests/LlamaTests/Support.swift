// Shared helpers of the Llama tests: fixture and model locations, JSON loading, tolerance checks.
import Foundation
import XCTest

enum TestPaths {
    static var fixtures: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)! }
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var models: URL {
        if let m = ProcessInfo.processInfo.environment["EX2_MODELS"] { return URL(fileURLWithPath: m) }
        return packageRoot.appendingPathComponent("models")
    }
    /// A real model file fetched by scripts/setup.sh; skips the test loudly when it is absent.
    static func model(_ name: String) throws -> URL {
        let url = models.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("SKIPPED: real model \(url.path) is missing; run scripts/setup.sh to fetch it")
        }
        return url
    }
}

func loadJSON(_ url: URL) throws -> [String: Any] {
    let data = try Data(contentsOf: url)
    guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw NSError(domain: "fixture", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(url.path) is not a JSON object"])
    }
    return obj
}

func floats(_ v: Any?) -> [Float] { (v as? [Any] ?? []).map { Float(($0 as? NSNumber)?.doubleValue ?? .nan) } }
func ints(_ v: Any?) -> [Int] { (v as? [Any] ?? []).map { ($0 as? NSNumber)?.intValue ?? -1 } }
