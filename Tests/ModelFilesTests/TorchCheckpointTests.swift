// torch.save checkpoints read equal to safetensors copies the Python library wrote of the same tensors
// (scripts/fixtures/torch_bin_fixtures.py, torch 2.15): every dtype, shared storages, views with offsets
// and strides, Parameters, _metadata, shards behind an index. Hostile pickles (os.system, eval,
// subprocess.Popen, a class of __main__, torch.load, protocol 4) are refused naming the global, and
// their payloads never run; the legacy format is refused clearly; mutated files never crash the reader.

import Foundation
import Tensors
import XCTest
@testable import ModelFiles

final class TorchCheckpointTests: XCTestCase {
    private func dir() -> URL { TestFiles.fixture("torch_bin") }

    /// Every tensor of `bin` equals the same-named one of `oracle`: dtype, shape and every byte.
    private func assertSameTensors(_ bin: TorchCheckpointFile, _ oracle: SafetensorsFile, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(Set(bin.names), Set(oracle.names), "tensor names", file: file, line: line)
        for name in oracle.names {
            let info = try XCTUnwrap(oracle.tensors[name])
            XCTAssertEqual(bin.dtype(of: name), info.dtype, "\(name) dtype", file: file, line: line)
            XCTAssertEqual(bin.shape(of: name), info.shape, "\(name) shape", file: file, line: line)
            let expected = try oracle.withData(name) { Array($0) }
            XCTAssertEqual(try bin.contiguousBytes(name), expected, "\(name) bytes", file: file, line: line)
            if [.f32, .f16, .bf16].contains(info.dtype) {
                XCTAssertEqual(try bin.floats(name).map(\.bitPattern), try oracle.floats(name).map(\.bitPattern), "\(name) floats", file: file, line: line)
            }
        }
    }

    func testMixedStateDictEqualsItsSafetensorsCopy() throws {
        let bin = try TorchCheckpointFile(url: dir().appendingPathComponent("mixed.bin"))
        let st = try SafetensorsFile(url: dir().appendingPathComponent("mixed.safetensors"))
        try assertSameTensors(bin, st)
        // The fixture really holds the hard cases: views, shared storages, non-contiguous strides.
        let meta = try TestFiles.json("torch_bin/mixed.json")
        let entries = try XCTUnwrap(meta["entries"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(entries.filter { ($0["contiguous"] as? Bool) == false }.count, 3, "non-contiguous views in the fixture")
        XCTAssertGreaterThanOrEqual(entries.filter { ($0["parameter"] as? Bool) == true }.count, 1, "a Parameter")
        XCTAssertGreaterThanOrEqual(entries.filter { (($0["shares_storage_with"] as? [String]) ?? []).isEmpty == false }.count, 2, "shared storages")
        XCTAssertTrue(Set(entries.compactMap { $0["dtype"] as? String }).isSuperset(of: ["float32", "float16", "bfloat16", "int64", "bool"]))
        XCTAssertEqual(bin.names.count, entries.count, "every tensor entry of the state dict is read")
    }

    func testModuleStateDictEqualsItsSafetensorsCopy() throws {
        try assertSameTensors(try TorchCheckpointFile(url: dir().appendingPathComponent("module_state.bin")),
                              try SafetensorsFile(url: dir().appendingPathComponent("module_state.safetensors")))
    }

    func testShardedCheckpointReadsAsOneAndSafetensorsIsPreferred() throws {
        let bin = try TorchCheckpoint(url: dir().appendingPathComponent("tiny_llama_bin"))
        XCTAssertEqual(bin.files.count, 2, "two shards behind pytorch_model.bin.index.json")
        let st = try SafetensorsCheckpoint(url: dir().appendingPathComponent("tiny_llama_st"))
        // The .bin keeps the tied lm_head.weight (same storage as the embedding); safetensors drops it.
        XCTAssertEqual(Set(bin.names).subtracting(st.names), ["lm_head.weight"])
        XCTAssertEqual(try bin.floats("lm_head.weight"), try bin.floats("model.embed_tokens.weight"))
        for name in st.names { XCTAssertEqual(try bin.floats(name), try st.floats(name), name) }

        // A directory with both formats opens the safetensors weights.
        let both = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-both-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: both) }
        try FileManager.default.copyItem(at: dir().appendingPathComponent("tiny_llama_bin"), to: both)
        XCTAssertTrue(try ModelWeights.open(directory: both).source is TorchCheckpoint)
        try FileManager.default.copyItem(at: dir().appendingPathComponent("tiny_llama_st/model.safetensors"),
                                         to: both.appendingPathComponent("model.safetensors"))
        XCTAssertTrue(try ModelWeights.open(directory: both).source is SafetensorsCheckpoint)
        // A shard the index names but the directory lacks is named.
        try FileManager.default.removeItem(at: both.appendingPathComponent("model.safetensors"))
        try FileManager.default.removeItem(at: both.appendingPathComponent("pytorch_model-00002-of-00002.bin"))
        XCTAssertThrowsError(try TorchCheckpoint(url: both)) { XCTAssertTrue("\($0)".contains("pytorch_model-00002-of-00002.bin"), "\($0)") }
    }

