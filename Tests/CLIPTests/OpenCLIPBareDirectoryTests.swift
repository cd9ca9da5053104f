// An OpenCLIP directory as hub repositories ship them: only open_clip_config.json and
// open_clip_pytorch_model.bin (a torch.save pickle, fp16), no tokenizer files. ex2 tokenizes with the
// open_clip vocabulary it ships and must give open_clip's token ids and text features
// (scripts/fixtures/openclip_bare_fixtures.py, open_clip 3.3.0, SimpleTokenizer with ftfy 6.3.1).
import Foundation
import XCTest
@testable import CLIP

final class OpenCLIPBareDirectoryTests: XCTestCase {
    struct Row: Decodable {
        var name: String
        var text: String
        var ftfy_fix_text: String
        var ids: [Int]
        var text_features: [Float]
    }
    struct Expected: Decodable { var texts: [Row] }

    func testBareDirectoryEmbedsTextAsOpenCLIP() throws {
        let dir = try Fixtures.url("openclip_bare")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(),
                       ["open_clip_config.json", "open_clip_pytorch_model.bin"], "only the config and the .bin weights")
        if let bpe = ProcessInfo.processInfo.environment["EX2_CLIP_BPE"], !bpe.isEmpty {
            throw XCTSkip("SKIPPED: EX2_CLIP_BPE is set (\(bpe)); this test checks the vocabulary ex2 ships")
        }
        let model = try CLIPModel.load(spec: dir.path)
        let rows = try Fixtures.json("openclip_bare_expected.json", as: Expected.self).texts
        // ftfy repairs mojibake ("cafÃ©" -> "café"); ex2's tokenizer does NFC and open_clip's html.unescape
        // but not ftfy's repairs of damaged text, so that one case is left out, and must still differ (when
        // it matches, ftfy has been implemented and the exclusion should go).
        let gaps: Set<String> = ["mojibake"]
        let tok = try XCTUnwrap(model.tokenizer)
        for r in rows where gaps.contains(r.name) {
            XCTAssertNotEqual(tok.tokenIds(r.text, contextLength: 77), Array(r.ids.prefix { $0 != 0 }), r.name)
        }
        let checked = rows.filter { !gaps.contains($0.name) }
        XCTAssertEqual(checked.count, rows.count - 1)
        XCTAssertTrue(checked.contains { $0.name == "html_entities" } && checked.contains { $0.name == "whitespace" })
        XCTAssertTrue(checked.contains { $0.ids.filter { $0 != 0 }.count == 77 }, "a text cut at the context length")
        var worst: Float = 0
        for r in checked {
            let ids = tok.tokenIds(r.text, contextLength: 77)
            XCTAssertEqual(ids, Array(r.ids.prefix(ids.count)), "\(r.name): token ids")
            XCTAssertTrue(r.ids.dropFirst(ids.count).allSatisfy { $0 == 0 }, "\(r.name): open_clip has more tokens")
            let got = try model.embedTexts([r.text], normalize: false)[0]
            XCTAssertEqual(got.count, r.text_features.count)
            for (a, b) in zip(got, r.text_features) { worst = max(worst, abs(a - b)) }
        }
        XCTAssertLessThan(worst, 2e-4, "max |text feature - open_clip| = \(worst)")
    }

    func testShippedTablesMatchOpenCLIP() throws {
        // r-open-clip:MODEL:TAG names open_clip's repository and file for the tag (tags looked up as open_clip does).
        let t = try OpenCLIPRegistry.pretrained(model: "ViT-B-32", tag: "laion2b_s34b_b79k")
        XCTAssertEqual(t.hubRepo, "laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
        XCTAssertEqual(t.weightFiles, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"])
        XCTAssertEqual(try OpenCLIPRegistry.pretrained(model: "ViT-B-32", tag: "LAION2B-S34B-B79K").hubRepo, t.hubRepo)
        let dfn = try OpenCLIPRegistry.pretrained(model: "ViT-H-14-378-quickgelu", tag: "dfn5b")
        XCTAssertEqual(dfn.hubRepo, "apple/DFN5B-CLIP-ViT-H-14-378")
        XCTAssertEqual(dfn.resizeMode, "squash")
        XCTAssertEqual(OpenCLIPRegistry.openCLIPVersion, "3.3.0")
        XCTAssertGreaterThan(OpenCLIPRegistry.modelNames.count, 100)
        XCTAssertGreaterThan(OpenCLIPRegistry.tags(model: "ViT-L-14").count, 5)
    }
}
