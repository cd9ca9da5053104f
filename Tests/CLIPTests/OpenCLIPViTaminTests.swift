// open_clip's ViTamin configs against open_clip itself (scripts/fixtures/openclip_vitamin_fixtures.py): tiny random
// models of timm's vitamin_small_224 and vitamin_xlarge_256 recipes (the MBConv backbone as the patch embedding,
// GeGLU blocks, the average pool and fc_norm; the XL one without a position embedding), shrunk by the same timm
// overrides the fixture recorded.
import Foundation
import XCTest
@testable import CLIP

struct OpenCLIPViTaminExpected: Decodable {
    struct TrunkKwargs: Decodable {
        struct EmbedCfg: Decodable { let embed_dim: [Int]; let depths: [Int]; let stem_width: Int }
        let embed_dim: Int, depth: Int, num_heads: Int, img_size: Int
        let embed_cfg: EmbedCfg
    }
    struct Case: Decodable {
        let trunk_kwargs: TrunkKwargs
    }
    let vitamin_tiny: OpenCLIPSigLIPExpected.Tiny
    let vitamin_xl_tiny: OpenCLIPSigLIPExpected.Tiny
    let vitamin_tiny_kwargs: Case
    let vitamin_xl_tiny_kwargs: Case

    enum CodingKeys: String, CodingKey { case vitamin_tiny, vitamin_xl_tiny }
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vitamin_tiny = try c.decode(OpenCLIPSigLIPExpected.Tiny.self, forKey: .vitamin_tiny)
        vitamin_xl_tiny = try c.decode(OpenCLIPSigLIPExpected.Tiny.self, forKey: .vitamin_xl_tiny)
        vitamin_tiny_kwargs = try c.decode(Case.self, forKey: .vitamin_tiny)
        vitamin_xl_tiny_kwargs = try c.decode(Case.self, forKey: .vitamin_xl_tiny)
    }
}

final class OpenCLIPViTaminTests: XCTestCase {
    private func check(_ key: String, timm: String, positionEmbedding: Bool) throws {
        let all = try Fixtures.json("openclip_vitamin/openclip_vitamin_expected.json", as: OpenCLIPViTaminExpected.self)
        let (e, k) = key == "vitamin_tiny" ? (all.vitamin_tiny, all.vitamin_tiny_kwargs.trunk_kwargs)
                                           : (all.vitamin_xl_tiny, all.vitamin_xl_tiny_kwargs.trunk_kwargs)
        let dir = try Fixtures.url("openclip_vitamin/\(key)")
        var file = try OpenCLIPConfigFile(contentsOf: dir.appendingPathComponent("open_clip_config.json"))
        var tv = try XCTUnwrap(file.modelCfg.visionCfg.timmViT)
        XCTAssertEqual(tv.timmName, timm)
        XCTAssertEqual(tv.positionEmbedding, positionEmbedding)
        XCTAssertEqual(file.modelCfg.visionCfg.timmVision?.transformer.gatedMLP, true)
        // The registered variant, shrunk by the timm kwargs the fixture was built with.
        let ec = k.embed_cfg
        tv.hybridStem = ViTaminStemConfig(stemWidth: ec.stem_width, stageWidths: Array(ec.embed_dim[0..<2]),
                                          stageDepths: Array(ec.depths[0..<2]), outWidth: ec.embed_dim[2])
        file.modelCfg.visionCfg.timmViT = tv
        file.modelCfg.visionCfg.timmVision!.transformer.width = k.embed_dim
        file.modelCfg.visionCfg.timmVision!.transformer.layers = k.depth
        file.modelCfg.visionCfg.timmVision!.transformer.heads = k.num_heads
        file.modelCfg.visionCfg.timmVision!.transformer.mlpWidth = 2 * k.embed_dim
        let pre = OpenCLIPConfigFile.PreprocessCfg(size: k.img_size).merged(with: file.preprocessCfg ?? .init())
        let model = try VLMLoader.build(openCLIP: file.modelCfg, name: key, weights: dir.appendingPathComponent("open_clip_model.safetensors"),
                                        preprocess: pre, configText: "test", notes: [], tokenizer: nil,
                                        tokenizerDir: try Fixtures.url("siglip/unigram_json"))
        XCTAssertEqual(model.architecture.vision.tokens, (k.img_size / 16) * (k.img_size / 16))

        try assertMatchesOpenCLIP(model, e, key)
    }

    func testTinyViTaminMatchesOpenCLIP() throws {
        try check("vitamin_tiny", timm: "vitamin_small_224", positionEmbedding: true)
    }

    /// vitamin_xlarge_*: timm's pos_embed='none', so the backbone's tokens go into the blocks as they are.
    func testTinyViTaminXLWithoutPositionEmbeddingMatchesOpenCLIP() throws {
        try check("vitamin_xl_tiny", timm: "vitamin_xlarge_256", positionEmbedding: false)
    }

}
