// The decoder and PEFT adapters from PyTorch .bin files: a sharded pytorch_model.bin checkpoint gives the
// logits transformers computes for it (scripts/fixtures/torch_bin_fixtures.py, transformers 4.57.6), and
// an adapter PEFT saved with safe_serialization=False loads to the same parameters as its safetensors twin.
import Foundation
import ModelFiles
import XCTest
@testable import Llama

final class TorchBinLoadingTests: XCTestCase {
    /// Tests/ModelFilesTests/Fixtures/torch_bin (another target's fixtures, read in place).
    var torchBin: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ModelFilesTests/Fixtures/torch_bin")
    }

    func testShardedBinCheckpointMatchesTransformers() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: torchBin.appendingPathComponent("tiny_llama_bin.json"))) as! [String: Any]
        let tokens = try XCTUnwrap(expected["tokens"] as? [Int])
        let want = (expected["logits"] as! [[NSNumber]]).flatMap { $0.map(\.floatValue) }
        for dir in ["tiny_llama_bin", "tiny_llama_st"] {
            let model = try DecoderModel.load(hfDirectory: torchBin.appendingPathComponent(dir))
            let cache = model.makeCache(slots: 1, capacity: 16)
            let got = model.forward([SequenceChunk(slot: 0, tokens: tokens, startPosition: 0)], cache: cache, logits: .all)
            XCTAssertEqual(got.count, want.count, dir)
            let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(worst, 1e-4, "\(dir): max |logit - transformers| = \(worst)")
        }
    }

    func testPEFTBinAdapterEqualsItsSafetensorsTwin() throws {
        let train = TestPaths.fixtures.appendingPathComponent("train")
        let c = try DecoderConfig(configJSON: train.appendingPathComponent("tiny-llama-gqa/model/config.json"))
        let bin = try PEFTAdapter.load(train.appendingPathComponent("llama/adapter_bin"), model: c)
        let st = try PEFTAdapter.load(train.appendingPathComponent("llama/adapter"), model: c)
        XCTAssertFalse(FileManager.default.fileExists(atPath: train.appendingPathComponent("llama/adapter_bin/adapter_model.safetensors").path))
        XCTAssertEqual(bin.count, st.count)
        XCTAssertEqual((0..<bin.count).map { bin.parameters[$0].bitPattern }, (0..<st.count).map { st.parameters[$0].bitPattern })
        XCTAssertTrue((0..<bin.count).contains { bin.parameters[$0] != 0 }, "the adapter holds trained values")
    }
}
