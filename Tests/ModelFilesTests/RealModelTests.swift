// The two real GGUF files fetched by scripts/setup.sh, read by us and by gguf-py (real_models.json):
// tensor tables, metadata and dequantized rows must agree exactly. Skipped loudly when absent.

import Foundation
import XCTest
@testable import ModelFiles

final class RealModelTests: XCTestCase {
    private func check(_ name: String) throws {
        let url = try TestFiles.model(name)
        let all = try XCTUnwrap(try TestFiles.json("real_models.json")["models"] as? [String: Any])
        let expect = try XCTUnwrap(all[name] as? [String: Any], "fixture lacks \(name)")
        let f = try GGUFFile(url: url)

        let tensors = try XCTUnwrap(expect["tensors"] as? [[String: Any]])
        XCTAssertEqual(f.tensors.count, tensors.count)
        for (t, e) in zip(f.tensors, tensors) {
            XCTAssertEqual(t.name, e["name"] as? String)
            XCTAssertEqual(t.type.rawValue, UInt32(e["type_id"] as! Int), t.name)
            XCTAssertEqual(t.dims, e["dims"] as? [Int], t.name)
            XCTAssertEqual(t.offset, e["offset"] as? Int, t.name)
            XCTAssertEqual(t.byteCount, e["byte_count"] as? Int, t.name)
        }

        let meta = try XCTUnwrap(expect["metadata"] as? [String: [String: Any]])
        XCTAssertEqual(Set(f.metadata.keys), Set(meta.keys))
        for (key, e) in meta {
            if let count = e["count"] as? Int {  // a big array: length, ends, digest
                guard case let .array(a)? = f.metadata[key] else { XCTFail("\(key) is not an array"); continue }
                XCTAssertEqual(a.count, count, key)
                if let digest = e["fnv1a64"] as? String {
                    let s = try XCTUnwrap(f.strings(key), key)
                    XCTAssertEqual(fnv1a64(Array(s.joined(separator: "\n").utf8)), digest, key)
                    XCTAssertEqual(Array(s.prefix(3)), e["first"] as? [String], key)
                } else if let first = e["first"] as? [Double] {
                    let got: [Double]? = f.floats(metadata: key).map { $0.prefix(3).map { Double($0) } }
                    XCTAssertEqual(got, first, key)
                }
            } else if let s = e["value"] as? String {
                XCTAssertEqual(f.string(key), s, key)
            } else if (e["types"] as? [String]) == ["BOOL"] {
                XCTAssertEqual(f.bool(key), e["value"] as? Bool, key)
            } else if let n = e["value"] as? NSNumber {
                XCTAssertEqual(f.double(key), n.doubleValue, key)
            } else {
                XCTFail("unexpected fixture entry for \(key)")
            }
        }

        let rows = try XCTUnwrap(expect["rows"] as? [[String: Any]])
        XCTAssertGreaterThan(rows.count, 3)
        for r in rows {
            let t = try XCTUnwrap(f.tensor(r["tensor"] as! String))
            let row = r["row"] as! Int
            let want = decodeF32(r["values_f32"] as! String)
            var got = [Float](repeating: .nan, count: t.rowLength)
            f.withData(t) { raw in
                let rowBytes = t.type.rowByteCount(t.rowLength)
                dequantizeRow(t.type, raw.baseAddress! + row * rowBytes, &got, count: t.rowLength)
            }
            XCTAssertNil(firstMismatch(Array(got.prefix(want.count)), want, "\(name) \(t.name) (\(t.type.name)) row \(row)"))
        }
    }

    func testSmolLM2MatchesGGUFPy() throws { try check("SmolLM2-135M-Instruct.Q4_1.gguf") }
    func testGemma3MatchesGGUFPy() throws { try check("gemma-3-270m-q4_k_m.gguf") }
}

/// FNV-1a 64, as the fixture script computes it.
func fnv1a64(_ bytes: [UInt8]) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    let s = String(h, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}
