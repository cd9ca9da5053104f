// GGUF reader and dequantization checked against gguf-py (fixtures from
// scripts/fixtures/ggml_dequant_fixtures.py), plus one hand-built hostile file per reader check.

import Foundation
import XCTest
@testable import ModelFiles

func decodeF32(_ b64: String) -> [Float] {
    guard let d = Data(base64Encoded: b64) else { return [] }
    return d.withUnsafeBytes { raw in (0..<(d.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) } }
}

/// Bitwise comparison (NaN-safe); returns a message for the first mismatch.
func firstMismatch(_ a: [Float], _ b: [Float], _ label: String) -> String? {
    guard a.count == b.count else { return "\(label): \(a.count) values, expected \(b.count)" }
    for i in a.indices where a[i].bitPattern != b[i].bitPattern {
        return "\(label)[\(i)] = \(a[i]), expected \(b[i])"
    }
    return nil
}

final class GGUFTests: XCTestCase {
    func testTypeTableMatchesGGUFPy() throws {
        let types = try XCTUnwrap(try TestFiles.json("ggml_types.json")["types"] as? [[String: Any]])
        var seen = Set<UInt32>()
        for t in types {
            let id = UInt32(t["id"] as! Int)
            guard let ours = GGMLType(rawValue: id) else { continue }  // types newer than our table
            seen.insert(id)
            // gguf-py still lists Q8_1 with two f32 scales (40 bytes); ggml's block_q8_1 holds two f16
            // (sizeof = 36). It is an activation-only type that never appears in model files.
            if ours == .q8_1 { XCTAssertEqual(ours.typeSize, 36); continue }
            XCTAssertEqual(ours.blockSize, t["block"] as? Int, "block size of \(t["name"]!)")
            XCTAssertEqual(ours.typeSize, t["size"] as? Int, "type size of \(t["name"]!)")
        }
        for t in GGMLType.allCases { XCTAssertTrue(seen.contains(t.rawValue), "\(t) is not in gguf-py's table") }
    }

