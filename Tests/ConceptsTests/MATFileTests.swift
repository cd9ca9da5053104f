// The MAT v5 reader must read back what scipy.io.loadmat reads from the same files (written by
// scipy.io.savemat with and without compression, see scripts/fixtures/concepts_fixtures.py), read the
// compact storage types MATLAB itself writes, and refuse damaged or unsupported files with errors that
// name the file.
import Foundation
import XCTest
@testable import Concepts

final class MATFileTests: XCTestCase {
    func testScipyFilesMatchLoadmat() throws {
        let expected = try XCTUnwrap((try Fixture.json("mat/values.json") as? [String: Any])?["variables"] as? [String: Any])
        XCTAssertEqual(expected.count, 20)
        for file in ["mat/values.mat", "mat/values_z.mat"] {
            let mat = try MATFile(contentsOf: try Fixture.url(file))
            XCTAssertTrue(mat.headerText.hasPrefix("MATLAB 5.0 MAT-file"), mat.headerText)
            XCTAssertEqual(Set(mat.variableNames), Set(expected.keys), file)
            for (name, want) in expected {
                let got = try mat.variable(name)
                compare(got, try XCTUnwrap(want as? [String: Any]), "\(file):\(name)")
            }
            XCTAssertEqual(try mat.variable("flag").isLogical, true, file)
            XCTAssertEqual(try mat.variable("dbl").isLogical, false, file)
        }
    }

    func testCompressedFileIsReallyCompressed() throws {
        // If savemat silently stopped compressing, the compressed path would go untested.
        let plain = try Fixture.bytes("mat/values.mat"), packed = try Fixture.bytes("mat/values_z.mat")
        XCTAssertLessThan(packed.count * 2, plain.count)
        XCTAssertEqual(packed[128], 15) // first element: miCOMPRESSED
    }

