// OpenCLIP's convolutional image towers against open_clip itself (scripts/fixtures/openclip_conv_fixtures.py):
// a tiny random ModifiedResNet model end to end, and the tensor names and shapes of the real RN50, RN101 and
// RN50x4 configs (from open_clip on the meta device), which the loader must ask for exactly.
import Foundation
import Imaging
import ModelFiles
import XCTest
@testable import CLIP

struct OpenCLIPConvExpected: Decodable {
    struct Tensor: Decodable { let name: String; let shape: [Int]; let dtype: String }
    struct Tiny: Decodable {
        let images: [String]
        let image_embeds: [[Double]]
        let texts: [String]
        let token_ids: [[Int]]
        let text_embeds: [[Double]]
        let logit_scale: Double
        let logits_per_image: [[Double]]
    }
    struct Reference: Decodable { let tensors: [Tensor]; let attnpool_heads: Int? }
    let rn_tiny: Tiny
    let convnext_tiny: Tiny
    let reference_models: [String: Reference]
}

/// Zeros of the recorded shapes: enough to check which names and shapes a loader asks for.
struct ShapeOnlyWeights: WeightSource {
    let shapes: [String: [Int]]
    var tensorNames: [String] { Array(shapes.keys) }
    func shape(of name: String) -> [Int]? { shapes[name] }
    func floats(_ name: String) throws -> [Float] { [Float](repeating: 0.01, count: shapes[name]!.reduce(1, *)) }
}

final class OpenCLIPConvTests: XCTestCase {
    var expected: OpenCLIPConvExpected {
        get throws { try Fixtures.json("openclip_conv/openclip_conv_expected.json", as: OpenCLIPConvExpected.self) }
    }

    func testTinyModifiedResNetMatchesOpenCLIP() throws {
        let e = try expected.rn_tiny
        let model = try CLIPModel.load(spec: try Fixtures.url("openclip_conv/rn_tiny").path)
        XCTAssertNotNil(model.architecture.resnet)
        let urls = try e.images.map { try Fixtures.url("images/\($0)") }
        let images = try model.embedImages(urls.map { try ImageDecoder.decode(contentsOf: $0) }, normalize: false)
        assertEmbeddings(images, e.image_embeds, minCosine: 0.9999, normTolerance: 1e-3, "image embeds")
        // open_clip pads to the context; the ids up to the end token are what ours runs.
        let ids = e.token_ids.map { row in Array(row[...row.firstIndex(of: 49407)!]) }
        XCTAssertEqual(e.texts.map { model.tokenizer!.tokenIds($0, contextLength: 16) }, ids)
        assertEmbeddings(try model.embedTokens(ids, normalize: false), e.text_embeds, minCosine: 0.9999, normTolerance: 1e-3, "text embeds")
        assertLogits(model.logits(images: try model.embedImageFiles(urls), texts: try model.embedTexts(e.texts), scale: Float(e.logit_scale)),
                     e.logits_per_image, relative: 1e-3, "logits_per_image")
    }

    /// timm's convnext_base recipe with a small trunk: open_clip has no way to say "depths/dims" in a config,
    /// so the fixture built it with timm's own overrides (trunk_kwargs) and so does this test.
    func testTinyConvNeXtMatchesOpenCLIP() throws {
        let e = try expected.convnext_tiny
        let dir = try Fixtures.url("openclip_conv/convnext_tiny")
        var file = try OpenCLIPConfigFile(contentsOf: dir.appendingPathComponent("open_clip_config.json"))
        XCTAssertEqual(file.modelCfg.visionCfg.convnext?.timmName, "convnext_base")
        file.modelCfg.visionCfg.convnext?.depths = [1, 1, 2, 1]
        file.modelCfg.visionCfg.convnext?.dims = [16, 24, 32, 48]
        let pre = OpenCLIPConfigFile.PreprocessCfg(size: 64).merged(with: file.preprocessCfg ?? .init())
        let model = try VLMLoader.build(openCLIP: file.modelCfg, name: "convnext_tiny", weights: dir.appendingPathComponent("open_clip_model.safetensors"),
                                        preprocess: pre, configText: "test", notes: [], tokenizer: nil, tokenizerDir: dir)
        let urls = try e.images.map { try Fixtures.url("images/\($0)") }
        let images = try model.embedImages(urls.map { try ImageDecoder.decode(contentsOf: $0) }, normalize: false)
        assertEmbeddings(images, e.image_embeds, minCosine: 0.9999, normTolerance: 1e-3, "image embeds")
        let ids = e.token_ids.map { row in Array(row[...row.firstIndex(of: 49407)!]) }
        assertEmbeddings(try model.embedTokens(ids, normalize: false), e.text_embeds, minCosine: 0.9999, normTolerance: 1e-3, "text embeds")
        assertLogits(model.logits(images: try model.embedImageFiles(urls), texts: try model.embedTexts(e.texts), scale: Float(e.logit_scale)),
                     e.logits_per_image, relative: 1e-3, "logits_per_image")
    }

    func testRealConvNeXtConfigsReadOpenCLIPsTensorNames() throws {
        let refs = try expected.reference_models
        for name in ["convnext_base", "convnext_base_w", "convnext_large_d"] {
            let ref = try XCTUnwrap(refs[name], name)
            let arch = try OpenCLIPRegistry.modelConfig(name).architecture(name: name)
            XCTAssertNotNil(arch.convnext, name)
            let source = ShapeOnlyWeights(shapes: Dictionary(uniqueKeysWithValues: ref.tensors.map { ($0.name, $0.shape) }))
            XCTAssertNoThrow(try CLIPWeightNames.load(arch, from: source, file: name), name)
        }
    }

    /// The real configs ask for exactly open_clip's tensors (nothing missing, nothing left over).
    func testRealResNetConfigsReadOpenCLIPsTensorNames() throws {
        let refs = try expected.reference_models
        for name in ["RN50", "RN101", "RN50x4"] {
            let ref = try XCTUnwrap(refs[name], name)
            let arch = try OpenCLIPRegistry.modelConfig(name).architecture(name: name)
            XCTAssertEqual(arch.resnet?.heads, ref.attnpool_heads, "\(name): attention pool heads")
            let source = ShapeOnlyWeights(shapes: Dictionary(uniqueKeysWithValues: ref.tensors.map { ($0.name, $0.shape) }))
            XCTAssertNoThrow(try CLIPWeightNames.load(arch, from: source, file: name), name)
        }
    }
}
