// ALIGN against transformers' AlignModel, EfficientNetImageProcessor and BertTokenizerFast on a small random
// checkpoint (scripts/fixtures/align_fixtures.py writes Fixtures/align/tiny and align_expected.json).
import CLIP
import Foundation
import Imaging
import Tokenizers
import XCTest

struct ALIGNExpected: Decodable {
    struct Image: Decodable { let file: String; let pixel_values: [Double]; let image_embeds: [Double] }
    struct Text: Decodable {
        let text: String
        let input_ids: [Int]
        let input_ids_untruncated: [Int]
        let text_embeds: [Double]
    }
    struct Extra: Decodable {
        let name: String
        let image: String
        let pixel_values: [Double]
        let flat_stride: Int
        let shape: [Int]
        let settings: JSONValue
    }
    struct Tiny: Decodable {
        let images: [Image]
        let texts: [Text]
        let extra_preprocessing: [Extra]
        let logits_per_image: [[Double]]
        let temperature: Double
        let embed_dim: Int
    }
    let tiny: Tiny
}

/// Any JSON value, to hand a recorded settings dict back to a decoder.
enum JSONValue: Decodable {
    case object([String: JSONValue]), array([JSONValue]), string(String), number(Double), bool(Bool), null
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
    var any: Any {
        switch self {
        case .object(let o): return o.mapValues(\.any)
        case .array(let a): return a.map(\.any)
        case .string(let s): return s
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? (Int(n) as Any) : (n as Any)
        case .bool(let b): return b
        case .null: return NSNull()
        }
    }
}

final class ALIGNTests: XCTestCase {
    var dir: URL { get throws { try Fixtures.url("align/tiny") } }
    var expected: ALIGNExpected { get throws { try Fixtures.json("align/align_expected.json", as: ALIGNExpected.self) } }

    func testTokenizerMatchesBertTokenizerFast() throws {
        let e = try expected.tiny
        let fromJSON = try WordPieceTokenizer(tokenizerJSON: try dir.appendingPathComponent("tokenizer.json"))
        let fromVocab = try WordPieceTokenizer(vocabTXT: try dir.appendingPathComponent("vocab.txt"))
        XCTAssertGreaterThan(e.texts.count, 20)
        for t in e.texts {
            XCTAssertEqual(fromJSON.encode(t.text, maxLength: 64), t.input_ids, "tokenizer.json: \(t.text.debugDescription)")
            XCTAssertEqual(fromJSON.encode(t.text), t.input_ids_untruncated, "untruncated: \(t.text.debugDescription)")
            XCTAssertEqual(fromVocab.encode(t.text, maxLength: 64), t.input_ids, "vocab.txt: \(t.text.debugDescription)")
        }
        XCTAssertTrue(e.texts.contains { $0.input_ids_untruncated.count > 64 }, "the fixture has texts past 64 tokens")
    }

