// The hand-written pre-tokenizer scanners against Hugging Face's regex splits (the fixture) and
// against ICU's regex engine running the same patterns, on every fixture text.

import Foundation
import XCTest
@testable import Tokenizers

final class SplitterTests: XCTestCase {
    struct SplitCase: Decodable { var pattern: String; var text: String; var pieces: [String] }
    struct SplitFile: Decodable { var patterns: [String: String]; var cases: [SplitCase] }

    private func pieces(_ text: String, _ ranges: [Range<Int>]) -> [String] {
        let s = Array(text.unicodeScalars)
        return ranges.map { r in var v = String.UnicodeScalarView(); v.append(contentsOf: s[r]); return String(v) }
    }

    func testScannersMatchHuggingFaceSplits() throws {
        let file: SplitFile = try Fixtures.load("pretokenizer_splits.json")
        var checked = 0
        for c in file.cases {
            let scalars = c.text.unicodeScalars.map(\.value)
            var ranges = [Range<Int>]()
            if c.pattern == "digits" {
                DigitSplitter.split(scalars, individual: true, into: &ranges)
            } else {
                let p = try XCTUnwrap(SplitPattern(rawValue: c.pattern))
                p.split(scalars, into: &ranges)
            }
            XCTAssertEqual(pieces(c.text, ranges), c.pieces, "pattern \(c.pattern), text \(c.text.debugDescription)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 100)
    }

    func testPatternRecognitionFromTokenizerJSON() throws {
        let file: SplitFile = try Fixtures.load("pretokenizer_splits.json")
        for (name, regex) in file.patterns {
            XCTAssertEqual(SplitPattern(regex: regex), SplitPattern(rawValue: name), name)
        }
    }

    /// ICU (NSRegularExpression) as a second oracle: it runs the very regexes, so this checks the
    /// scanners on the same texts with a different engine.
    func testScannersMatchICURegex() throws {
        let file: SplitFile = try Fixtures.load("pretokenizer_splits.json")
        for name in ["gpt2", "llama3", "qwen2"] {
            let regex = try NSRegularExpression(pattern: try XCTUnwrap(file.patterns[name]))
            let icu = RegexSplitter(regex: regex, removeMatches: false, invert: false)
            let p = try XCTUnwrap(SplitPattern(rawValue: name))
            for c in file.cases where c.pattern == name {
                let s = c.text.unicodeScalars.map(\.value)
                var a = [Range<Int>](), b = [Range<Int>]()
                p.split(s, into: &a)
                icu.split(s, into: &b)
                XCTAssertEqual(a, b, "\(name): \(c.text.debugDescription)")
            }
        }
    }

    func testByteLevelMapIsABijectionOverBytes() {
        let m = ByteLevel.byteToScalar
        XCTAssertEqual(Set(m).count, 256)
        for b in 0..<256 { XCTAssertEqual(ByteLevel.byte(for: m[b]), UInt8(b)) }
        // GPT-2's well-known spellings, from the published vocabularies.
        XCTAssertEqual(m[0x20], "Ġ")
        XCTAssertEqual(m[0x0A], "Ċ")
        XCTAssertEqual(m[0x41], "A")
    }
}
