// Shared helpers for the imaging tests: fixture lookup, the JSON shapes written by
// scripts/fixtures/imaging_fixtures.py, and a SHA-256 (Foundation on Linux has none) to compare decoded
// bytes with the hashes PIL's output produced.
import Foundation
import ModelFiles
import XCTest

enum Fixtures {
    static var root: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
                throw XCTSkip("ImagingTests fixtures are missing: run scripts/fixtures/imaging_fixtures.py")
            }
            return url
        }
    }

    static func image(_ name: String) throws -> URL { try root.appendingPathComponent("images/\(name)") }

    static func json<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        let data = try Data(contentsOf: root.appendingPathComponent(name))
        return try JSONDecoder().decode(T.self, from: data)
    }
}

struct DecodeFixture: Decodable {
    struct Image: Decodable {
        let name: String
        let pil_mode: String
        let width: Int
        let height: Int
        let sha256: String
        let samples: [[Int]]  // [x, y, r, g, b]
    }
    let images: [Image]
}

struct PreprocessFixture: Decodable {
    struct Result: Decodable {
        let name: String
        let pipeline: String
        let size: Int
        let sha256: String
        let samples: [[Int]]  // [flat CHW index, value]
        let base64: String?
    }
    let results: [Result]
}

/// Hex SHA-256 of pixel bytes, to compare with Python's hashlib.
func sha256Hex(_ message: [UInt8]) -> String { SHA256.hex(message) }
