// Shared helpers: the committed fixtures, and temporary folders that each test removes again.
import Foundation
import XCTest

enum Fixture {
    static var root: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
                throw XCTSkip("ConceptsTests fixtures are missing from the test bundle")
            }
            return url
        }
    }

    static func url(_ relative: String) throws -> URL { try root.appendingPathComponent(relative) }
    static func bytes(_ relative: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: url(relative))) }
    static func json(_ relative: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(contentsOf: url(relative))) }
}

final class TempDir {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("concepts-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ relative: String, _ data: Data) throws {
        let target = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: target)
    }

    func write(_ relative: String, text: String) throws { try write(relative, Data(text.utf8)) }

    func remove(_ relative: String) throws { try FileManager.default.removeItem(at: url.appendingPathComponent(relative)) }
}
