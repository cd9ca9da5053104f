// Tokenizers loaded from tokenizer.json fixtures (trained with `tokenizers` / `sentencepiece`,
// converted and run by transformers) must reproduce transformers' ids and decodes exactly.

import Foundation
import XCTest
@testable import Tokenizers

final class TokenizerJSONTests: XCTestCase {
    private func check(_ expectedFile: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected: ExpectedFile = try Fixtures.load(expectedFile)
        let dir = Fixtures.root.appendingPathComponent(try XCTUnwrap(expected.directory))
        let tok = try TokenizerLoader.load(directory: dir)
        XCTAssertGreaterThan(expected.cases.count, 20)
        for c in expected.cases {
            let what = "\(expectedFile): \(c.text.debugDescription)"
            XCTAssertEqual(tok.encode(c.text, addSpecialTokens: false), c.ids, what, file: file, line: line)
            XCTAssertEqual(tok.encode(c.text, addSpecialTokens: true), c.ids_with_special, what, file: file, line: line)
            XCTAssertEqual(tok.decode(c.ids, skipSpecialTokens: false), c.decoded, what, file: file, line: line)
            XCTAssertEqual(tok.decode(c.ids, skipSpecialTokens: true), c.decoded_skip_special, what, file: file, line: line)
        }
    }

    func testByteLevelSmolLMStyle() throws { try check("bytelevel_smollm_expected.json") }
    func testByteLevelLlama3Style() throws { try check("bytelevel_llama3_expected.json") }
    func testSentencePieceBPELegacy() throws { try check("spm_bpe_legacy_expected.json") }
    func testSentencePieceBPEMetaspace() throws { try check("spm_bpe_metaspace_expected.json") }

    func testSpecialTokenMetadata() throws {
        let tok = try TokenizerLoader.load(directory: Fixtures.root.appendingPathComponent("spm_bpe_legacy"))
        XCTAssertEqual(tok.piece(for: try XCTUnwrap(tok.bosTokenId)), "<s>")
        XCTAssertEqual(tok.piece(for: try XCTUnwrap(tok.eosTokenId)), "</s>")
        XCTAssertTrue(tok.addsBOS)
        XCTAssertTrue(tok.isSpecial(try XCTUnwrap(tok.bosTokenId)))
        XCTAssertTrue(tok.stopTokenIds.contains(try XCTUnwrap(tok.eosTokenId)))
    }

    func testMissingDirectoryNamesTheFile() {
        let dir = URL(fileURLWithPath: "/nonexistent-tokenizer-dir")
        XCTAssertThrowsError(try TokenizerLoader.load(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("tokenizer.json"), "\(error)")
        }
    }
}