    func testAccessorsUsedByTheLoaders() throws {
        let mat = try MATFile(contentsOf: try Fixture.url("mat/values_z.mat"))
        let ann = try mat.variable("annotations")
        XCTAssertEqual(try ann.field("fname").map { try $0.string() }, ["00001.jpg", "00002.jpg", "00003.jpg"])
        XCTAssertEqual(try ann.field("class").map { try $0.integers() }, [[14], [3], [196]])
        XCTAssertEqual(try mat.variable("cells").strings(),
                       ["n02085620-Chihuahua/n02085620_10074.jpg", "a", "", "Ünïcødé ✓"])
        XCTAssertEqual(try mat.variable("ids").integers(), [3, 1, 2, 8189])
        XCTAssertEqual(try mat.variable("scalar").integers(), [42])
        XCTAssertThrowsError(try mat.variable("dbl").integers()) { error in
            XCTAssertTrue("\(error)".contains("dbl"), "\(error)")
        }
        XCTAssertThrowsError(try ann.field("nope")) { error in
            XCTAssertTrue("\(error)".contains("fname, class, bbox"), "\(error)")
        }
        XCTAssertThrowsError(try mat.variable("missing")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("values_z.mat") && text.contains("annotations"), text)
        }
    }

    /// MATLAB stores a double array of small whole numbers as miUINT8 and chars as miUINT16, often in
    /// the 4-byte small-element form; scipy never does, so this file is assembled by hand.
    func testMatlabCompactStorage() throws {
        var body: [UInt8] = []
        body += element(6, u32le(6) + u32le(0))                     // flags: mxDOUBLE_CLASS
        body += element(5, u32le(1) + u32le(3))                     // dims 1 x 3
        body += smallElement(1, Array("lab".utf8))                  // name
        body += smallElement(2, [7, 200, 1])                        // data: miUINT8 in a double array
        var chars: [UInt8] = []
        chars += element(6, u32le(4) + u32le(0))                    // mxCHAR_CLASS
        chars += element(5, u32le(1) + u32le(2))
        chars += smallElement(1, Array("s".utf8))
        chars += smallElement(4, u16le(0x48) + u16le(0xE9))         // "Hé" as miUINT16
        var bytes = header()
        bytes += element(14, body) + element(14, chars)
        let mat = try MATFile(bytes: bytes, file: "handmade.mat")
        XCTAssertEqual(try mat.variable("lab").mxClass, .double)
        XCTAssertEqual(try mat.variable("lab").doubles(), [7, 200, 1])
        XCTAssertEqual(try mat.variable("s").string(), "Hé")
    }

    func testDamagedFilesThrowWithTheFileName() throws {
        let good = try Fixture.bytes("mat/values.mat")
        for cut in [0, 100, 127, 130, 200, 1000, good.count / 2, good.count - 3] {
            XCTAssertThrowsError(try MATFile(bytes: Array(good.prefix(cut)), file: "cut.mat"), "cut at \(cut)") { error in
                XCTAssertTrue("\(error)".hasPrefix("cut.mat"), "\(error)")
            }
        }
        let packed = try Fixture.bytes("mat/values_z.mat")
        XCTAssertThrowsError(try MATFile(bytes: Array(packed.prefix(packed.count - 20)), file: "cutz.mat"))
        var big = good
        big[126] = UInt8(ascii: "M"); big[127] = UInt8(ascii: "I")
        XCTAssertThrowsError(try MATFile(bytes: big, file: "be.mat")) { error in
            XCTAssertTrue("\(error)".contains("big-endian"), "\(error)")
        }
        var hdf = [UInt8](repeating: 0x20, count: 600)
        hdf.replaceSubrange(512 ..< 520, with: [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a])
        XCTAssertThrowsError(try MATFile(bytes: hdf, file: "v73.mat")) { error in
            XCTAssertTrue("\(error)".contains("v7.3"), "\(error)")
        }
        XCTAssertThrowsError(try MATFile(bytes: Array("this is plain text, not a MAT file at all".utf8) + [UInt8](repeating: 32, count: 100), file: "t.mat"))
    }

    func testRandomByteDamageNeverCrashes() throws {
        let good = try Fixture.bytes("mat/values.mat")
        var state: UInt64 = 12345
        for _ in 0 ..< 200 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            var bad = good
            let at = 128 + Int(state >> 33) % (good.count - 128)
            bad[at] = UInt8(truncatingIfNeeded: state >> 13)
            _ = try? MATFile(bytes: bad, file: "fuzz.mat")
        }
    }

    // MARK: - helpers

    func compare(_ got: MATArray, _ want: [String: Any], _ where_: String) {
        let kind = want["kind"] as? String ?? "?"
        XCTAssertEqual(got.dims, want["dims"] as? [Int], "\(where_) dims")
        switch kind {
        case "char":
            let rows = want["rows"] as? [String] ?? []
            XCTAssertEqual(got.mxClass, .char, where_)
            if rows.isEmpty { XCTAssertEqual(got.count, 0, where_) } else { XCTAssertEqual(try got.rows(), rows, where_) }
        case "cell":
            let items = want["items"] as? [[String: Any]] ?? []
            guard let cells = try? got.cells(), cells.count == items.count else { return XCTFail("\(where_): cell count") }
            for (i, (c, w)) in zip(cells, items).enumerated() { compare(c, w, "\(where_)[\(i)]") }
        case "struct":
            let fields = want["fields"] as? [String] ?? []
            XCTAssertEqual(got.fieldNames, fields, where_)
            let elements = want["elements"] as? [[String: Any]] ?? []
            for f in fields {
                guard let values = try? got.field(f), values.count == elements.count else { return XCTFail("\(where_).\(f)") }
                for (i, v) in values.enumerated() { compare(v, elements[i][f] as? [String: Any] ?? [:], "\(where_)[\(i)].\(f)") }
            }
        case "double", "single":
            XCTAssertEqual(got.mxClass.rawValue, kind, where_)
            let want = (want["values"] as? [String] ?? []).map { Double($0)! }
            let have = (try? got.doubles()) ?? []
            XCTAssertEqual(have.count, want.count, where_)
            for (h, w) in zip(have, want) {
                XCTAssertEqual(h.bitPattern, w.bitPattern, "\(where_): \(h) vs \(w)")
            }
        default:
            XCTAssertEqual(got.mxClass.rawValue, kind, where_)
            guard case .integers(let v) = got.storage else { return XCTFail("\(where_): not integers") }
            XCTAssertEqual(v.map { Int($0) }, want["values"] as? [Int], where_)
        }
    }

    func u32le(_ v: UInt32) -> [UInt8] { (0 ..< 4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    func u16le(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }

    func element(_ type: UInt32, _ data: [UInt8]) -> [UInt8] {
        u32le(type) + u32le(UInt32(data.count)) + data + [UInt8](repeating: 0, count: (8 - data.count % 8) % 8)
    }

    func smallElement(_ type: UInt32, _ data: [UInt8]) -> [UInt8] {
        precondition(data.count <= 4)
        return u32le(UInt32(data.count) << 16 | type) + data + [UInt8](repeating: 0, count: 4 - data.count)
    }

    func header() -> [UInt8] {
        var h = Array("MATLAB 5.0 MAT-file, hand-made test".utf8)
        h += [UInt8](repeating: 0x20, count: 116 - h.count)
        h += [UInt8](repeating: 0, count: 8)
        h += [0x00, 0x01, UInt8(ascii: "I"), UInt8(ascii: "M")]
        return h
    }
}
