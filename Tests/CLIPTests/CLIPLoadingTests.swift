// Loading is strict and refuses what it cannot run: missing or extra tensors, wrong shapes, OpenCLIP
// options that change the computation, unknown specs. Built-in OpenCLIP configs decode to the shapes
// open_clip's model_configs/*.json describe.
import CLIP
import Foundation
import ModelFiles
import Tensors
import XCTest

final class CLIPLoadingTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("clip-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    /// A copy of the HF fixture whose weights pass through `edit` (name -> (shape, floats)).
    private func editedHFCopy(_ edit: (inout [(name: String, shape: [Int], data: [Float])]) -> Void) throws -> URL {
        let src = try Fixtures.url("hf_tiny")
        let dst = tmp.appendingPathComponent("hf_edit")
        try FileManager.default.createDirectory(at: dst, withIntermediateDirectories: true)
        for f in ["config.json", "preprocessor_config.json"] {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dst.appendingPathComponent(f))
        }
        let st = try SafetensorsFile(url: src.appendingPathComponent("model.safetensors"))
        var tensors = try st.names.map { (name: $0, shape: st.tensors[$0]!.shape, data: try st.floats($0)) }
        edit(&tensors)
        try writeSafetensors(to: dst.appendingPathComponent("model.safetensors"), tensors: tensors.map { t in
            (name: t.name, dtype: DType.f32, shape: t.shape, data: t.data.withUnsafeBufferPointer { Data(buffer: $0) })
        }, metadata: ["format": "pt"])
        return dst
    }

    private func assertLoadFails(_ dir: URL, mentioning needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try CLIPModel.load(spec: dir.path), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(needle), "error should mention \(needle): \(error)", file: file, line: line)
        }
    }

    func testMissingTensorIsNamed() throws {
        let dir = try editedHFCopy { $0.removeAll { $0.name == "vision_model.post_layernorm.bias" } }
        assertLoadFails(dir, mentioning: "vision_model.post_layernorm.bias")
    }

    func testUnusedTensorIsNamed() throws {
        let dir = try editedHFCopy { $0.append((name: "vision_model.extra_head.weight", shape: [2], data: [1, 2])) }
        assertLoadFails(dir, mentioning: "vision_model.extra_head.weight")
    }

    func testWrongShapeIsNamed() throws {
        let dir = try editedHFCopy { ts in
            let i = ts.firstIndex { $0.name == "text_projection.weight" }!
            ts[i] = (name: ts[i].name, shape: [ts[i].shape[1], ts[i].shape[0]], data: ts[i].data)
        }
        assertLoadFails(dir, mentioning: "text_projection.weight")
    }

    func testBuiltInConfigsHaveOpenCLIPShapes() throws {
        XCTAssertTrue(OpenCLIPRegistry.modelNames.contains("ViT-B-32-quickgelu"))
        let b32 = try OpenCLIPRegistry.modelConfig("ViT-B-32").architecture(name: "ViT-B-32")
        XCTAssertEqual(b32.vision.tokens, 50)
        XCTAssertEqual(b32.vision.transformer.heads, 12)
        XCTAssertEqual(b32.vision.transformer.activation, .gelu)
        XCTAssertEqual(try OpenCLIPRegistry.modelConfig("ViT-B-32-quickgelu").architecture(name: "q").vision.transformer.activation, .quickGelu)
        let h = try OpenCLIPRegistry.modelConfig("ViT-H-14").architecture(name: "ViT-H-14")
        XCTAssertEqual(h.vision.transformer.heads, 16)      // width 1280 / head_width 80
        XCTAssertEqual(h.vision.tokens, 257)
        let g = try OpenCLIPRegistry.modelConfig("ViT-bigG-14").architecture(name: "ViT-bigG-14")
        XCTAssertEqual(g.vision.transformer.mlpWidth, 8192)  // int(1664 * 4.9231)
        let clipa = try OpenCLIPRegistry.modelConfig("ViT-bigG-14-CLIPA-336").architecture(name: "CLIPA")
        XCTAssertEqual(clipa.vision.pooling, .average)
        XCTAssertFalse(clipa.vision.preNorm)
        XCTAssertTrue(clipa.vision.normAfterPool)
        XCTAssertFalse(clipa.text.causal)
        XCTAssertEqual(clipa.text.pooling, .last)
        XCTAssertEqual(try OpenCLIPRegistry.pretrained(model: "ViT-B-32", tag: "laion2b_s34b_b79k").hubRepo,
                       "laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
        XCTAssertThrowsError(try OpenCLIPRegistry.pretrained(model: "ViT-B-32", tag: "nonsense"))
        let rn50 = try OpenCLIPRegistry.modelConfig("RN50").architecture(name: "RN50")
        XCTAssertEqual(rn50.resnet?.layers, [3, 4, 6, 3])
        XCTAssertEqual(rn50.resnet?.heads, 32)
        XCTAssertEqual(try OpenCLIPRegistry.modelConfig("convnext_base").architecture(name: "convnext_base").convnext?.dims, [128, 256, 512, 1024])
    }

    func testUnsupportedOpenCLIPOptionsAreRefused() throws {
        let cases: [(String, String)] = [
            (#"{"embed_dim": 8, "vision_cfg": {}, "text_cfg": {"tokenizer_mode": "clips"}}"#, "tokenizer_mode"),
            (#"{"embed_dim": 8, "vision_cfg": {}, "text_cfg": {"act_kwargs": {"approximate": "sigmoid"}}}"#, "act_kwargs"),
            (#"{"embed_dim": 8, "vision_cfg": {}, "text_cfg": {"tokenizer_kwargs": {"language": "de"}}}"#, "tokenizer_kwargs.language"),
            (#"{"embed_dim": 8, "vision_cfg": {"layers": [3, 4, 6]}, "text_cfg": {}}"#, "ModifiedResNet"),
            (#"{"embed_dim": 8, "vision_cfg": {"attentional_pool": "parallel"}, "text_cfg": {}}"#, "attentional_pool"),
            (#"{"embed_dim": 8, "vision_cfg": {"timm_model_name": "eva02_base_patch14_224"}, "text_cfg": {}}"#, "timm_model_name"),
            (#"{"embed_dim": 8, "vision_cfg": {"timm_model_name": "vit_base_patch16_siglip_224", "timm_pool": "avg"}, "text_cfg": {}}"#, "timm_pool"),
            (#"{"embed_dim": 8, "vision_cfg": {"timm_model_name": "convnext_base", "timm_pool": "avg"}, "text_cfg": {}}"#, "timm_pool"),
            (#"{"embed_dim": 8, "vision_cfg": {"timm_model_name": "convnext_base", "timm_pool": "", "timm_proj": "attn"}, "text_cfg": {}}"#, "timm_proj"),
            (#"{"embed_dim": 8, "vision_cfg": {}, "text_cfg": {"scale_fc": true}}"#, "scale_fc"),
            (#"{"embed_dim": 8, "vision_cfg": {"some_new_option": 1}, "text_cfg": {}}"#, "some_new_option"),
        ]
        for (json, needle) in cases {
            XCTAssertThrowsError(try JSONDecoder().decode(OpenCLIPModelConfig.self, from: Data(json.utf8))) { error in
                XCTAssertTrue("\(error)".contains(needle), "\(json): error should mention \(needle): \(error)")
            }
        }
    }

    func testUnknownSpecsSayWhatToDo() throws {
        let env = ["HF_HUB_CACHE": tmp.path]
        XCTAssertThrowsError(try CLIPModel.load(spec: "r-open-clip:ViT-B-32:laion2b_s34b_b79k", locator: ModelLocator(environment: env))) {
            XCTAssertTrue("\($0)".contains("huggingface-cli download laion/CLIP-ViT-B-32-laion2B-s34B-b79K"), "\($0)")
        }
        XCTAssertThrowsError(try CLIPModel.load(spec: "r-open-clip:hf-hub:someone/missing", locator: ModelLocator(environment: env)))
        XCTAssertThrowsError(try CLIPModel.load(spec: "r-open-clip:ViT-B-32", locator: ModelLocator(environment: env)))
    }

    func testHubCacheLayoutResolves() throws {
        // An OpenCLIP repository in the hub cache (no config.json) is found by its hub id and by hf-hub:.
        let snap = tmp.appendingPathComponent("models--org--tiny-openclip/snapshots/abc123")
        try FileManager.default.createDirectory(at: snap.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: try Fixtures.url("openclip_tiny"), to: snap)
        let refs = tmp.appendingPathComponent("models--org--tiny-openclip/refs")
        try FileManager.default.createDirectory(at: refs, withIntermediateDirectories: true)
        try "abc123".write(to: refs.appendingPathComponent("main"), atomically: true, encoding: .utf8)
        let env = ["HF_HUB_CACHE": tmp.path]
        let a = try CLIPModel.load(spec: "r-open-clip:hf-hub:org/tiny-openclip", locator: ModelLocator(environment: env))
        let b = try CLIPModel.load(spec: "org/tiny-openclip", locator: ModelLocator(environment: env))
        XCTAssertEqual(a.architecture, b.architecture)
        XCTAssertEqual(a.identity, b.identity)
    }

    func testHFTokenizerConfigEmbedsImagesAndRefusesTextsByName() throws {
        // open_clip configs with hf_tokenizer_name (SigLIP, CLIPA, MetaCLIP 2 worldwide) whose tokenizer.json is
        // neither beside the weights nor in the HF cache load, embed images, and refuse texts with an error
        // naming the tokenizer, rather than falling back to the CLIP BPE vocabulary.
        let dir = tmp.appendingPathComponent("hf-tokenizer-openclip")
        try FileManager.default.copyItem(at: try Fixtures.url("openclip_tiny"), to: dir)
        let cfgURL = dir.appendingPathComponent("open_clip_config.json")
        var obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: cfgURL)) as? [String: Any])
        var model = try XCTUnwrap(obj["model_cfg"] as? [String: Any])
        var text = try XCTUnwrap(model["text_cfg"] as? [String: Any])
        text["hf_tokenizer_name"] = "bert-base-uncased"
        model["text_cfg"] = text
        obj["model_cfg"] = model
        try JSONSerialization.data(withJSONObject: obj).write(to: cfgURL)
        let m = try CLIPModel.load(spec: dir.path)
        XCTAssertTrue(m.notes.contains { $0.contains("bert-base-uncased") }, "\(m.notes)")
        let size = m.architecture.vision.imageSize
        let image = [Float](repeating: 0.1, count: 3 * size * size)
        XCTAssertEqual(try m.embedPreprocessed([image], normalize: true).first?.count, m.embedDim)
        XCTAssertThrowsError(try m.embedTexts(["a photo of a dog"], normalize: true)) { e in
            XCTAssertTrue("\(e)".contains("bert-base-uncased"), "\(e)")
        }
        let table = OpenCLIPRegistry.supportTable()
        let row = try XCTUnwrap(table.first { $0.name == "ViT-L-14-CLIPA" })
        XCTAssertTrue(row.hfTokenizer == "bert-base-uncased" && row.detail.contains("bert-base-uncased"), row.detail)
        // Every supported config that names a Hugging Face tokenizer says so, and only those.
        for r in table where r.supported {
            XCTAssertEqual(r.hfTokenizer, try OpenCLIPRegistry.modelConfig(r.name).textCfg.hfTokenizerName, r.name)
        }
    }
}
