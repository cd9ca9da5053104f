// Plain JSON: the automaton against Python's json module (valid / invalid documents from the
// fixtures), its limits, and small exhaustive checks of the number grammar and of UTF-8 in strings
// against independent oracles (a regular expression, Foundation's UTF-8 decoder).

import Foundation
import XCTest
@testable import JSONConstraint

final class JSONDocumentTests: XCTestCase {
    static func limits(for doc: JSONCases.Doc) -> JSONLimits {
        JSONLimits(maxWhitespaceRun: max(4, doc.max_ws), maxTrailingWhitespace: max(2, doc.trailing_ws))
    }

    static let relaxed = JSONLimits(maxWhitespaceRun: 64, maxTrailingWhitespace: 64)

    func testValidDocumentsEveryPrefixAcceptedAndCompleteExactlyWherePythonParses() throws {
        let cases = try Fixtures.cases()
        XCTAssertGreaterThan(cases.valid.count, 300)
        for doc in cases.valid {
            let bytes = doc.bytes
            let limits = Self.limits(for: doc)
            var modes = [("any", JSONPrefixState.anyValue(limits: limits))]
            if doc.object { modes.append(("json_object", .jsonObject(limits: limits))) }
            let complete = Set(doc.complete)
            for (mode, start) in modes {
                var s = start
                XCTAssertFalse(s.isComplete)
                for (i, b) in bytes.enumerated() {
                    guard s.feed(b) else {
                        XCTFail("\(mode): refused byte \(i) (0x\(String(b, radix: 16))) of valid \(doc.note) \(text(bytes).debugDescription)")
                        break
                    }
                    if s.isComplete != complete.contains(i + 1) {
                        XCTFail("\(mode): isComplete=\(s.isComplete) after \(i + 1) bytes of \(text(bytes).debugDescription), Python says \(!s.isComplete)")
                        break
                    }
                }
            }
            if !doc.object {
                XCTAssertFalse(acceptsDocument(.jsonObject(limits: limits), bytes),
                               "json_object mode took a non-object \(text(bytes).debugDescription)")
            }
        }
    }

    func testWhitespaceRunsAreBounded() throws {
        let cases = try Fixtures.cases()
        var checked = 0
        for doc in cases.valid where doc.max_ws > 0 || doc.trailing_ws > 0 {
            let bytes = doc.bytes
            if doc.max_ws > 0 {
                var limits = Self.limits(for: doc)
                limits.maxWhitespaceRun = doc.max_ws - 1
                XCTAssertFalse(acceptsDocument(.anyValue(limits: limits), bytes),
                               "whitespace run \(doc.max_ws) passed a limit of \(doc.max_ws - 1): \(text(bytes).debugDescription)")
                checked += 1
            }
            if doc.trailing_ws > 0 {
                var limits = Self.limits(for: doc)
                limits.maxTrailingWhitespace = doc.trailing_ws - 1
                let (n, _) = feedPrefix(.anyValue(limits: limits), bytes)
                XCTAssertEqual(n, bytes.count - 1, "trailing whitespace limit not applied to \(text(bytes).debugDescription)")
            }
        }
        XCTAssertGreaterThan(checked, 50)
        // A model that only wants to print newlines is stopped after maxWhitespaceRun of them.
        var s = JSONPrefixState.jsonObject()
        XCTAssertTrue(s.feed(Array("{\n\n\n\n".utf8)))
        XCTAssertFalse(s.feed(UInt8(ascii: "\n")))
        XCTAssertTrue(s.feed(Array("\"a\":\n\n\n\n1".utf8)))
    }

    func testInvalidDocumentsAreRefused() throws {
        let cases = try Fixtures.cases()
        XCTAssertGreaterThan(cases.invalid.count, 300)
        var refusedAtByte = 0
        for bad in cases.invalid {
            let bytes = Hex.decode(bad.hex)
            let (n, s) = feedPrefix(.anyValue(limits: Self.relaxed), bytes)
            if n < bytes.count { refusedAtByte += 1; continue }
            XCTAssertFalse(s.isComplete, "accepted invalid (\(bad.note)) \(text(bytes).debugDescription) [\(bad.hex)]")
        }
        // Most invalid documents are caught at the offending byte, not just left incomplete.
        XCTAssertGreaterThan(refusedAtByte, cases.invalid.count / 2)
    }

