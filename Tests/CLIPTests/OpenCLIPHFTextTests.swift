// open_clip configs with a transformers text tower (HFTextEncoder over XLM-R / RoBERTa) against open_clip itself
// (scripts/fixtures/openclip_hftext_fixtures.py): the encoder's shape from the config.json beside the weights,
// open_clip's HFTokenizer over an XLM-R tokenizer.json, mean pooling over the real tokens and the MLP projection.
import Foundation
import Imaging
import XCTest
@testable import CLIP

final class OpenCLIPHFTextTests: XCTestCase {
    struct Expected: Decodable {
        let images: [String]
        let image_embeds: [[Double]]
        let texts: [String]
        let token_ids: [[Int]]
        let pad_token_id: Int
        let text_embeds: [[Double]]
        let logit_scale: Double
        let logits_per_image: [[Double]]
    }

    func testTinyXLMRobertaMatchesOpenCLIP() throws {
        let e = try Fixtures.json("openclip_hftext/openclip_hftext_expected.json", as: Expected.self)
        let model = try CLIPModel.load(spec: try Fixtures.url("openclip_hftext/xlmr_tiny").path)
        let hf = try XCTUnwrap(model.architecture.hfText)
        XCTAssertEqual(hf.modelName, "xlm-roberta-base")
        XCTAssertEqual(hf.model.encoder.hiddenSize, 32, "the config.json beside the weights wins over the built-in hub shape")
        XCTAssertEqual(hf.projection, .mlp)
        let urls = try e.images.map { try Fixtures.url("images/\($0)") }
        let images = try model.embedImages(urls.map { try ImageDecoder.decode(contentsOf: $0) }, normalize: false)
        assertEmbeddings(images, e.image_embeds, minCosine: 0.9999, normTolerance: 1e-3, "image embeds")
        let tok = try XCTUnwrap(model.tokenizer)
        let ctx = model.architecture.text.contextLength
        for (text, want) in zip(e.texts, e.token_ids) {
            XCTAssertEqual(tok.tokenIds(text, contextLength: ctx), want, text)
        }
        let texts = try model.embedTexts(e.texts, normalize: false)
        assertEmbeddings(texts, e.text_embeds, minCosine: 0.9999, normTolerance: 1e-3, "text embeds")
        assertLogits(model.logits(images: images.map(l2Normalized), texts: texts.map(l2Normalized), scale: Float(e.logit_scale)),
                     e.logits_per_image, relative: 1e-3, "logits_per_image")
        // A text of padding only has no tokens to average: refused, not NaN.
        XCTAssertThrowsError(try model.embedTokens([[Int](repeating: e.pad_token_id, count: ctx)], normalize: false))
    }

    /// Without its config.json the encoder takes the shape of the hub model the config names, and a name ex2 has no
    /// shape for is refused naming the file to download.
    func testHubShapesAndMissingConfig() throws {
        let arch = try OpenCLIPRegistry.modelConfig("xlm-roberta-large-ViT-H-14").architecture(name: "xlm-roberta-large-ViT-H-14")
        XCTAssertEqual(arch.hfText?.model.encoder.hiddenSize, 1024)
        XCTAssertEqual(arch.hfText?.model.encoder.layers, 24)
        var cfg = try OpenCLIPRegistry.modelConfig("roberta-ViT-B-32")
        cfg.textCfg.hfModelName = "example/unknown-encoder"
        XCTAssertThrowsError(try cfg.architecture(name: "x")) { e in
            XCTAssertTrue("\(e)".contains("config.json") && "\(e)".contains("example/unknown-encoder"), "\(e)")
        }
    }
}
