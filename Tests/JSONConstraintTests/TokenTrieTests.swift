// TokenTrie: allowedTokens / fillAllowedMask must equal the brute-force check (feed every token's bytes
// into a copy of the state) on a synthetic vocabulary, for states taken from the fixture documents in
// JSON mode and under schemas, including string-length limits that exercise the subtree shortcut.

import Foundation
import XCTest
@testable import JSONConstraint

final class TokenTrieTests: XCTestCase {
    /// Single bytes, pieces cut from fixture documents (so tokens such as `":"`, `{"a` or half a UTF-8
    /// character exist), random byte strings, duplicates, empty and excluded entries.
    static func vocabulary(_ cases: JSONCases, size: Int, seed: UInt64) -> [[UInt8]] {
        var rng = TestRNG(seed: seed)
        var vocab: [[UInt8]] = (0...255).map { [UInt8($0)] }
        let docs = cases.valid.map(\.bytes) + cases.schemas.flatMap { $0.valid.map(Hex.decode) }
        let common = ["\":", "\": ", "\",", "\"}", "\"]", "},", "}]", "{\"", "[\"", "[{", "  ", "    ", "\n", "\n  ",
                      "true", "false", "null", "00", "0.", "e+", "\\u", "\\n", "\\\"", "é", "中文", "😀"]
        vocab += common.map { Array($0.utf8) }
        while vocab.count < size {
            let r = rng.below(10)
            if r < 7 {
                let d = docs[rng.below(docs.count)]
                guard d.count > 1 else { continue }
                let a = rng.below(d.count - 1)
                let len = 1 + rng.below(min(8, d.count - a))
                vocab.append(Array(d[a..<(a + len)]))
            } else if r < 8 {
                vocab.append((0..<(1 + rng.below(6))).map { _ in UInt8(rng.below(256)) })
            } else if r < 9 {
                vocab.append(vocab[rng.below(vocab.count)])  // duplicate byte string
            } else {
                let letters = Array("abcdefghij klmnop".utf8)
                vocab.append((0..<(1 + rng.below(12))).map { _ in letters[rng.below(letters.count)] })
            }
        }
        vocab[300] = []  // an empty entry, as a special token's slot would be
        return vocab
    }

    private func bruteForce(_ vocab: [[UInt8]], _ state: JSONPrefixState, excluded: Set<Int>) -> Set<Int> {
        Set(vocab.indices.filter { !vocab[$0].isEmpty && !excluded.contains($0) && state.accepts(vocab[$0]) })
    }

    private func states(_ cases: JSONCases, every stride: Int, limits: JSONLimits) throws -> [(JSONPrefixState, String)] {
        var out: [(JSONPrefixState, String)] = []
        for doc in cases.valid.prefix(60) where doc.object && doc.max_ws <= 4 {
            let bytes = doc.bytes
            for k in Swift.stride(from: 0, to: bytes.count, by: stride) {
                let (n, s) = feedPrefix(.jsonObject(limits: limits), Array(bytes[..<k]))
                if n == k { out.append((s, text(Array(bytes[..<k])))) }
            }
        }
        for c in cases.schemas.prefix(24) {
            let start = JSONPrefixState(schema: try JSONSchema(jsonString: c.schema_text), limits: limits)
            for hex in c.valid.prefix(2) {
                let bytes = Hex.decode(hex)
                for k in Swift.stride(from: 0, to: bytes.count, by: stride) {
                    let (n, s) = feedPrefix(start, Array(bytes[..<k]))
                    if n == k { out.append((s, c.name + ": " + text(Array(bytes[..<k])))) }
                }
            }
        }
        return out
    }

