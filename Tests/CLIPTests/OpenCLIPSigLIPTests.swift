// open_clip's SigLIP configs against open_clip itself (scripts/fixtures/openclip_siglip_fixtures.py): tiny random
// models with timm's SigLIP ViT trunk (attention pool, no class token), open_clip's bidirectional last-token text
// tower, open_clip's HFTokenizer over a tokenizer.json Unigram model with the "canonicalize" cleaning, and the
// model's own logits (exp(logit_scale) cos + logit_bias) as the reward's scale and bias.
import Foundation
import Imaging
import Tensors
import XCTest
@testable import CLIP
@testable import Tokenizers

struct OpenCLIPSigLIPExpected: Decodable {
    struct Tensor: Decodable { let name: String; let shape: [Int] }
    struct Tiny: Decodable {
        let config_name: String
        let tensors: [Tensor]
        let images: [String]
        let image_embeds: [[Double]]
        let texts: [String]
        let cleaned_texts: [String]
        let token_ids: [[Int]]
        let text_embeds: [[Double]]
        let logit_scale: Double
        let logit_bias: Double
        let logits_per_image: [[Double]]
    }
    struct TokenizerCase: Decodable {
        let dir: String
        let tokenizer_kwargs: [String: JSONScalar]
        let context_length: Int
        let tokenizer_class: String
        let pad_token_id: Int
        let texts: [String]
        let token_ids: [[Int]]
    }
    enum JSONScalar: Decodable {
        case bool(Bool), string(String)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b) } else { self = .string(try c.decode(String.self)) }
        }
    }
    let siglip_tiny: Tiny
    let siglip2_tiny: Tiny
    let timm_vit_gap_tiny: Tiny
    let timm_vit_clip_tiny: Tiny
    let ls_vit_tiny: Tiny
    let hf_tokenizers: [String: TokenizerCase]
}

final class OpenCLIPSigLIPTests: XCTestCase {
    var expected: OpenCLIPSigLIPExpected {
        get throws { try Fixtures.json("openclip_siglip/openclip_siglip_expected.json", as: OpenCLIPSigLIPExpected.self) }
    }

    /// The fixture's trunk is the named timm variant shrunk by timm kwargs (open_clip has no config key for them):
    /// the test applies the same override, from the recorded tensor shapes.
    private func load(_ key: String, _ e: OpenCLIPSigLIPExpected.Tiny, timm: String?) throws -> CLIPModel {
        let dir = try Fixtures.url("openclip_siglip/\(key)")
        var file = try OpenCLIPConfigFile(contentsOf: dir.appendingPathComponent("open_clip_config.json"))
        if let timm {
            XCTAssertEqual(file.modelCfg.visionCfg.mapViT?.timmName ?? file.modelCfg.visionCfg.timmViT?.timmName, timm)
            let fc1 = try XCTUnwrap(e.tensors.first { $0.name == "visual.trunk.blocks.0.mlp.fc1.weight" })
            func shrink(_ t: inout CLIPTransformerConfig) { t.width = 32; t.layers = 2; t.heads = 2; t.mlpWidth = fc1.shape[0] }
            if file.modelCfg.visionCfg.mapViT != nil { shrink(&file.modelCfg.visionCfg.mapViT!.transformer) }
            if file.modelCfg.visionCfg.timmVision != nil { shrink(&file.modelCfg.visionCfg.timmVision!.transformer) }
        }
        let pre = OpenCLIPConfigFile.PreprocessCfg(size: 64).merged(with: file.preprocessCfg ?? .init())
        return try VLMLoader.build(openCLIP: file.modelCfg, name: key, weights: dir.appendingPathComponent("open_clip_model.safetensors"),
                                   preprocess: pre, configText: "test", notes: [], tokenizer: nil,
                                   tokenizerDir: try Fixtures.url("siglip/unigram_json"))
    }