    func testRefusalsByDesign() throws {
        let cases = try Fixtures.cases()
        func apply(_ overrides: [String: Int], to base: JSONLimits) -> JSONLimits {
            var limits = base
            for (key, value) in overrides {
                switch key {
                case "maxIntegerDigits": limits.maxIntegerDigits = value
                case "maxFractionDigits": limits.maxFractionDigits = value
                case "maxExponentDigits": limits.maxExponentDigits = value
                case "maxWhitespaceRun": limits.maxWhitespaceRun = value
                case "maxTrailingWhitespace": limits.maxTrailingWhitespace = value
                case "maxDepth": limits.maxDepth = value
                case "maxStringLength": limits.maxStringLength = value
                default: XCTFail("unknown limit \(key)")
                }
            }
            return limits
        }
        for item in cases.by_design {
            let bytes = Hex.decode(item.hex)
            let strict = apply(item.limits, to: JSONLimits())
            XCTAssertFalse(acceptsDocument(.anyValue(limits: strict), bytes), "\(item.why): accepted \(text(bytes).debugDescription)")
            guard let relax = item.relax else { continue }
            XCTAssertTrue(acceptsDocument(.anyValue(limits: apply(relax, to: strict)), bytes), "\(item.why): refused with \(relax)")
        }
    }

    func testJSONObjectModeWantsAnObject() {
        for start in ["[", "\"", "1", "t", "n", "-", "}"] {
            var s = JSONPrefixState.jsonObject()
            XCTAssertFalse(s.feed(Array(start.utf8)), start)
        }
        XCTAssertTrue(acceptsDocument(.jsonObject(), Array(" {} ".utf8)))
    }

    func testFailedFeedLeavesStateUnchangedAndAcceptsDoesNotMutate() {
        var s = JSONPrefixState.jsonObject()
        XCTAssertTrue(s.feed(Array("{\"a\": [1, \"x\\u00".utf8)))
        let before = s
        XCTAssertFalse(s.feed(UInt8(ascii: "g")))
        XCTAssertEqual(s, before)
        XCTAssertFalse(s.feed(Array("e9\"]x".utf8)))  // all or nothing
        XCTAssertEqual(s, before)
        XCTAssertTrue(s.accepts(Array("e9\"]}".utf8)))
        XCTAssertEqual(s, before)
        XCTAssertTrue(s.feed(Array("e9\"]}".utf8)))
        XCTAssertTrue(s.isComplete)
        XCTAssertTrue(s.isFinished)
        XCTAssertNotEqual(s, before)
    }

    func testStatesHashAndCompareByContent() {
        var a = JSONPrefixState.jsonObject()
        a.feed(Array("{\"k\":[1,".utf8))
        var b = a
        XCTAssertEqual(a, b)
        XCTAssertEqual(Set([a, b]).count, 1)
        b.feed(UInt8(ascii: "2"))
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(a.nestingDepth, 2)
    }