    /// Tolerance: exact (bitwise). Our arithmetic order matches gguf-py's numpy code.
    func testDequantizeMatchesGGUFPy() throws {
        let cases = try XCTUnwrap(try TestFiles.json("dequant.json")["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 13)
        for c in cases {
            let type = try XCTUnwrap(GGMLType(rawValue: UInt32(c["type_id"] as! Int)))
            let bytes = try XCTUnwrap(Data(base64Encoded: c["bytes"] as! String))
            let expected = decodeF32(c["expected_f32"] as! String)
            let count = c["count"] as! Int
            XCTAssertEqual(expected.count, count)
            XCTAssertEqual(bytes.count, type.rowByteCount(count))
            var out = [Float](repeating: .nan, count: count)
            bytes.withUnsafeBytes { src in dequantizeRow(type, src.baseAddress!, &out, count: count) }
            XCTAssertNil(firstMismatch(out, expected, "\(type.name)"))
            // Block by block gives the same as the whole row (no state carried between blocks).
            var single = [Float](repeating: .nan, count: type.blockSize)
            bytes.withUnsafeBytes { src in
                dequantizeRow(type, src.baseAddress! + type.typeSize, &single, count: type.blockSize)
            }
            XCTAssertNil(firstMismatch(single, Array(expected[type.blockSize..<(2 * type.blockSize)]), "\(type.name) block 1"))
        }
    }

    func testTinyFileMatchesGGUFPy() throws {
        let f = try GGUFFile(url: TestFiles.fixture("tiny.gguf"))
        let expect = try TestFiles.json("tiny_gguf.json")
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.alignment, 32)
        let meta = try XCTUnwrap(expect["metadata"] as? [String: [String: Any]])
        XCTAssertEqual(Set(f.metadata.keys), Set(meta.keys))
        XCTAssertEqual(f.int("test.u8"), 200)
        XCTAssertEqual(f.int("test.i8"), -100)
        XCTAssertEqual(f.int("test.u16"), 60000)
        XCTAssertEqual(f.int("test.i16"), -30000)
        XCTAssertEqual(f.int("test.u32"), 4_000_000_000)
        XCTAssertEqual(f.int("test.i32"), -2_000_000_000)
        XCTAssertEqual(f.metadata["test.u64"], .uint(UInt64(1) << 63 + 5))
        XCTAssertNil(f.int("test.u64"), "does not fit an Int")
        XCTAssertEqual(f.int("test.i64"), -(1 << 62))
        XCTAssertEqual(f.bool("test.bool"), true)
        for key in ["test.u8", "test.i8", "test.u16", "test.i16", "test.u32", "test.i32", "test.i64", "test.f64"] {
            let v = try XCTUnwrap(meta[key]?["value"] as? NSNumber, key)
            XCTAssertEqual(f.double(key), v.doubleValue, key)
        }
        // An f32 value: compare in Float, since JSON parsing to Double may be off in the last bits.
        let f32 = try XCTUnwrap(meta["test.f32"]?["value"] as? NSNumber)
        XCTAssertEqual(f.double("test.f32").map { Float($0) }, f32.floatValue)
        XCTAssertEqual(f.double("test.f32"), Double(Float(f32.floatValue)), "stored as f32, widened exactly")
        XCTAssertEqual(f.string("test.string"), meta["test.string"]?["value"] as? String)
        XCTAssertEqual(f.strings("test.strings"), meta["test.strings"]?["value"] as? [String])
        XCTAssertEqual(f.ints("test.ints"), meta["test.ints"]?["value"] as? [Int])
        XCTAssertEqual(f.floats(metadata: "test.floats"), (meta["test.floats"]?["value"] as? [Double])?.map { Float($0) })
        XCTAssertNil(f.string("test.u8"), "wrong type gives nil")
        XCTAssertNil(f.int("absent"))

        let tensors = try XCTUnwrap(expect["tensors"] as? [[String: Any]])
        XCTAssertEqual(f.tensors.map(\.name), tensors.map { $0["name"] as! String })
        for (t, e) in zip(f.tensors, tensors) {
            XCTAssertEqual(t.type.rawValue, UInt32(e["type_id"] as! Int), t.name)
            XCTAssertEqual(t.dims, e["dims"] as? [Int], t.name)
            XCTAssertEqual(t.offset, e["offset"] as? Int, t.name)
            XCTAssertEqual(t.byteCount, e["byte_count"] as? Int, t.name)
            XCTAssertEqual(f.tensor(t.name), t)
            XCTAssertNil(firstMismatch(try f.floats(t.name), decodeF32(e["values_f32"] as! String), t.name))
        }
        XCTAssertThrowsError(try f.floats("missing")) { XCTAssertEqual($0 as? ModelFileError, .tensorNotFound(file: f.url.path, name: "missing")) }
    }

    func testShapeConventions() throws {
        let f = try GGUFFile(url: TestFiles.fixture("tiny.gguf"))
        let t = try XCTUnwrap(f.tensor("f32.weight"))  // numpy (3, 64)
        XCTAssertEqual(t.dims, [64, 3])
        XCTAssertEqual(t.shape, [3, 64])
        XCTAssertEqual(t.rowLength, 64)
        XCTAssertEqual(t.rowCount, 3)
        XCTAssertEqual(t.elementCount, 192)
        let v = try XCTUnwrap(f.tensor("vector"))
        XCTAssertEqual(v.rowCount, 1)
        XCTAssertEqual(v.shape, [5])
    }

    func testBuilderFileOpens() throws {
        let f = try open(GGUFBuilder.valid())
        XCTAssertEqual(f.strings("tokenizer.ggml.tokens"), ["<s>", "a", "b"])
        XCTAssertEqual(try f.floats("a"), (0..<8).map { Float($0) - 3.5 })
        XCTAssertEqual(try f.floats("b"), (0..<32).map { Float($0 - 16) })
    }

    // MARK: hostile files

    private func open(_ b: GGUFBuilder, name: String = "test.gguf") throws -> GGUFFile {
        try open(b.build(), name: name)
    }

    private func open(_ data: Data, name: String = "test.gguf") throws -> GGUFFile {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mf-\(UUID().uuidString)-\(name)")
        try data.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        return try GGUFFile(url: url)
    }

    /// Asserts opening fails with a ModelFileError whose message names the file and contains `words`.
    private func assertRejects(_ b: GGUFBuilder, _ words: [String], line: UInt = #line) {
        assertRejects(b.build(), words, line: line)
    }

    private func assertRejects(_ data: Data, _ words: [String], line: UInt = #line) {
        do {
            _ = try open(data)
            XCTFail("opened a hostile file expecting \(words)", line: line)
        } catch let e as ModelFileError {
            let msg = e.description
            XCTAssertTrue(msg.contains("test.gguf"), "message does not name the file: \(msg)", line: line)
            for w in words { XCTAssertTrue(msg.contains(w), "'\(w)' missing from: \(msg)", line: line) }
        } catch {
            XCTFail("wrong error type \(error)", line: line)
        }
    }

    func testRejectsBadHeader() {
        var b = GGUFBuilder.valid()
        b.magic = Array("GGML".utf8)
        assertRejects(b, ["magic"])
        b = .valid(); b.version = 1
        assertRejects(b, ["version 1"])
        b = .valid(); b.version = 4
        assertRejects(b, ["version 4"])
        b = .valid(); b.version = 3 << 24
        assertRejects(b, ["big-endian"])
        assertRejects(Data("GGU".utf8), ["too short"])
        assertRejects(Data(), ["too short"])
        let header = GGUFBuilder.valid().build()
        assertRejects(header.prefix(20), ["truncated"])
    }

    func testRejectsAbsurdCounts() {
        var b = GGUFBuilder.valid()
        b.tensorCountOverride = UInt64.max
        assertRejects(b, ["tensors"])
        b = .valid(); b.kvCountOverride = 1 << 40
        assertRejects(b, ["metadata entries"])
        b = .valid(); b.kvCountOverride = 5  // one more than present: runs into the tensor table
        XCTAssertThrowsError(try open(b))
        b = .valid(); b.kvs.append(("big.array", .raw(type: 9, bytes: [4, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 8))))
        assertRejects(b, ["big.array", "elements"])
        b = .valid(); b.kvs.append(("long.string", .raw(type: 8, bytes: [0, 0, 0, 0, 0, 0, 0, 0x10])))
        assertRejects(b, ["long.string", "bytes"])
    }

    func testRejectsBadMetadata() {
        var b = GGUFBuilder.valid()
        b.kvs.append(("weird", .raw(type: 13, bytes: [0])))
        assertRejects(b, ["weird", "unknown value type 13"])
        b = .valid(); b.kvs.append(("weird.array", .raw(type: 9, bytes: [77, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])))
        assertRejects(b, ["weird.array", "element type 77"])
        b = .valid(); b.kvs.append(("llama.block_count", .u32(3)))
        assertRejects(b, ["duplicate", "llama.block_count"])
        b = .valid(); b.kvs.append(("general.alignment", .u32(24)))
        assertRejects(b, ["general.alignment"])
        b = .valid(); b.kvs.append(("general.alignment", .string("32")))
        assertRejects(b, ["general.alignment"])
    }

    func testRejectsBadTensorInfo() {
        var b = GGUFBuilder.valid()
        b.tensors[1].name = "a"
        assertRejects(b, ["duplicate tensor name 'a'"])
        b = .valid(); b.tensors[0].dims = [1, 1, 1, 1, 8]
        assertRejects(b, ["'a'", "5 dimensions"])
        b = .valid(); b.tensors[0].dims = [8, 0]
        assertRejects(b, ["'a'", "dimension 1"])
        b = .valid(); b.tensors[0].dims = [UInt64(bitPattern: -8)]
        assertRejects(b, ["'a'", "dimension 0"])
        b = .valid(); b.tensors[0].dims = [1 << 32, 1 << 32, 1 << 32]
        assertRejects(b, ["'a'", "overflow"])
        b = .valid(); b.tensors[0].type = 4  // a removed ggml type id
        assertRejects(b, ["'a'", "ggml type id 4"])
        b = .valid(); b.tensors[1].dims = [16, 2]
        assertRejects(b, ["'b'", "block size 32"])
        b = .valid(); b.tensors[1].offset = 40
        assertRejects(b, ["'b'", "alignment"])
        b = .valid(); b.tensors[1].offset = 1 << 40
        assertRejects(b, ["'b'", "past the end"])
        // Truncating the data section cuts the last tensor short.
        let d = GGUFBuilder.valid().build()
        assertRejects(d.prefix(d.count - 1), ["'b'", "past the end"])
    }

    func testOverlappingTensorDataIsAllowed() throws {
        var b = GGUFBuilder.valid()
        b.tensors.append(.init(name: "alias", dims: [4, 2], type: 0, offset: 0, data: b.tensors[0].data))
        let f = try open(b)
        XCTAssertEqual(try f.floats("alias"), try f.floats("a"))
    }

    func testUnsupportedTypeOpensButDoesNotDequantize() throws {
        var b = GGUFBuilder.valid()
        b.tensors.append(.init(name: "iq", dims: [256], type: GGMLType.iq2_xxs.rawValue, offset: nil,
                               data: [UInt8](repeating: 0, count: GGMLType.iq2_xxs.typeSize)))
        let f = try open(b)
        XCTAssertFalse(try XCTUnwrap(f.tensor("iq")).type.canDequantize)
        XCTAssertThrowsError(try f.floats("iq")) { XCTAssertTrue("\($0)".contains("IQ2_XXS")) }
    }
}