    private func check(_ key: String, timm: String?, activation: Activation?, textProjected: Bool) throws -> CLIPModel {
        let all = try expected
        let e = [("siglip_tiny", all.siglip_tiny), ("siglip2_tiny", all.siglip2_tiny), ("timm_vit_gap_tiny", all.timm_vit_gap_tiny),
                 ("timm_vit_clip_tiny", all.timm_vit_clip_tiny), ("ls_vit_tiny", all.ls_vit_tiny)].first { $0.0 == key }!.1
        let model = try load(key, e, timm: timm)
        if let activation { XCTAssertEqual(model.architecture.mapViT?.transformer.activation, activation) }
        XCTAssertEqual(model.architecture.text.projected, textProjected)
        // SigLIP checkpoints (with a logit_bias) are scored with their own logits; open_clip CLIP ones with 100.
        let scale = e.logit_bias == 0 ? 100 : Float(e.logit_scale)
        XCTAssertEqual(model.logitScale, scale, accuracy: 1e-5 * scale)
        XCTAssertEqual(model.logitBias, Float(e.logit_bias), accuracy: 1e-5)

        let clean = model.architecture.mapViT != nil ? OpenCLIPTextClean.canonicalize : .whitespace
        XCTAssertEqual(e.texts.map { clean.apply($0) }, e.cleaned_texts)
        try assertMatchesOpenCLIP(model, e, key)
        return model
    }

    func testTinySigLIPMatchesOpenCLIP() throws {
        _ = try check("siglip_tiny", timm: "vit_base_patch16_siglip_224", activation: .gelu, textProjected: true)
    }

    /// SigLIP 2's tanh GELU in both towers, proj_type "none" (the i18n configs' text tower), and a patch grid
    /// with a remainder (72 px, patch 16).
    func testTinySigLIP2MatchesOpenCLIP() throws {
        _ = try check("siglip2_tiny", timm: "vit_so400m_patch16_siglip_256", activation: .geluTanh, textProjected: false)
    }

    /// timm ViT trunks on the CLIP ViT tower: vit_medium_patch16_gap_256 (no class token, average pool, LayerScale,
    /// no qkv bias, open_clip's head.proj) and MobileCLIP2-L-14's vit_large_patch14_clip_224 (class token,
    /// pre-norm, timm's own head as the projection).
    func testTinyTimmViTsMatchOpenCLIP() throws {
        let gap = try check("timm_vit_gap_tiny", timm: "vit_medium_patch16_gap_256", activation: nil, textProjected: true)
        XCTAssertEqual(gap.architecture.vision.classToken, false)
        XCTAssertEqual(gap.architecture.vision.transformer.layerScale, true)
        let clip = try check("timm_vit_clip_tiny", timm: "vit_large_patch14_clip_224", activation: nil, textProjected: true)
        XCTAssertEqual(clip.architecture.timmViT?.projection, .trunkHead)
    }

    /// open_clip's own ViT with ls_init_value (ViT-M-16-alt): LayerScale gammas in every vision block.
    func testTinyLayerScaleViTMatchesOpenCLIP() throws {
        let m = try check("ls_vit_tiny", timm: nil, activation: nil, textProjected: true)
        XCTAssertTrue(m.architecture.vision.transformer.layerScale)
        XCTAssertNil(m.architecture.timmViT)
    }

    /// open_clip's HFTokenizer over the other tokenizer.json kinds the zoo names: BERT WordPiece with
    /// strip_sep_token (CLIPA), the Unigram model with 'lower' and 'whitespace' cleaning at contexts that
    /// truncate (the end token is kept), and a byte-fallback BPE like Gemma's (SigLIP 2) with 'canonicalize'.
    func testHFTokenizerMatchesOpenCLIP() throws {
        let cases = try expected.hf_tokenizers
        XCTAssertEqual(cases.count, 4)
        for (key, c) in cases.sorted(by: { $0.key < $1.key }) {
            var cfg = OpenCLIPModelConfig.TextCfg()
            cfg.vocabSize = 1 << 20
            if case .string(let clean)? = c.tokenizer_kwargs["clean"] { cfg.tokenizerClean = clean }
            if case .bool(let strip)? = c.tokenizer_kwargs["strip_sep_token"] { cfg.stripSepToken = strip }
            let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(c.dir)
            let tok = try HFTextTokenizer.load(dir, config: cfg)
            XCTAssertEqual(tok.padTokenId, c.pad_token_id, key)
            for (text, want) in zip(c.texts, c.token_ids) {
                let ids = tok.tokenIds(text, contextLength: c.context_length)
                XCTAssertEqual(ids + [Int](repeating: c.pad_token_id, count: max(0, c.context_length - ids.count)), want,
                               "\(key) (\(c.tokenizer_class)): \(text.debugDescription)")
            }
        }
    }

