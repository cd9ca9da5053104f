// SigLIP against transformers' SiglipModel, SiglipImageProcessor and SiglipTokenizer, and SentencePiece's
// own unigram encoder, on a small random checkpoint and a regenerated full-size siglip-base-patch16-224
// (scripts/fixtures/siglip_fixtures.py writes Fixtures/siglip).
import CLIP
import Foundation
import Imaging
import Tokenizers
import XCTest

struct SigLIPExpected: Decodable {
    struct SPMText: Decodable { let text: String; let ids: [Int] }
    struct SPM: Decodable { let texts: [SPMText] }
    struct Text: Decodable { let text: String; let input_ids: [Int]; let input_ids_unpadded: [Int]; let text_embeds: [Double] }
    struct Image: Decodable { let file: String; let pixel_values: [Double]; let image_embeds: [Double] }
    struct Tiny: Decodable {
        let texts: [Text]
        let images: [Image]
        let logits_per_image: [[Double]]
        let logit_scale: Double
        let logit_bias: Double
        let max_length: Int
    }
    struct Real: Decodable {
        struct Checkpoint: Decodable { let generator: String; let tensors: [DeterministicB32.Tensor] }
        let checkpoint: Checkpoint
        let images: [String]
        let image_embeds: [[Double]]
        let token_ids: [[Int]]
        let text_embeds: [[Double]]
        let logits_per_image: [[Double]]
    }
    let spm: SPM
    let tiny: Tiny
    let real: Real
}

final class SigLIPTests: XCTestCase {
    var expected: SigLIPExpected { get throws { try Fixtures.json("siglip/siglip_expected.json", as: SigLIPExpected.self) } }

    /// The normaliser (nmt_nfkc charsmap, whitespace rules) and the unigram Viterbi, as spm.encode gives them.
    func testSentencePieceUnigramMatchesTheLibrary() throws {
        let url = try Fixtures.url("siglip/spm/spiece.model")
        let m = try SentencePieceModelFile(contentsOf: url)
        XCTAssertEqual(m.pieces.count, 400)
        XCTAssertEqual(m.normalizerName, "nmt_nfkc")
        let normalizer = SentencePieceNormalizer(charsmap: try PrecompiledCharsmap(m.precompiledCharsmap, file: url.path),
                                                 addDummyPrefix: m.addDummyPrefix, removeExtraWhitespaces: m.removeExtraWhitespaces,
                                                 escapeWhitespaces: m.escapeWhitespaces)
        let unigram = UnigramModel(pieces: m.pieces.map(\.text), scores: m.pieces.map(\.score), types: m.pieces.map(\.type),
                                   unkId: m.unkId, doublePrecision: false, fuseUnknown: true)
        let e = try expected.spm
        XCTAssertGreaterThan(e.texts.count, 20)
        for t in e.texts {
            XCTAssertEqual(unigram.encode(normalizer.normalize(t.text)).map(Int.init), t.ids, t.text.debugDescription)
        }
    }

    func testTokenizerMatchesSiglipTokenizer() throws {
        let e = try expected.tiny
        let tok = try SiglipTokenizer(spieceModel: try Fixtures.url("siglip/tiny/spiece.model"))
        for t in e.texts {
            let ids = tok.encode(t.text, maxLength: e.max_length)
            XCTAssertEqual(ids + [Int](repeating: tok.padId, count: max(0, e.max_length - ids.count)), t.input_ids, t.text.debugDescription)
            XCTAssertEqual(tok.encode(t.text), t.input_ids_unpadded, "unpadded: \(t.text.debugDescription)")
        }
        XCTAssertTrue(e.texts.contains { $0.input_ids_unpadded.count > e.max_length }, "the fixture has texts past the context")
    }

    func testTinyMatchesSiglipModel() throws {
        let e = try expected.tiny
        let model = try XCTUnwrap(try VLMLoader.load(spec: try Fixtures.url("siglip/tiny").path) as? SigLIPModel)
        XCTAssertEqual(Double(model.logitScale), e.logit_scale, accuracy: 1e-4)
        XCTAssertEqual(Double(model.logitBias), e.logit_bias, accuracy: 1e-5)
        for im in e.images {
            let pixels = model.preprocess(try ImageDecoder.decode(contentsOf: try Fixtures.url("images/\(im.file)")))
            let worst = zip(pixels, im.pixel_values).map { abs(Double($0) - $1) }.max() ?? .infinity
            XCTAssertEqual(pixels.count, im.pixel_values.count)
            XCTAssertLessThanOrEqual(worst, 1e-6, "\(im.file): pixels")
        }
        assertEmbeddings(try model.embedPreprocessed(e.images.map { $0.pixel_values.map(Float.init) }, normalize: false),
                         e.images.map(\.image_embeds), minCosine: 0.9999, normTolerance: 1e-3, "image embeds")
        assertEmbeddings(try model.embedTokens(e.texts.map(\.input_ids), normalize: false), e.texts.map(\.text_embeds),
                         minCosine: 0.9999, normTolerance: 1e-3, "text embeds")
        let images = try model.embedImageFiles(e.images.map { try Fixtures.url("images/\($0.file)") })
        let texts = try model.embedTexts(e.texts.map(\.text))
        assertLogits(model.logits(images: images, texts: texts), e.logits_per_image, relative: 1e-3, "logits_per_image")
    }