    /// Every string over "-019.eE+" up to 5 bytes: prefix acceptance and completeness of a top-level
    /// number against regular expressions for the RFC 8259 number grammar.
    func testNumberGrammarExhaustively() throws {
        let full = try NSRegularExpression(pattern: #"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"#)
        let prefix = try NSRegularExpression(pattern:
            #"^(-?|-?(0|[1-9][0-9]*)|-?(0|[1-9][0-9]*)\.[0-9]*|-?(0|[1-9][0-9]*)(\.[0-9]+)?[eE][+-]?[0-9]*)$"#)
        func matches(_ re: NSRegularExpression, _ s: String) -> Bool {
            re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
        }
        let alphabet = Array("-019.eE+".utf8)
        var strings: [[UInt8]] = [[]]
        var frontier: [[UInt8]] = [[]]
        for _ in 0..<5 {
            frontier = frontier.flatMap { p in alphabet.map { p + [$0] } }
            strings += frontier
        }
        let limits = JSONLimits(maxExponentDigits: 8)  // the grammar itself, not the digit limits
        let start = JSONPrefixState.anyValue(limits: limits)
        var checked = 0
        for bytes in strings.dropFirst() {
            let s = text(bytes)
            let (n, state) = feedPrefix(start, bytes)
            let isPrefix = n == bytes.count
            XCTAssertEqual(isPrefix, matches(prefix, s), s)
            if isPrefix { XCTAssertEqual(state.isComplete, matches(full, s), s) }
            // Inside an array the same number must be followed by a delimiter.
            var arr = JSONPrefixState.anyValue(limits: limits)
            XCTAssertTrue(arr.feed(UInt8(ascii: "[")))
            XCTAssertEqual(arr.accepts(bytes + [UInt8(ascii: "]")]), matches(full, s), "[\(s)]")
            checked += 1
        }
        XCTAssertEqual(checked, strings.count - 1)
    }

    /// Two raw bytes inside a string: accepted exactly when they can begin well-formed UTF-8, with the
    /// standard library's validator as the oracle (continuation bytes may be appended to finish a character).
    func testUTF8InStringsAgainstStandardLibrary() {
        // One byte from each continuation range that some lead byte needs (80..8F, 90..9F, A0..BF).
        let conts: [UInt8] = [0x80, 0x90, 0xA0]
        func decodes(_ b: [UInt8]) -> Bool { String(validating: b, as: UTF8.self) != nil }
        func validPrefix(_ b: [UInt8]) -> Bool {
            if decodes(b) { return true }
            for c1 in conts {
                if decodes(b + [c1]) { return true }
                for c2 in conts {
                    if decodes(b + [c1, c2]) { return true }
                    for c3 in conts where decodes(b + [c1, c2, c3]) { return true }
                }
            }
            return false
        }
        var inString = JSONPrefixState.anyValue()
        XCTAssertTrue(inString.feed(0x22))
        let candidates = (0x20...0xFF).map(UInt8.init).filter { $0 != 0x22 && $0 != 0x5C }
        for b1 in candidates {
            let one = inString.accepts([b1])
            XCTAssertEqual(one, validPrefix([b1]), "byte 0x\(String(b1, radix: 16))")
            guard one else { continue }
            for b2 in candidates {
                XCTAssertEqual(inString.accepts([b1, b2]), validPrefix([b1, b2]),
                               "bytes 0x\(String(b1, radix: 16)) 0x\(String(b2, radix: 16))")
            }
        }
        for control in 0..<0x20 { XCTAssertFalse(inString.accepts([UInt8(control)])) }
    }

    func testEscapes() {
        var s = JSONPrefixState.anyValue()
        XCTAssertTrue(s.feed(0x22))
        for e in Array("\"\\/bfnrt".utf8) { XCTAssertTrue(s.accepts([0x5C, e]), "\\\(Character(UnicodeScalar(e)))") }
        for e in Array("aUx0 '".utf8) { XCTAssertFalse(s.accepts([0x5C, e])) }
        XCTAssertTrue(s.accepts(Array("\\u00e9\\uD83D\\uDE00\\uFFFF\"".utf8)))
        XCTAssertFalse(s.accepts(Array("\\uDC".utf8)), "a lone low surrogate is refused at its second digit")
        XCTAssertFalse(s.accepts(Array("\\uD83D\\u00".utf8)), "a high surrogate wants a low one")
        XCTAssertFalse(s.accepts(Array("\\uD83Dx".utf8)))
        XCTAssertTrue(s.accepts(Array("\\uDBFF\\uDFFF".utf8)))
    }

    func testDepthLimit() {
        let limits = JSONLimits(maxDepth: 3)
        XCTAssertTrue(acceptsDocument(.anyValue(limits: limits), Array("[[[]]]".utf8)))
        XCTAssertFalse(acceptsDocument(.anyValue(limits: limits), Array("[[[[]]]]".utf8)))
        XCTAssertTrue(acceptsDocument(.jsonObject(limits: limits), Array("{\"a\":[{}]}".utf8)))
    }

    func testStringLengthLimitCountsCharacters() {
        let limits = JSONLimits(maxStringLength: 3)
        XCTAssertTrue(acceptsDocument(.anyValue(limits: limits), Array("\"é\\n😀\"".utf8)))
        XCTAssertTrue(acceptsDocument(.anyValue(limits: limits), Array("\"\\uD83D\\uDE00ab\"".utf8)))
        XCTAssertFalse(acceptsDocument(.anyValue(limits: limits), Array("\"abcd\"".utf8)))
        XCTAssertFalse(acceptsDocument(.jsonObject(limits: limits), Array("{\"abcd\":1}".utf8)))
    }
}
