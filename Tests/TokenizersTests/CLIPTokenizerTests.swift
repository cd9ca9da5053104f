// CLIPTokenizer against open_clip's SimpleTokenizer and transformers' CLIPTokenizerFast, both run
// on the same prefix of the real bpe_simple_vocab_16e6 merges (the full file is too big to commit).

import Foundation
import XCTest
@testable import Tokenizers

final class CLIPTokenizerTests: XCTestCase {
    struct Case: Decodable { var text: String; var transformers_ids: [Int]; var open_clip_ids: [Int]? }
    struct File: Decodable { var directory: String; var start_of_text: Int; var end_of_text: Int; var cases: [Case] }

    func testMatchesOpenCLIPAndTransformers() throws {
        let f: File = try Fixtures.load("clip_expected.json")
        let dir = Fixtures.root.appendingPathComponent(f.directory)
        let fromOpenCLIP = try CLIPTokenizer(bpeVocabulary: String(contentsOf: dir.appendingPathComponent("bpe_simple_vocab_prefix.txt"), encoding: .utf8))
        let fromHF = try CLIPTokenizer(vocabJSON: dir.appendingPathComponent("vocab.json"),
                                       mergesTXT: dir.appendingPathComponent("merges.txt"))
        let fromJSON = try CLIPTokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"))
        for tok in [fromOpenCLIP, fromHF, fromJSON] {
            XCTAssertEqual(tok.startOfTextId, f.start_of_text)
            XCTAssertEqual(tok.endOfTextId, f.end_of_text)
            for c in f.cases {
                if let oc = c.open_clip_ids {
                    XCTAssertEqual(tok.encode(c.text, padId: 0), oc, "open_clip: \(c.text.debugDescription)")
                }
                XCTAssertEqual(tok.encode(c.text, padId: f.end_of_text), c.transformers_ids, "transformers: \(c.text.debugDescription)")
            }
        }
        XCTAssertTrue(f.cases.contains { $0.open_clip_ids.map { !$0.contains(0) } ?? false }, "one case must exercise truncation")
        XCTAssertGreaterThan(f.cases.filter { $0.open_clip_ids != nil }.count, 20)
    }

    /// open_clip reads its vocabulary gzipped; the .gz of the same prefix (Python's gzip) must give open_clip's ids.
    func testGzippedVocabularyGivesOpenCLIPIds() throws {
        let f: File = try Fixtures.load("clip_expected.json")
        let dir = Fixtures.root.appendingPathComponent(f.directory)
        let tok = try CLIPTokenizer(bpeFile: dir.appendingPathComponent("bpe_simple_vocab_prefix.txt.gz"))
        let plain = try CLIPTokenizer(bpeFile: dir.appendingPathComponent("bpe_simple_vocab_prefix.txt"))
        XCTAssertEqual(tok.vocabularySize, plain.vocabularySize)
        XCTAssertEqual(tok.endOfTextId, f.end_of_text)
        let cases = f.cases.filter { $0.open_clip_ids != nil }
        XCTAssertGreaterThan(cases.count, 20)
        for c in cases { XCTAssertEqual(tok.encode(c.text, padId: 0), c.open_clip_ids, c.text.debugDescription) }
    }

    func testCorruptGzippedVocabularyNamesTheFile() throws {
        let f: File = try Fixtures.load("clip_expected.json")
        var bytes = [UInt8](try Data(contentsOf: Fixtures.root.appendingPathComponent(f.directory)
            .appendingPathComponent("bpe_simple_vocab_prefix.txt.gz")))
        bytes[bytes.count / 2] ^= 0x40  // mid-stream: decoding or the CRC-32 check must fail
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).txt.gz")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertThrowsError(try CLIPTokenizer(bpeFile: url)) { error in
            XCTAssertTrue("\(error)".contains(url.lastPathComponent), "\(error)")
        }
    }

    func testDecodeRestoresLowercasedWords() throws {
        let f: File = try Fixtures.load("clip_expected.json")
        let dir = Fixtures.root.appendingPathComponent(f.directory)
        let tok = try CLIPTokenizer(vocabJSON: dir.appendingPathComponent("vocab.json"),
                                    mergesTXT: dir.appendingPathComponent("merges.txt"))
        XCTAssertEqual(tok.decode([tok.startOfTextId] + tok.tokenize("A photo of a Beagle.") + [tok.endOfTextId]), "a photo of a beagle .")
    }
}
