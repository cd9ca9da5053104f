// completion(): from every prefix of the fixture documents, and from the ends of random walks that
// pick any accepted byte, prefix + completion must be complete for the automaton and parse with
// Foundation's JSONSerialization. Records can be dumped for the Python (json + jsonschema) check:
//   JSON_CONSTRAINT_DUMP=/tmp/jc swift test --filter CompletionTests
//   /work/venv/bin/python scripts/fixtures/json_constraint_fixtures.py --check-completions /tmp/jc/*.json
// The random walks are also the liveness test: every state the automaton reaches must accept some byte.

import Foundation
import XCTest
@testable import JSONConstraint

final class CompletionTests: XCTestCase {
    private func check(_ start: JSONPrefixState, prefix: [UInt8], _ what: @autoclosure () -> String,
                       dump: CompletionDump? = nil, schema: Int? = nil, object: Bool = false) {
        let (n, s) = feedPrefix(start, prefix)
        guard n == prefix.count else { return XCTFail("prefix refused at \(n): \(what())") }
        let c = s.completion()
        let (m, done) = feedPrefix(s, c)
        XCTAssertEqual(m, c.count, "completion \(text(c).debugDescription) refused at \(m) after \(text(prefix).debugDescription) (\(what()))")
        XCTAssertTrue(done.isComplete, "prefix \(text(prefix).debugDescription) + \(text(c).debugDescription) is not complete (\(what()))")
        XCTAssertTrue(foundationParses(prefix + c), "JSONSerialization cannot parse \(text(prefix + c).debugDescription) (\(what()))")
        if s.isComplete { XCTAssertEqual(c, [], "completion of a complete document") }
        dump?.add(prefix: prefix, completion: c, schema: schema, object: object)
    }

    func testCompletionFromEveryPrefixOfValidDocuments() throws {
        let cases = try Fixtures.cases()
        let dump = CompletionDump("documents")
        for doc in cases.valid {
            let bytes = doc.bytes
            let limits = JSONDocumentTests.limits(for: doc)
            let start: JSONPrefixState = doc.object ? .jsonObject(limits: limits) : .anyValue(limits: limits)
            for k in 0...bytes.count {
                check(start, prefix: Array(bytes[..<k]), doc.note, dump: dump, object: doc.object)
            }
        }
        try dump.write()
    }

    func testCompletionFromEveryPrefixOfSchemaDocuments() throws {
        let cases = try Fixtures.cases()
        let dump = CompletionDump("schemas")
        for (index, c) in cases.schemas.enumerated() {
            let start = JSONPrefixState(schema: try JSONSchema(jsonString: c.schema_text))
            for hex in c.valid {
                let bytes = Hex.decode(hex)
                for k in 0...bytes.count {
                    check(start, prefix: Array(bytes[..<k]), c.name, dump: dump, schema: index)
                }
            }
        }
        try dump.write()
    }

    /// Random walks: each step picks an accepted byte (mostly ASCII, some others), so walks wander
    /// through keys, escapes, numbers and multi-byte characters; then the walk is completed.
    func testRandomWalksStayAliveAndComplete() throws {
        let cases = try Fixtures.cases()
        let dump = CompletionDump("walks")
        var rng = TestRNG(seed: 42)
        var starts: [(JSONPrefixState, Int?, Bool, String)] = [(.jsonObject(), nil, true, "json_object")]
        for (i, c) in cases.schemas.enumerated() {
            starts.append((JSONPrefixState(schema: try JSONSchema(jsonString: c.schema_text)), i, false, c.name))
        }
        let structural = Array("{}[]:,\" \n-0123456789.eE+tfnrulsa\\/bu".utf8)
        var walks = 0
        for (start, schema, object, name) in starts {
            for _ in 0..<40 {
                var s = start
                var prefix: [UInt8] = []
                let length = rng.below(120)
                for _ in 0..<length {
                    if s.isFinished { break }
                    var candidates = structural.filter { s.accepts([$0]) }
                    if candidates.isEmpty || rng.below(4) == 0 {
                        candidates = (0...255).map(UInt8.init).filter { s.accepts([$0]) }
                    }
                    guard !candidates.isEmpty else {
                        XCTFail("\(name): dead state after \(text(prefix).debugDescription)")
                        break
                    }
                    let b = candidates[rng.below(candidates.count)]
                    XCTAssertTrue(s.feed(b))
                    prefix.append(b)
                }
                check(start, prefix: prefix, "walk in \(name)", dump: dump, schema: schema, object: object)
                walks += 1
            }
        }
        XCTAssertEqual(walks, starts.count * 40)
        try dump.write()
    }

    func testCompletionShapes() throws {
        func completion(_ schema: JSONSchema?, _ prefix: String) -> String {
            var s = schema.map { JSONPrefixState(schema: $0) } ?? .jsonObject()
            XCTAssertTrue(s.feed(Array(prefix.utf8)), prefix)
            return text(s.completion())
        }
        XCTAssertEqual(completion(nil, ""), "{}")
        XCTAssertEqual(completion(nil, #"{"a": [1, {"b": "x\u00"#), #"00"}]}"#)
        XCTAssertEqual(completion(nil, #"{"a": "\uD83D"#), #"\udc00"}"#)
        XCTAssertEqual(completion(nil, #"{"a": -"#), "0}")
        XCTAssertEqual(completion(nil, #"{"a": 1.5e"#), "0}")
        XCTAssertEqual(completion(nil, #"{"a": tr"#), "ue}")
        XCTAssertEqual(completion(nil, #"{"a""#), ":0}")
        let person = try JSONSchema(jsonString: #"{"type":"object","properties":{"name":{"type":"string","minLength":2},"age":{"type":"integer"},"tags":{"type":"array","items":{"enum":["x","yy"]},"minItems":2}},"required":["name","age","tags"],"additionalProperties":false}"#)
        XCTAssertEqual(completion(person, ""), #"{"name":"aa","age":0,"tags":["x","x"]}"#)
        XCTAssertEqual(completion(person, #"{"age":5,"na"#), #"me":"aa","tags":["x","x"]}"#)
        // Missing required keys: the nearest name first (a breadth-first search over the name trie).
        XCTAssertEqual(completion(person, #"{"tags":["y"#), #"y","x"],"age":0,"name":"aa"}"#)
    }
}
