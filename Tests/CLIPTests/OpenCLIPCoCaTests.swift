// open_clip's CoCa configs (coca_ViT-B-32, coca_ViT-L-14, coca_base) against open_clip itself.
import Foundation
import Imaging
import XCTest
@testable import CLIP

/// open_clip's CoCa towers against open_clip (scripts/fixtures/openclip_coca_fixtures.py): the attentional
/// pooler's first query as the image embedding, the text tower's appended class token under open_clip's legacy
/// offset padding mask, and the captioning decoder's tensors skipped.
final class OpenCLIPCoCaTests: XCTestCase {
    func testTinyCoCaMatchesOpenCLIP() throws {
        let e = try Fixtures.json("openclip_coca/openclip_coca_expected.json", as: OpenCLIPConvExpected.Tiny.self)
        let model = try CLIPModel.load(spec: try Fixtures.url("openclip_coca/coca_tiny").path)
        XCTAssertEqual(model.architecture.vision.pooling, .attentional(heads: 2, queries: 256))
        XCTAssertTrue(model.architecture.text.appendedClassToken)
        XCTAssertEqual(model.logitScale, 100, "the reference scores OpenCLIP models with a fixed 100")
        let urls = try e.images.map { try Fixtures.url("images/\($0)") }
        let images = try model.embedImages(urls.map { try ImageDecoder.decode(contentsOf: $0) }, normalize: false)
        assertEmbeddings(images, e.image_embeds, minCosine: 0.9999, normTolerance: 1e-3, "CoCa image embeds")
        let ctx = model.architecture.text.contextLength
        XCTAssertEqual(ctx, 76)
        let tok = try XCTUnwrap(model.tokenizer)
        for (text, want) in zip(e.texts, e.token_ids) {
            let ids = tok.tokenIds(text, contextLength: ctx)
            XCTAssertEqual(ids + [Int](repeating: 0, count: ctx - ids.count), want, text)
        }
        let texts = try model.embedTexts(e.texts, normalize: false)
        assertEmbeddings(texts, e.text_embeds, minCosine: 0.9999, normTolerance: 1e-3, "CoCa text embeds")
        assertLogits(model.logits(images: images.map(l2Normalized), texts: texts.map(l2Normalized), scale: Float(e.logit_scale)),
                     e.logits_per_image, relative: 1e-3, "CoCa logits_per_image")
    }
}
