// Safetensors reading and writing against a file written by the Python `safetensors` library
// (tiny.safetensors, described by tiny_safetensors.json), sharded checkpoints, and hostile headers.

import Foundation
import Tensors
import XCTest
@testable import ModelFiles

final class SafetensorsTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("mf-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    private func expected() throws -> (meta: [String: String], tensors: [String: [String: Any]]) {
        let j = try TestFiles.json("tiny_safetensors.json")
        return (try XCTUnwrap(j["metadata"] as? [String: String]), try XCTUnwrap(j["tensors"] as? [String: [String: Any]]))
    }

    func testReadsPythonFile() throws {
        let f = try SafetensorsFile(url: TestFiles.fixture("tiny.safetensors"))
        let (meta, tensors) = try expected()
        XCTAssertEqual(f.metadata, meta)
        XCTAssertEqual(Set(f.tensors.keys), Set(tensors.keys))
        for (name, e) in tensors {
            let t = try XCTUnwrap(f.tensors[name])
            XCTAssertEqual(t.dtype.rawValue, e["dtype"] as? String, name)
            XCTAssertEqual(t.shape, e["shape"] as? [Int], name)
            XCTAssertEqual(f.shape(of: name), t.shape)
            XCTAssertNil(firstMismatch(try f.floats(name), decodeF32(e["values_f32"] as! String), name))
            let raw = try f.withData(name) { Data($0) }
            XCTAssertEqual(raw, Data(base64Encoded: e["raw"] as! String), name)
        }
        XCTAssertThrowsError(try f.floats("nope")) { XCTAssertTrue("\($0)".contains("nope")) }
    }

    func testWriterIsByteIdenticalToPython() throws {
        let (meta, tensors) = try expected()
        let list = tensors.map { name, e in
            (name: name, dtype: DType(rawValue: e["dtype"] as! String)!, shape: e["shape"] as! [Int],
             data: Data(base64Encoded: e["raw"] as! String)!)
        }.shuffled()
        let out = tmp.appendingPathComponent("out.safetensors")
        try writeSafetensors(to: out, tensors: list, metadata: meta)
        XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: TestFiles.fixture("tiny.safetensors")))
        // And what we write reads back.
        let back = try SafetensorsFile(url: out)
        XCTAssertEqual(back.tensors.count, tensors.count)
        // Overwriting goes through a temporary file: the old file is replaced whole.
        try writeSafetensors(to: out, tensors: [(name: "x", dtype: .f32, shape: [1], data: Data(count: 4))], metadata: [:])
        XCTAssertEqual(try SafetensorsFile(url: out).names, ["x"])
        XCTAssertThrowsError(try writeSafetensors(to: out, tensors: [(name: "x", dtype: .f32, shape: [2], data: Data(count: 4))], metadata: [:]))
        XCTAssertThrowsError(try writeSafetensors(to: out, tensors: [(name: "x", dtype: .f32, shape: [1], data: Data(count: 4)),
                                                                     (name: "x", dtype: .f32, shape: [1], data: Data(count: 4))], metadata: [:]))
    }

    func testEscapedNamesRoundTrip() throws {
        let out = tmp.appendingPathComponent("esc.safetensors")
        let name = "we\"ird\\na\u{1}me ü/"
        try writeSafetensors(to: out, tensors: [(name: name, dtype: .u8, shape: [2], data: Data([1, 2]))], metadata: ["k\n": "v\t"])
        let f = try SafetensorsFile(url: out)
        XCTAssertEqual(f.names, [name])
        XCTAssertEqual(f.metadata, ["k\n": "v\t"])
        XCTAssertEqual(try f.floats(name), [1, 2])
    }

    // MARK: hostile headers

    private func file(header: String, data: [UInt8] = [], lengthOverride: UInt64? = nil) throws -> URL {
        var bytes = withUnsafeBytes(of: (lengthOverride ?? UInt64(header.utf8.count)).littleEndian) { Array($0) }
        bytes += Array(header.utf8) + data
        let url = tmp.appendingPathComponent("bad.safetensors")
        try Data(bytes).write(to: url)
        return url
    }

    private func assertRejects(_ header: String, data: [UInt8] = [0, 0, 0, 0], lengthOverride: UInt64? = nil,
                               _ words: [String], line: UInt = #line) throws {
        let url = try file(header: header, data: data, lengthOverride: lengthOverride)
        XCTAssertThrowsError(try SafetensorsFile(url: url), line: line) { e in
            guard let e = e as? ModelFileError else { return XCTFail("wrong error type \(e)", line: line) }
            XCTAssertTrue(e.description.contains("bad.safetensors"), "\(e)", line: line)
            for w in words { XCTAssertTrue(e.description.contains(w), "'\(w)' missing from: \(e)", line: line) }
        }
    }

    func testRejectsHostileHeaders() throws {
        let ok = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        XCTAssertNoThrow(try SafetensorsFile(url: file(header: ok, data: [0, 0, 0, 0])))
        try assertRejects(ok, lengthOverride: 1 << 40, ["limit"])
        try assertRejects(ok, lengthOverride: 5000, ["past the end"])
        try assertRejects("{\"a\":", ["JSON"])
        try assertRejects("[1,2]", ["not a JSON object"])
        try assertRejects(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, ["duplicate", "\"a\""])
        try assertRejects(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, ["'a'", "past the"])
        try assertRejects(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, ["'a'", "begin > end"])
        try assertRejects(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, ["'a'", "needs 8"])
        try assertRejects(#"{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}"#, ["'a'", "F8_E4M3"])
        try assertRejects(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, ["'a'", "shape"])
        try assertRejects(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}"#, ["'a'", "overflow"])
        try assertRejects(#"{"a":{"dtype":"F32","shape":[1]}}"#, ["'a'", "data_offsets"])
        try assertRejects(#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#, ["overlaps"])
        try assertRejects(#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#, ["belong to no tensor"])
        try assertRejects(#"{"__metadata__":{"x":1}}"#, data: [], ["__metadata__"])
        try assertRejects("", data: [], lengthOverride: nil, ["JSON"])
        let short = tmp.appendingPathComponent("bad.safetensors")
        try Data([1, 2, 3]).write(to: short)
        XCTAssertThrowsError(try SafetensorsFile(url: short)) { XCTAssertTrue("\($0)".contains("too short")) }
    }

    // MARK: sharded checkpoints

    private func writeShards(_ index: String?, _ shards: [String: [(String, [Float])]]) throws -> URL {
        let dir = tmp.appendingPathComponent("ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (file, ts) in shards {
            try writeSafetensors(to: dir.appendingPathComponent(file), tensors: ts.map { n, v in
                (name: n, dtype: .f32, shape: [v.count], data: v.withUnsafeBytes { Data($0) })
            }, metadata: ["format": "pt"])
        }
        if let index { try Data(index.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json")) }
        return dir
    }

    func testShardedCheckpoint() throws {
        let dir = try writeShards(#"{"metadata":{"total_size":16},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors","c":"s2.safetensors"}}"#,
                                  ["s1.safetensors": [("a", [1, 2])], "s2.safetensors": [("b", [3]), ("c", [4])]])
        let c = try SafetensorsCheckpoint(url: dir)
        XCTAssertEqual(c.tensorNames, ["a", "b", "c"])
        XCTAssertEqual(try c.floats("a"), [1, 2])
        XCTAssertEqual(try c.floats("c"), [4])
        XCTAssertEqual(c.shape(of: "a"), [2])
        XCTAssertNil(c.shape(of: "z"))
        XCTAssertThrowsError(try c.floats("z")) { XCTAssertTrue("\($0)".contains("'z'")) }
        XCTAssertEqual(c.files.count, 2)
    }

    func testSingleFileCheckpoint() throws {
        let dir = try writeShards(nil, ["model.safetensors": [("w", [5, 6, 7])]])
        let c = try SafetensorsCheckpoint(url: dir)
        XCTAssertEqual(c.tensorNames, ["w"])
        XCTAssertEqual(try c.floats("w"), [5, 6, 7])
        XCTAssertEqual(c.metadata, ["format": "pt"])
    }

    func testShardErrors() throws {
        var dir = try writeShards(#"{"weight_map":{"a":"s1.safetensors","b":"gone.safetensors"}}"#, ["s1.safetensors": [("a", [1])]])
        XCTAssertThrowsError(try SafetensorsCheckpoint(url: dir)) { XCTAssertTrue("\($0)".contains("gone.safetensors") && "\($0)".contains("missing"), "\($0)") }
        dir = try writeShards(#"{"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}}"#,
                              ["s1.safetensors": [("a", [1]), ("b", [2])], "s2.safetensors": [("b", [2])]])
        XCTAssertThrowsError(try SafetensorsCheckpoint(url: dir)) { XCTAssertTrue("\($0)".contains("'b'") && "\($0)".contains("both"), "\($0)") }
        dir = try writeShards(#"{"weight_map":{"a":"s1.safetensors","q":"s1.safetensors"}}"#, ["s1.safetensors": [("a", [1])]])
        XCTAssertThrowsError(try SafetensorsCheckpoint(url: dir)) { XCTAssertTrue("\($0)".contains("'q'") && "\($0)".contains("no such tensor"), "\($0)") }
        dir = try writeShards(#"{"weight_map":{"a":"../s1.safetensors"}}"#, ["s1.safetensors": [("a", [1])]])
        XCTAssertThrowsError(try SafetensorsCheckpoint(url: dir))
        dir = try writeShards(#"{"weight_map":"#, [:])
        XCTAssertThrowsError(try SafetensorsCheckpoint(url: dir)) { XCTAssertTrue("\($0)".contains("JSON"), "\($0)") }
        dir = try writeShards(nil, [:])
        XCTAssertThrowsError(try SafetensorsCheckpoint(url: dir)) { XCTAssertTrue("\($0)".contains("no model.safetensors"), "\($0)") }
    }

    func testWeightSourceOverBothFormats() throws {
        let sources: [any WeightSource] = [try GGUFFile(url: TestFiles.fixture("tiny.gguf")),
                                           try SafetensorsCheckpoint(url: TestFiles.fixture("tiny.safetensors"))]
        for s in sources {
            XCTAssertFalse(s.tensorNames.isEmpty)
            for n in s.tensorNames {
                let shape = try XCTUnwrap(s.shape(of: n))
                XCTAssertEqual(try s.floats(n).count, shape.reduce(1, *), n)
            }
        }
        XCTAssertEqual(sources[0].shape(of: "f32.weight"), [3, 64])
        XCTAssertEqual(sources[1].shape(of: "b.weight"), [3, 5])
    }
}