    private func compare(limits: JSONLimits, stride: Int, seed: UInt64) throws {
        let cases = try Fixtures.cases()
        let vocab = Self.vocabulary(cases, size: 2500, seed: seed)
        let excluded: Set<Int> = [7, 1000]
        let trie = TokenTrie(tokens: vocab, excluding: excluded)
        XCTAssertEqual(trie.vocabularySize, vocab.count)
        let all = try states(cases, every: stride, limits: limits)
        XCTAssertGreaterThan(all.count, 100)
        var mask: [Bool] = []
        var nonTrivial = 0
        for (state, label) in all {
            let fast = trie.allowedTokens(from: state)
            let expected = bruteForce(vocab, state, excluded: excluded)
            XCTAssertEqual(fast.count, Set(fast).count, "duplicates for \(label.debugDescription)")
            if Set(fast) != expected {
                let missing = expected.subtracting(fast).prefix(5).map { text(vocab[$0]).debugDescription }
                let extra = Set(fast).subtracting(expected).prefix(5).map { text(vocab[$0]).debugDescription }
                XCTFail("state \(label.debugDescription): missing \(missing), extra \(extra)")
            }
            trie.fillAllowedMask(from: state, into: &mask)
            XCTAssertEqual(Set(mask.indices.filter { mask[$0] }), expected, label)
            if expected.count > 1 && expected.count < vocab.count / 2 { nonTrivial += 1 }
        }
        XCTAssertGreaterThan(nonTrivial, 50)
    }

    func testAllowedTokensMatchBruteForce() throws {
        try compare(limits: JSONLimits(), stride: 3, seed: 1)
    }

    func testAllowedTokensMatchBruteForceWithShortStrings() throws {
        // maxStringLength 6 makes the subtree shortcut decline tall subtrees near the limit.
        try compare(limits: JSONLimits(maxStringLength: 6), stride: 2, seed: 2)
    }

    func testInsideStringMostTokensAllowedAndShortcutAgrees() throws {
        let cases = try Fixtures.cases()
        let vocab = Self.vocabulary(cases, size: 4000, seed: 3)
        let trie = TokenTrie(tokens: vocab)
        for prefix in ["{\"k\": \"", "{\"k\": \"\u{E9}", "{\"k\": \"a\\", "{\"k\": \"\\u00"] {
            var s = JSONPrefixState.jsonObject()
            // Cut "é" after its first byte to be inside a multi-byte character.
            var bytes = Array(prefix.utf8)
            if prefix.hasSuffix("\u{E9}") { bytes.removeLast() }
            XCTAssertTrue(s.feed(bytes))
            let fast = Set(trie.allowedTokens(from: s))
            XCTAssertEqual(fast, bruteForce(vocab, s, excluded: []), prefix)
        }
    }

    func testAdvanceAndExclusion() throws {
        let vocab: [[UInt8]] = [Array("{\"".utf8), Array("a\":".utf8), Array(" 1".utf8), Array("}".utf8), [], Array("{".utf8)]
        let trie = TokenTrie(tokens: vocab, excluding: [5])
        XCTAssertEqual(trie.tokenCount, 4)
        var s = JSONPrefixState.jsonObject()
        XCTAssertEqual(Set(trie.allowedTokens(from: s)), [0])
        XCTAssertTrue(trie.advance(&s, token: 0))
        XCTAssertEqual(Set(trie.allowedTokens(from: s)), [0, 1, 2, 3], "inside a key all are text ({\" closes it)")
        XCTAssertTrue(trie.advance(&s, token: 1))
        XCTAssertEqual(Set(trie.allowedTokens(from: s)), [0, 2], "a value: a nested object or the number")
        XCTAssertFalse(trie.advance(&s, token: 3))
        XCTAssertTrue(trie.advance(&s, bytes: Array(" 1}".utf8)))
        XCTAssertTrue(s.isComplete)
        XCTAssertEqual(trie.allowedTokens(from: s), [])
        var logits = [Float](repeating: 1, count: 6)
        trie.maskLogits(&logits, state: JSONPrefixState.jsonObject())
        XCTAssertEqual(logits.map { $0.isFinite }, [true, false, false, false, false, false])
    }
}