    /// tokenizer.json's Unigram model (Precompiled charsmap normalizer, Strip, regex Replace, Metaspace, the
    /// "$A </s>" template) against T5TokenizerFast on 29 varied texts (full-width forms, ligatures, CJK, emoji,
    /// "</s>" and "<unk>" written in the text, whitespace runs, empty), and open_clip's HFTokenizer over it
    /// (scripts/fixtures/siglip_fixtures.py's unigram_json section).
    func testUnigramTokenizerJSONMatchesTransformers() throws {
        struct Entry: Decodable {
            let text: String
            let input_ids: [Int]
            let open_clip_hf_tokenizer: [Int]
        }
        struct Section: Decodable { let texts: [Entry] }
        struct File: Decodable { let unigram_json: Section }
        let entries = try Fixtures.json("siglip/siglip_expected.json", as: File.self).unigram_json.texts
        XCTAssertEqual(entries.count, 29)
        let dir = try Fixtures.url("siglip/unigram_json")
        let tok = try TokenizerLoader.load(directory: dir)
        var cfg = OpenCLIPModelConfig.TextCfg()
        cfg.vocabSize = 400
        cfg.tokenizerClean = "canonicalize"
        let openCLIP = try HFTextTokenizer.load(dir, config: cfg)
        for e in entries {
            XCTAssertEqual(tok.encode(e.text, addSpecialTokens: true), e.input_ids, e.text.debugDescription)
            XCTAssertEqual(openCLIP.tokenIds(e.text, contextLength: 16), e.open_clip_hf_tokenizer, e.text.debugDescription)
        }
    }

    /// The 26 open_clip SigLIP and SigLIP 2 configs (all but the NLLB text towers) lower to the timm variant
    /// their name says, with its width as the embedding and the model's own logits as the reward.
    func testShippedSigLIPConfigsLower() throws {
        let names = OpenCLIPRegistry.modelNames.filter { $0.contains("SigLIP") }
        XCTAssertEqual(names.count, 26, "\(names)")
        for name in names {
            let arch = try OpenCLIPRegistry.modelConfig(name).architecture(name: name)
            let m = try XCTUnwrap(arch.mapViT, name)
            XCTAssertEqual(m.transformer.width, arch.embedDim, name)
            // The timm variant named for this patch and image size (open_clip does not pass its image size to timm).
            XCTAssertEqual(m.timmName.map { $0.hasSuffix("_\(m.imageSize)") && $0.contains("patch\(m.patchSize)_") }, true, name)
            XCTAssertFalse(arch.text.causal, name)
            XCTAssertEqual(arch.text.pooling, .last, name)
            XCTAssertEqual(arch.text.transformer.layerNormEps, 1e-6, name)
            XCTAssertEqual(arch.text.transformer.activation, name.contains("SigLIP2") ? .geluTanh : .gelu, name)
        }
    }
}

/// What every tiny open_clip fixture records: images and their embeddings, texts, ids, embeddings and logits.
protocol OpenCLIPTinyRecord {
    var images: [String] { get }
    var image_embeds: [[Double]] { get }
    var texts: [String] { get }
    var token_ids: [[Int]] { get }
    var text_embeds: [[Double]] { get }
    var logit_scale: Double { get }
    var logits_per_image: [[Double]] { get }
}

extension OpenCLIPSigLIPExpected.Tiny: OpenCLIPTinyRecord {}

/// A tiny open_clip model against its fixture record: image embeddings, token ids (open_clip's HFTokenizer pads to
/// the context with the tokenizer's pad token; ours either stops at the end token, and the text tower pads with the
/// same id, or returns the padded ids itself), text embeddings and logits_per_image.
func assertMatchesOpenCLIP(_ model: CLIPModel, _ e: some OpenCLIPTinyRecord, _ key: String) throws {
    let urls = try e.images.map { try Fixtures.url("images/\($0)") }
    let images = try model.embedImages(urls.map { try ImageDecoder.decode(contentsOf: $0) }, normalize: false)
    assertEmbeddings(images, e.image_embeds, minCosine: 0.9999, normTolerance: 1e-3, "\(key) image embeds")
    let tok = try XCTUnwrap(model.tokenizer)
    let ctx = model.architecture.text.contextLength
    for (text, want) in zip(e.texts, e.token_ids) {
        let ids = tok.tokenIds(text, contextLength: ctx)
        XCTAssertEqual(ids + [Int](repeating: model.architecture.text.padTokenId, count: ctx - ids.count), want, text)
    }
    let texts = try model.embedTexts(e.texts, normalize: false)
    assertEmbeddings(texts, e.text_embeds, minCosine: 0.9999, normTolerance: 1e-3, "\(key) text embeds")
    assertLogits(model.logits(images: images.map(l2Normalized), texts: texts.map(l2Normalized), scale: Float(e.logit_scale)),
                 e.logits_per_image, relative: 1e-3, "\(key) logits_per_image")
}
