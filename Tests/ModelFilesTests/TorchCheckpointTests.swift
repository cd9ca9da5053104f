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

/// Hand-built torch.save archives for the cases no honest torch.save writes: views that claim more elements
/// than exist, offsets at the edge of Int, nesting deep enough to exhaust the stack, a zip too short for ZIP64.
final class TorchCheckpointHostileShapeTests: XCTestCase {
    /// A stored zip of `entries` (no CRCs: the reader does not check them).
    static func zip(_ entries: [(String, [UInt8])]) -> Data {
        var out = [UInt8](), central = [UInt8]()
        func u16(_ v: Int, _ b: inout [UInt8]) { b += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
        func u32(_ v: Int, _ b: inout [UInt8]) { for i in 0..<4 { b.append(UInt8((v >> (8 * i)) & 0xff)) } }
        for (name, data) in entries {
            let offset = out.count
            let n = Array(name.utf8)
            u32(0x0403_4b50, &out); u16(20, &out); u16(0, &out); u16(0, &out); u32(0, &out); u32(0, &out)
            u32(data.count, &out); u32(data.count, &out); u16(n.count, &out); u16(0, &out)
            out += n + data
            u32(0x0201_4b50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(0, &central)
            u32(0, &central); u32(0, &central); u32(data.count, &central); u32(data.count, &central)
            u16(n.count, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central)
            u32(0, &central); u32(offset, &central)
            central += n
        }
        let cdOffset = out.count
        out += central
        u32(0x0605_4b50, &out); u16(0, &out); u16(0, &out); u16(entries.count, &out); u16(entries.count, &out)
        u32(central.count, &out); u32(cdOffset, &out); u16(0, &out)
        return Data(out)
    }

    static func long(_ v: Int) -> [UInt8] { [0x8a, 8] + withUnsafeBytes(of: Int64(v).littleEndian) { Array($0) } }
    static func str(_ s: String) -> [UInt8] { [0x8c, UInt8(s.utf8.count)] + Array(s.utf8) }

    /// {"w": _rebuild_tensor_v2(storage '0' of `numel` floats, offset, size, stride)} over a record of `bytes` bytes.
    static func checkpoint(numel: Int, offset: Int, size: [Int], stride: [Int], type: String = "FloatStorage", bytes: Int) -> Data {
        var p: [UInt8] = [0x80, 0x02, 0x7d] + str("w")
        p += Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8)
        p += [0x28, 0x28] + str("storage") + Array("ctorch\n\(type)\n".utf8) + str("0") + str("cpu") + long(numel) + [0x74, 0x51]
        p += long(offset)
        p += [0x28] + size.flatMap(long) + [0x74]
        p += [0x28] + stride.flatMap(long) + [0x74]
        p += [0x89, 0x74, 0x52, 0x73, 0x2e]
        return zip([("archive/data.pkl", p), ("archive/data/0", [UInt8](repeating: 1, count: bytes))])
    }

    func open(_ d: Data) throws -> TorchCheckpointFile { try TorchCheckpointFile(data: d, url: URL(fileURLWithPath: "/hostile.bin")) }

    func testHandBuiltCheckpointReads() throws {
        let f = try open(Self.checkpoint(numel: 6, offset: 1, size: [2, 2], stride: [1, 2], bytes: 24))
        XCTAssertEqual(f.names, ["w"])
        XCTAssertEqual(f.shape(of: "w"), [2, 2])
        XCTAssertEqual(try f.contiguousBytes("w").count, 16)
    }

    func testViewsClaimingTooManyElementsAreRefused() throws {
        // Stride 0 repeats one element: 2^61 + 1 of them would overflow the byte count; 2^36 would ask for 256 GiB.
        for size in [(1 << 61) + 1, 1 << 36] {
            XCTAssertThrowsError(try open(Self.checkpoint(numel: 1, offset: 0, size: [size], stride: [0], bytes: 4)), "\(size)")
        }
        XCTAssertThrowsError(try open(Self.checkpoint(numel: 1, offset: 0, size: [1 << 32, 1 << 32], stride: [1, 1], bytes: 4)))
        // An offset at Int.max: offset + 1 must not wrap round into a "small" end.
        XCTAssertThrowsError(try open(Self.checkpoint(numel: 1, offset: Int.max, size: [], stride: [], type: "ByteStorage", bytes: 1)))
        XCTAssertThrowsError(try open(Self.checkpoint(numel: 1, offset: 0, size: [2], stride: [Int.max], bytes: 4)))
        XCTAssertThrowsError(try open(Self.checkpoint(numel: 1 << 62, offset: 0, size: [1], stride: [1], type: "DoubleStorage", bytes: 8)))
    }

    func testDeepNestingIsRefusedNotACrash() throws {
        let tuples = [UInt8](repeating: 0x85, count: 2_000_000)                                   // (((None,),),) ...
        let lists = [UInt8](repeating: 0x5d, count: 300) + [UInt8](repeating: 0x61, count: 299)  // [[[...]]]
        for body in [tuples, lists] {
            let p: [UInt8] = [0x80, 0x02, 0x4e] + body + [0x2e]
            XCTAssertThrowsError(try open(Self.zip([("archive/data.pkl", p)]))) { XCTAssertTrue("\($0)".contains("nested"), "\($0)") }
        }
        // A list grown through the memo after it was nested would make the recorded depth wrong: refused.
        let grow: [UInt8] = [0x80, 0x02, 0x5d, 0x71, 0x00, 0x5d, 0x68, 0x00, 0x61, 0x68, 0x00, 0x5d, 0x61, 0x2e]
        XCTAssertThrowsError(try open(Self.zip([("archive/data.pkl", grow)])))
    }

    func testTinyZip64ClaimIsRefused() throws {
        // PK\3\4, filler, a ZIP64 locator pointing far away, an end record saying "see ZIP64": 50 bytes.
        var d = [UInt8]([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0])
        d += [0x50, 0x4b, 0x06, 0x07, 0, 0, 0, 0] + [0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + [1, 0, 0, 0]
        d += [0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff] + [0, 0, 0, 0] + [0, 0, 0, 0] + [0, 0]
        XCTAssertThrowsError(try open(Data(d)))
    }
}
