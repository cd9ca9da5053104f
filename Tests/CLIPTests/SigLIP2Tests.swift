// transformers' Siglip2Model (SigLIP 2 NaFlex) against transformers itself (scripts/fixtures/siglip2_fixtures.py):
// Siglip2ImageProcessor's aspect-preserving patch grids (one of them a 1 x 15 strip, so the 4 x 4 position grid
// is shrunk along one axis with torch's antialiasing and stretched along the other), the patch order, the resized
// position embeddings, image embeddings without padding (transformers pads and masks), the Gemma-class
// tokenizer's left padding, text embeddings and the model's own logits.
import Foundation
import Imaging
import Tensors
import XCTest
@testable import CLIP

struct SigLIP2Expected: Decodable {
    struct ImageCase: Decodable {
        let spatial_shape: [Int]
        let patches: Int
        let first_patch: [Double]
        let patch_sums: [Double]
        let position_first_rows: [[Double]]
        let image_embeds: [Double]
    }
    let images: [String]
    let image_cases: [ImageCase]
    let texts: [String]
    let token_ids: [[Int]]
    let text_embeds: [[Double]]
    let logit_scale: Double
    let logit_bias: Double
    let logits_per_image: [[Double]]
}

final class SigLIP2Tests: XCTestCase {
    func testTinySiglip2MatchesTransformers() throws {
        let e = try Fixtures.json("siglip2/siglip2_expected.json", as: SigLIP2Expected.self)
        let vlm = try VLMLoader.load(spec: try Fixtures.url("siglip2/tiny").path)
        let model = try XCTUnwrap(vlm as? SigLIPModel)
        let n = try XCTUnwrap(model.naflex, "model_type siglip2 loads as NaFlex")
        XCTAssertEqual(n.maxPatches, 24)
        XCTAssertEqual(n.positionGrid, 4)
        XCTAssertEqual(model.logitScale, Float(e.logit_scale), accuracy: 1e-4)
        XCTAssertEqual(model.logitBias, Float(e.logit_bias), accuracy: 1e-6)

        let urls = try e.images.map { try Fixtures.url($0.contains("/") ? $0 : "images/\($0)") }
        let decoded = try urls.map { try ImageDecoder.decode(contentsOf: $0) }
        for (i, (im, c)) in zip(decoded, e.image_cases).enumerated() {
            let px = model.preprocess(im)
            XCTAssertEqual([Int(px[0]), Int(px[1])], c.spatial_shape, "image \(i): patch grid")
            let k = 3 * n.patchSize * n.patchSize
            XCTAssertEqual(px.count, 2 + c.patches * k)
            for (j, want) in c.first_patch.enumerated() { XCTAssertEqual(Double(px[2 + j]), want, accuracy: 1e-5, "image \(i) patch 0 value \(j)") }
            for (j, want) in c.patch_sums.enumerated() {
                let sum = px[(2 + j * k)..<(2 + (j + 1) * k)].reduce(0.0) { $0 + Double($1) }
                XCTAssertEqual(sum, want, accuracy: 1e-3, "image \(i) patch \(j) sum")
            }
            let w = model.config.vision.width
            let pos = NaFlexConfig.resizePositions(model.vision.weights.positionEmbedding, side: 4, width: w,
                                                   to: c.spatial_shape[0], c.spatial_shape[1])
            for (r, want) in c.position_first_rows.enumerated() where r < c.patches {
                for (j, v) in want.enumerated() { XCTAssertEqual(Double(pos[r * w + j]), v, accuracy: 1e-5, "image \(i) position row \(r)[\(j)]") }
            }
        }
        let images = try model.embedImages(decoded, normalize: false)
        assertEmbeddings(images, e.image_cases.map(\.image_embeds), minCosine: 0.9999, normTolerance: 1e-3, "image embeds")

        let tok = try XCTUnwrap(model.tokenize)
        XCTAssertTrue(model.config.padsLeft, "GemmaTokenizerFast pads on the left")
        let ctx = model.config.contextLength
        for (text, want) in zip(e.texts, e.token_ids) {
            let ids = tok(text)
            XCTAssertEqual([Int](repeating: model.config.padTokenId, count: ctx - ids.count) + ids, want, text)
        }
        let texts = try model.embedTexts(e.texts, normalize: false)
        assertEmbeddings(texts, e.text_embeds, minCosine: 0.9999, normTolerance: 1e-3, "text embeds")
        assertLogits(model.logits(images: images.map(l2Normalized), texts: texts.map(l2Normalized)), e.logits_per_image,
                     relative: 1e-3, "logits_per_image")
    }

    /// The processor's binary search keeps the aspect ratio within the patch budget.
    func testTargetSizeStaysWithinThePatchBudget() {
        let n = NaFlexConfig(patchSize: 16, maxPatches: 256, positionGrid: 16)
        for (h, w) in [(224, 224), (100, 1000), (1000, 37), (16, 16), (3000, 2000)] {
            let (th, tw) = n.targetSize(height: h, width: w)
            XCTAssertEqual(th % 16, 0); XCTAssertEqual(tw % 16, 0)
            XCTAssertLessThanOrEqual((th / 16) * (tw / 16), 256, "\(h)x\(w) -> \(th)x\(tw)")
        }
    }

    /// A preprocessed list that is not this model's NaFlex layout is refused, not read out of bounds.
    func testMalformedPatchListsAreRefused() throws {
        let model = try XCTUnwrap(try VLMLoader.load(spec: try Fixtures.url("siglip2/tiny").path) as? SigLIPModel)
        for bad: [Float] in [[], [2], [2, 3, 1, 2], [5, 5] + [Float](repeating: 0, count: 25 * 192)] {
            XCTAssertThrowsError(try model.embedPreprocessed([bad], normalize: true)) { error in
                XCTAssertTrue("\(error)".contains("NaFlex"), "\(error)")
            }
        }
    }
}
