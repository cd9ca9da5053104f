// Shared helpers for the JSON constraint tests: loading Fixtures/json_cases.json (written by
// scripts/fixtures/json_constraint_fixtures.py, Python's json and jsonschema being the oracle), hex
// decoding, feeding helpers, and the optional dump of completions for the Python cross-check
// (set JSON_CONSTRAINT_DUMP to a directory, then run the script with --check-completions DIR/*.json).

import Foundation
import XCTest
@testable import JSONConstraint

struct JSONCases: Decodable {
    struct Doc: Decodable {
        var hex: String
        var note: String
        var object: Bool
        var max_ws: Int
        var trailing_ws: Int
        var complete: [Int]
        var bytes: [UInt8] { Hex.decode(hex) }
    }

    struct Bad: Decodable {
        var hex: String
        var note: String
    }

    struct ByDesign: Decodable {
        var hex: String
        var why: String
        var limits: [String: Int]
        var relax: [String: Int]?
    }

    struct SchemaCase: Decodable {
        var name: String
        var schema_text: String
        var valid: [String]
        var invalid: [String]
    }

    struct Unsupported: Decodable {
        var schema_text: String
        var keyword: String?
    }

    var valid: [Doc]
    var invalid: [Bad]
    var by_design: [ByDesign]
    var schemas: [SchemaCase]
    var unsupported: [Unsupported]
}

enum Fixtures {
    static func cases() throws -> JSONCases {
        let root = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let url = root.appendingPathComponent("json_cases.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("Fixtures/json_cases.json is missing: run scripts/fixtures/json_constraint_fixtures.py")
        }
        return try JSONDecoder().decode(JSONCases.self, from: Data(contentsOf: url))
    }
}

enum Hex {
    static func decode(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count / 2)
        var high: UInt8? = nil
        for c in s.utf8 {
            let v: UInt8 = c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }

    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }
}

/// Feeds bytes one at a time; returns how many were accepted and the state after them.
func feedPrefix(_ state: JSONPrefixState, _ bytes: [UInt8]) -> (accepted: Int, state: JSONPrefixState) {
    var s = state
    for (i, b) in bytes.enumerated() {
        if !s.feed(b) { return (i, s) }
    }
    return (bytes.count, s)
}

/// Whether the automaton takes the whole document and calls it complete.
func acceptsDocument(_ state: JSONPrefixState, _ bytes: [UInt8]) -> Bool {
    let (n, s) = feedPrefix(state, bytes)
    return n == bytes.count && s.isComplete
}

/// Strict-ish independent parser: Foundation's JSONSerialization (fragments allowed).
func foundationParses(_ bytes: [UInt8]) -> Bool {
    (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// Collects prefix/completion records and writes them for the Python cross-check when asked to.
final class CompletionDump {
    private var records: [[String: Any]] = []
    private let name: String

    init(_ name: String) { self.name = name }

    func add(prefix: [UInt8], completion: [UInt8], schema: Int?, object: Bool) {
        guard ProcessInfo.processInfo.environment["JSON_CONSTRAINT_DUMP"] != nil else { return }
        var r: [String: Any] = ["prefix": Hex.encode(prefix), "completion": Hex.encode(completion), "object": object]
        if let schema { r["schema"] = schema }
        records.append(r)
    }

    func write() throws {
        guard let dir = ProcessInfo.processInfo.environment["JSON_CONSTRAINT_DUMP"] else { return }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: records)
        try data.write(to: URL(fileURLWithPath: dir).appendingPathComponent("\(name).json"))
    }
}

/// Small deterministic generator (xorshift64*), so random tests repeat exactly.
struct TestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E3779B97F4A7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2685821657736338717
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
