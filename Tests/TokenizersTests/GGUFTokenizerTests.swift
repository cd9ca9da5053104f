// The tokenizers stored in the real GGUF models: SmolLM2 against transformers (which reads the
// GGUF file itself), Gemma 3 against llama.cpp. Skipped loudly when scripts/setup.sh has not
// fetched the models.

import Foundation
import ModelFiles
import XCTest
@testable import Tokenizers

final class GGUFTokenizerTests: XCTestCase {
    private func check(_ expectedFile: String, checkDecode: Bool = true) throws -> any Tokenizer {
        let expected: ExpectedFile = try Fixtures.load(expectedFile)
        let url = try Fixtures.model(try XCTUnwrap(expected.model_file))
        let tok = try TokenizerLoader.load(gguf: GGUFFile(url: url))
        for c in expected.cases {
            let what = "\(expectedFile): \(c.text.debugDescription)"
            XCTAssertEqual(tok.encode(c.text, addSpecialTokens: false), c.ids, what)
            XCTAssertEqual(tok.encode(c.text, addSpecialTokens: true), c.ids_with_special, what)
            if checkDecode {
                XCTAssertEqual(tok.decode(c.ids, skipSpecialTokens: false), c.decoded, what)
                XCTAssertEqual(tok.decode(c.ids, skipSpecialTokens: true), c.decoded_skip_special, what)
            }
        }
        return tok
    }

    func testSmolLM2MatchesTransformers() throws {
        let tok = try check("smollm2_gguf_expected.json")
        XCTAssertEqual(tok.vocabularySize, 49152)
        XCTAssertEqual(tok.piece(for: 1), "<|im_start|>")
        XCTAssertEqual(tok.bosTokenId, 1)
        XCTAssertEqual(tok.eosTokenId, 2)
        XCTAssertFalse(tok.addsBOS)
        XCTAssertTrue(tok.stopTokenIds.contains(2))
        XCTAssertNotNil(tok.chatTemplate)
    }

    /// llama.cpp applies SmolLM2's "smollm" digit pre-split, which transformers' GGUF reader skips.
    func testSmolLM2MatchesLlamaCpp() throws {
        _ = try check("smollm2_gguf_llamacpp_expected.json")
    }

    func testGemma3MatchesLlamaCpp() throws {
        let tok = try check("gemma3_gguf_expected.json")
        XCTAssertEqual(tok.vocabularySize, 262_144)
        XCTAssertTrue(tok.addsBOS)
        XCTAssertEqual(tok.piece(for: try XCTUnwrap(tok.bosTokenId)), "<bos>")
        let eot = try XCTUnwrap((0..<tok.vocabularySize).first { tok.piece(for: $0) == "<end_of_turn>" })
        XCTAssertTrue(tok.stopTokenIds.contains(eot), "<end_of_turn> must stop generation")
    }

    func testRoundTripsOnFixtureTexts() throws {
        let expected: ExpectedFile = try Fixtures.load("smollm2_gguf_expected.json")
        for name in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"] {
            let tok = try TokenizerLoader.load(gguf: GGUFFile(url: try Fixtures.model(name)))
            for c in expected.cases {
                XCTAssertEqual(tok.decode(tok.encode(c.text, addSpecialTokens: false), skipSpecialTokens: false), c.text,
                               "\(name): \(c.text.debugDescription)")
            }
        }
    }
}
