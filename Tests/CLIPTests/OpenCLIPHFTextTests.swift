// open_clip configs with a transformers text tower (HFTextEncoder over XLM-R / RoBERTa) against open_clip itself
// (scripts/fixtures/openclip_hftext_fixtures.py): the encoder's shape from the config.json beside the weights,
// open_clip's HFTokenizer over an XLM-R tokenizer.json, mean pooling over the real tokens and the MLP projection.
import Foundation
import XCTest
@testable import CLIP

final class OpenCLIPHFTextTests: XCTestCase {
    struct Expected: Decodable, OpenCLIPTinyRecord {
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
        try assertMatchesOpenCLIP(model, e, "xlmr_tiny")
        let ctx = model.architecture.text.contextLength
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