    func testLegacyFormatIsRefusedClearly() throws {
        XCTAssertThrowsError(try TorchCheckpointFile(url: dir().appendingPathComponent("legacy.bin"))) { error in
            let m = "\(error)"
            XCTAssertTrue(m.contains("legacy.bin") && m.contains("legacy") && m.contains("safetensors"), m)
        }
    }

    func testHostilePicklesAreRefusedNamingTheGlobalAndNothingRuns() throws {
        let evil = try XCTUnwrap(try TestFiles.json("torch_bin/evil.json")["files"] as? [String: [String: Any]])
        XCTAssertEqual(evil.count, 6)
        for (name, facts) in evil.sorted(by: { $0.key < $1.key }) {
            let global = try XCTUnwrap(facts["dangerous_global"] as? String, name)
            let marker = try XCTUnwrap(facts["marker"] as? String, name)
            try? FileManager.default.removeItem(atPath: marker)
            XCTAssertThrowsError(try TorchCheckpointFile(url: dir().appendingPathComponent("\(name).bin")), name) { error in
                let m = "\(error)"
                XCTAssertTrue(m.contains("'\(global)'"), "\(name): the error names \(global): \(m)")
                XCTAssertTrue(m.contains("nothing in the file was executed"), m)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "\(name)'s payload ran")
        }
    }

    func testMutatedCheckpointsLoadOrThrowButNeverCrash() throws {
        let base = try Data(contentsOf: dir().appendingPathComponent("mixed.bin"))
        var rng = SplitMix64(state: 20_261_202)
        var refused = 0, loaded = 0
        for i in 0..<3000 {
            var d = base
            switch rng.below(4) {
            case 0: d = d.prefix(rng.below(d.count))                      // truncation anywhere
            case 1:                                                        // a few random bytes
                for _ in 0..<(1 + rng.below(6)) { d[rng.below(d.count)] = UInt8(truncatingIfNeeded: rng.next()) }
            case 2:                                                        // bytes inside data.pkl (offset 64..1500)
                for _ in 0..<(1 + rng.below(3)) { d[64 + rng.below(min(1500, d.count - 64))] = UInt8(truncatingIfNeeded: rng.next()) }
            default:                                                       // a boundary value over a size/offset field
                let at = rng.below(d.count - 8)
                let v: [UInt64] = [0, 1, 0xFFFF, 0xFFFF_FFFF, UInt64(Int64.max), UInt64.max]
                withUnsafeBytes(of: v[rng.below(v.count)].littleEndian) { d.replaceSubrange(at..<(at + 8), with: $0) }
            }
            do {
                let f = try TorchCheckpointFile(data: d, url: URL(fileURLWithPath: "/fuzz-\(i).bin"))
                for n in f.names { _ = try f.contiguousBytes(n) }
                loaded += 1
            } catch is ModelFileError { refused += 1 }
        }
        XCTAssertGreaterThan(refused, 500, "most mutations are caught")
        XCTAssertGreaterThan(loaded, 10, "some mutations (tensor bytes) still load")
        // Every truncation of the pickle-bearing head is refused, never a crash.
        for n in stride(from: 0, to: min(base.count, 2400), by: 7) {
            XCTAssertThrowsError(try TorchCheckpointFile(data: base.prefix(n), url: URL(fileURLWithPath: "/trunc.bin")))
        }
    }
}