    /// The SigLIP rule of siglip_fixtures.py (`real.checkpoint.generator`).
    static func rule(_ name: String, _ shape: [Int]) -> (center: Double, scale: Double?) {
        if name == "logit_scale" { return (Double(Float(log(10.0))), nil) }
        if name == "logit_bias" { return (-10, nil) }
        if name.contains("norm") { return name.hasSuffix(".weight") ? (1, 0.1) : (0, 0.05) }
        if name.hasSuffix(".bias") { return (0, 0.02) }
        if ["position_embedding", "token_embedding", "probe"].contains(where: { name.contains($0) }) { return (0, 0.05) }
        let fanIn = Double(shape.dropFirst().reduce(1, *))
        return (0, Double(Float(1 / fanIn.squareRoot())))
    }

    func testFullSizeSigLIPBase() throws {
        let url = try Fixtures.url("siglip/siglip_expected.json")
        let raw = try Data(contentsOf: url)
        let real = try expected.real
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: raw) as? [String: Any])
        let ckpt = try XCTUnwrap((json["real"] as? [String: Any])?["checkpoint"] as? [String: Any])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-siglip-real-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try DeterministicB32.write(to: dir, tensors: real.checkpoint.tensors,
                                   configs: ["config.json": try XCTUnwrap(ckpt["config"]),
                                             "preprocessor_config.json": try XCTUnwrap(ckpt["preprocessor_config"])],
                                   generator: real.checkpoint.generator, rule: Self.rule)
        let model = try XCTUnwrap(try VLMLoader.load(spec: dir.path) as? SigLIPModel)
        XCTAssertEqual(model.embedDim, 768)
        let images = try real.images.map { try ImageDecoder.decode(contentsOf: try Fixtures.url("images/\($0)")) }
        let imageEmbeds = try model.embedImages(images, normalize: false)
        assertEmbeddings(imageEmbeds, real.image_embeds, minCosine: 0.9999, normTolerance: 1e-3, "image embeds")
        let textEmbeds = try model.embedTokens(real.token_ids, normalize: false)
        assertEmbeddings(textEmbeds, real.text_embeds, minCosine: 0.9999, normTolerance: 1e-3, "text embeds")
        assertLogits(model.logits(images: imageEmbeds.map(l2Normalized), texts: textEmbeds.map(l2Normalized)),
                     real.logits_per_image, relative: 1e-3, "logits_per_image")
    }

    /// Truncated and corrupted spiece.model files are refused or read, never crash, and whatever reads still
    /// tokenizes.
    func testCorruptSentencePieceModelsFailCleanly() throws {
        let good = [UInt8](try Data(contentsOf: try Fixtures.url("siglip/spm/spiece.model")))
        var rng = SystemRandomNumberGenerator()
        var refused = 0, read = 0
        for trial in 0..<300 {
            var b = good
            switch trial % 3 {
            case 0: b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
            case 1: for _ in 0..<8 { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            default:  // damage inside the charsmap, past the pieces
                for _ in 0..<64 { b[Int.random(in: (b.count / 8)..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            }
            do {
                let m = try SentencePieceModelFile(data: Data(b), file: "fuzz")
                let cm = m.precompiledCharsmap.isEmpty ? nil : try PrecompiledCharsmap(m.precompiledCharsmap, file: "fuzz")
                let n = SentencePieceNormalizer(charsmap: cm, addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true)
                let u = UnigramModel(pieces: m.pieces.map(\.text), scores: m.pieces.map(\.score), types: m.pieces.map(\.type),
                                     unkId: m.unkId, doublePrecision: false, fuseUnknown: true)
                let ids = u.encode(n.normalize("Ｃａｆé a bird\u{0}\u{FFFD} 鳥 \u{1F600}"))
                XCTAssertTrue(ids.allSatisfy { $0 >= 0 && Int($0) < m.pieces.count })
                read += 1
            } catch is TokenizerError {
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 50)
        print("spiece.model fuzz: \(read) read, \(refused) refused")
    }
}
