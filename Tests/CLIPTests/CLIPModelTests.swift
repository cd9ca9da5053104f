// Golden tests of both CLIP namings against transformers and open_clip on the same random weights
// (scripts/fixtures/clip_fixtures.py): image embeddings from real JPEG files through the whole pipeline
// (decode, preprocess, ViT), text embeddings from token ids in one ragged batch, and logits_per_image.
import CLIP
import Foundation
import Imaging
import XCTest

final class CLIPModelTests: XCTestCase {
    private func imageURLs(_ e: ExpectedModel) throws -> [URL] {
        try e.images.map { try Fixtures.url("images/\($0)") }
    }

    private func check(_ model: CLIPModel, _ e: ExpectedModel, name: String) throws {
        let urls = try imageURLs(e)
        let images = try model.embedImageFiles(urls).map { $0 }  // normalised
        let rawImages = try model.embedImages(urls.map { try ImageDecoder.decode(contentsOf: $0) }, normalize: false)
        assertEmbeddings(rawImages, e.image_embeds, "\(name) image embeddings")

        let rawTexts = try model.embedTokens(e.token_ids, normalize: false)
        assertEmbeddings(rawTexts, e.text_embeds, "\(name) text embeddings (ragged batch)")
        // One at a time must give the same as the packed batch.
        for (i, ids) in e.token_ids.enumerated() {
            let one = try model.embedTokens([ids], normalize: false)[0]
            for (a, b) in zip(one, rawTexts[i]) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), "\(name) text \(i) alone vs batched") }
        }

        let texts = try model.embedTokens(e.token_ids)
        for v in images + texts {
            XCTAssertEqual(v.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-5, "\(name): normalised embeddings have unit length")
        }
        let scale = try XCTUnwrap(model.storedLogitScale, "\(name) stores a logit scale")
        XCTAssertEqual(Double(scale), e.logit_scale, accuracy: e.logit_scale * 1e-6, "\(name) stored logit scale")
        assertLogits(model.logits(images: images, texts: texts, scale: scale), e.logits_per_image, "\(name) logits_per_image")
    }

    func testHuggingFaceTinyMatchesTransformers() throws {
        let e = try Fixtures.json("expected_tiny.json", as: ExpectedTiny.self).hf_tiny
        let model = try CLIPModel.load(spec: try Fixtures.url("hf_tiny").path)
        XCTAssertEqual(model.architecture.naming, .huggingFace)
        XCTAssertEqual(model.logitScale, model.storedLogitScale, "HF models score with their own exp(logit_scale)")
        try check(model, e, name: "hf_tiny")
    }

    func testOpenCLIPTinyMatchesOpenCLIP() throws {
        let e = try Fixtures.json("expected_tiny.json", as: ExpectedTiny.self).openclip_tiny
        let model = try CLIPModel.load(spec: try Fixtures.url("openclip_tiny").path)
        XCTAssertEqual(model.architecture.naming, .openCLIP)
        XCTAssertEqual(model.logitScale, 100, "OpenCLIP models score with the fixed EX2 scale")
        try check(model, e, name: "openclip_tiny")
    }

    /// The HF fixture's EOS id is not the largest id, and some texts hold a larger id before their EOS:
    /// pooling must follow the config (first EOS), not argmax.
    func testPoolingFollowsTheConfig() throws {
        let e = try Fixtures.json("expected_tiny.json", as: ExpectedTiny.self).hf_tiny
        let model = try CLIPModel.load(spec: try Fixtures.url("hf_tiny").path)
        guard case .firstToken(let eos) = model.architecture.text.pooling else {
            return XCTFail("an HF config with eos_token_id != 2 pools at the first EOS")
        }
        XCTAssertTrue(e.token_ids.contains { ids in ids.firstIndex(of: eos)! != ids.indices.max { ids[$0] < ids[$1] }! },
                      "the fixture must contain a text where argmax and first-EOS pooling differ")
    }

    /// A full-size ViT-B/32 (HF naming, openai/clip-vit-base-patch32's shapes) with deterministic
    /// pseudo-random weights: the 600 MB checkpoint is regenerated into a temporary directory
    /// (DeterministicB32.swift) from the names, shapes and fingerprints in b32_expected.json, so it runs in CI.
    func testFullSizeViTB32() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-clip-b32-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try DeterministicB32.write(to: dir)
        let model = try CLIPModel.load(spec: dir.path)
        let e = try Fixtures.json("b32_expected.json", as: ExpectedB32.self).b32
        XCTAssertEqual(model.architecture.vision.tokens, 50)
        XCTAssertEqual(model.embedDim, 512)
        try check(model, e, name: "b32")
    }
}