    func testPreprocessingMatchesEfficientNetImageProcessor() throws {
        let e = try expected.tiny
        let model = try VLMLoader.load(spec: try dir.path)
        for im in e.images {
            let pixels = model.preprocess(try ImageDecoder.decode(contentsOf: try Fixtures.url("images/\(im.file)")))
            XCTAssertEqual(pixels.count, im.pixel_values.count, im.file)
            let worst = zip(pixels, im.pixel_values).map { abs(Double($0) - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 1e-6, "\(im.file): largest pixel difference")
        }
        XCTAssertGreaterThanOrEqual(e.extra_preprocessing.count, 4)
        for x in e.extra_preprocessing {
            let data = try JSONSerialization.data(withJSONObject: x.settings.any)
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("align-pp-\(UUID().uuidString).json")
            try data.write(to: url)
            defer { try? FileManager.default.removeItem(at: url) }
            let config = try CLIPImageProcessorConfig(contentsOf: url, defaults: .efficientNet)
            let pp = try CLIPPreprocessor.huggingFace(config)
            let pixels = pp(try ImageDecoder.decode(contentsOf: try Fixtures.url("images/\(x.image)")))
            XCTAssertEqual(pixels.count, x.shape.reduce(1, *), x.name)
            let sampled = stride(from: 0, to: pixels.count, by: x.flat_stride).map { pixels[$0] }
            XCTAssertEqual(sampled.count, x.pixel_values.count, x.name)
            let worst = zip(sampled, x.pixel_values).map { abs(Double($0) - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 1e-5, "\(x.name): largest pixel difference")
        }
    }

    func testEmbeddingsAndLogitsMatchAlignModel() throws {
        let e = try expected.tiny
        let loaded = try VLMLoader.load(spec: try dir.path)
        let model = try XCTUnwrap(loaded as? ALIGNModel)
        XCTAssertEqual(model.embedDim, e.embed_dim)
        XCTAssertEqual(Double(model.logitScale), 1 / e.temperature, accuracy: 1e-5)
        let images = try model.embedPreprocessed(e.images.map { $0.pixel_values.map(Float.init) }, normalize: false)
        assertEmbeddings(images, e.images.map(\.image_embeds), minCosine: 0.9999, normTolerance: 1e-3, "image embeds")
        let texts = try model.embedTokens(e.texts.map(\.input_ids), normalize: false)
        assertEmbeddings(texts, e.texts.map(\.text_embeds), minCosine: 0.9999, normTolerance: 1e-3, "text embeds")
        // Through the files and the tokenizer, as the reward calls it.
        let fromFiles = try model.embedImageFiles(e.images.map { try Fixtures.url("images/\($0.file)") })
        let fromTexts = try model.embedTexts(e.texts.map(\.text))
        assertLogits(model.logits(images: fromFiles, texts: fromTexts), e.logits_per_image, relative: 1e-3, "logits_per_image")
    }

    func testCLIPLoaderRefusesAnALIGNCheckpointByName() throws {
        XCTAssertThrowsError(try CLIPModel.load(spec: try dir.path)) { error in
            XCTAssertTrue("\(error)".contains("ALIGN"), "\(error)")
        }
    }

    func testBrokenCheckpointsAreRefusedNamingTheFault() throws {
        let src = try dir
        let fm = FileManager.default
        let tmp = fm.temporaryDirectory.appendingPathComponent("align-broken-\(UUID().uuidString)")
        try fm.copyItem(at: src, to: tmp)
        defer { try? fm.removeItem(at: tmp) }
        let configURL = tmp.appendingPathComponent("config.json")
        let original = try Data(contentsOf: configURL)
        var config = try XCTUnwrap(try JSONSerialization.jsonObject(with: original) as? [String: Any])

        // A projection width that is not the image tower's.
        config["projection_dim"] = 64
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        XCTAssertThrowsError(try VLMLoader.load(spec: tmp.path)) { XCTAssertTrue("\($0)".contains("projection_dim"), "\($0)") }

        // A deeper text tower than the checkpoint holds: the first missing tensor is named.
        config = try XCTUnwrap(try JSONSerialization.jsonObject(with: original) as? [String: Any])
        var text = try XCTUnwrap(config["text_config"] as? [String: Any])
        text["num_hidden_layers"] = 3
        config["text_config"] = text
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        XCTAssertThrowsError(try VLMLoader.load(spec: tmp.path)) {
            XCTAssertTrue("\($0)".contains("text_model.encoder.layer.2"), "\($0)")
        }

        // Not JSON.
        try Data("{\"model_type\": \"align\", ".utf8).write(to: configURL)
        XCTAssertThrowsError(try VLMLoader.load(spec: tmp.path)) { XCTAssertTrue("\($0)".contains("config.json"), "\($0)") }

        // An unknown family names what is supported.
        try Data("{\"model_type\": \"blip\"}".utf8).write(to: configURL)
        XCTAssertThrowsError(try VLMLoader.load(spec: tmp.path)) {
            XCTAssertTrue("\($0)".contains("blip") && "\($0)".contains("align"), "\($0)")
        }
    }
}

/// A full-size ALIGN (kakaobrain/align-base's shapes: BERT-base and EfficientNet-B7 at 289 px) with the
/// deterministic weights of align_fixtures.py, regenerated at test time (about 700 MB, never stored).
final class ALIGNFullSizeTests: XCTestCase {
    struct Real: Decodable {
        let generator: String
        let tensors: [DeterministicB32.Tensor]
        let images: [String]
        let image_embeds: [[Double]]
        let token_ids: [[Int]]
        let text_embeds: [[Double]]
    }
    struct File: Decodable { let real: Real }

    /// align_fixtures.py's rule (`real.generator`).
    static func rule(_ name: String, _ shape: [Int]) -> (center: Double, scale: Double?) {
        if name == "temperature" { return (1, nil) }
        if name.hasSuffix(".running_mean") { return (0, 0.05) }
        if name.hasSuffix(".running_var") { return (1.25, 0.25) }
        if name.lowercased().contains("norm") || name.contains("_bn.") {
            return name.hasSuffix(".weight") ? (1, 0.1) : (0, 0.05)
        }
        if name.hasSuffix(".bias") { return (0, 0.02) }
        if ["word_embeddings", "position_embeddings", "token_type_embeddings"].contains(where: { name.contains($0) }) {
            return (0, 0.05)
        }
        let fanIn = Double(shape.dropFirst().reduce(1, *))
        return (0, Double(Float((shape.count == 4 ? 2.65 : 1.0) / fanIn.squareRoot())))
    }

    func testFullSizeALIGNMatchesAlignModel() throws {
        let url = try Fixtures.url("align/align_expected.json")
        let raw = try Data(contentsOf: url)
        let real = try JSONDecoder().decode(File.self, from: raw).real
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: raw) as? [String: Any])
        let r = try XCTUnwrap(json["real"] as? [String: Any])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-align-real-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try DeterministicB32.write(to: dir, tensors: real.tensors,
                                   configs: ["config.json": try XCTUnwrap(r["config"]),
                                             "preprocessor_config.json": try XCTUnwrap(r["preprocessor_config"])],
                                   generator: real.generator, rule: Self.rule)
        let model = try XCTUnwrap(try VLMLoader.load(spec: dir.path) as? ALIGNModel)
        XCTAssertEqual(model.embedDim, 640)
        XCTAssertEqual(model.config.vision.blocks.count, 55)
        let images = try real.images.map { try ImageDecoder.decode(contentsOf: try Fixtures.url("images/\($0)")) }
        assertEmbeddings(try model.embedImages(images, normalize: false), real.image_embeds, minCosine: 0.9999,
                         normTolerance: 1e-3, "image embeds")
        assertEmbeddings(try model.embedTokens(real.token_ids, normalize: false), real.text_embeds, minCosine: 0.9999,
                         normTolerance: 1e-3, "text embeds")
    }
}
