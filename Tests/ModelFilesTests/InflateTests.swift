// The DEFLATE decoder must give back exactly what zlib compressed (stored, fixed-Huffman, dynamic,
// Huffman-only and RLE streams, written by scripts/fixtures/concepts_fixtures.py), and corrupt or cut
// streams must throw, never crash or return wrong bytes.
import Foundation
import XCTest
@testable import ModelFiles

extension TestFiles {
    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: fixture(name))) }
}

final class InflateTests: XCTestCase {
    let streams = ["level0", "level1", "level9", "fixed", "huffman", "rle"]

    func testEveryZlibStreamInflatesToThePayload() throws {
        let payload = try TestFiles.bytes("inflate/data.bin")
        XCTAssertGreaterThan(payload.count, 30_000)
        for name in streams {
            let packed = try TestFiles.bytes("inflate/\(name).zz")
            XCTAssertNotEqual(packed, payload, name)
            let out = try Inflate.zlibDecompress(packed)
            XCTAssertEqual(out.count, payload.count, name)
            XCTAssertTrue(out == payload, "\(name) inflates to different bytes")
        }
        XCTAssertEqual(try Inflate.zlibDecompress(try TestFiles.bytes("inflate/empty.zz")), [])
    }

    func testAdler32KnownValue() {
        // RFC 1950's checksum of "Wikipedia" is the textbook example: 0x11E60398.
        XCTAssertEqual(Inflate.adler32(Array("Wikipedia".utf8)), 0x11E6_0398)
    }

    func testCorruptChecksumIsDetected() throws {
        var packed = try TestFiles.bytes("inflate/level9.zz")
        packed[packed.count - 1] ^= 0x01
        XCTAssertThrowsError(try Inflate.zlibDecompress(packed)) { error in
            guard case InflateError.checksumMismatch = error else { return XCTFail("\(error)") }
        }
    }

    func testBadHeaderIsRejected() {
        XCTAssertThrowsError(try Inflate.zlibDecompress([0x78, 0x00, 0x00])) { error in
            guard case InflateError.badHeader = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Inflate.zlibDecompress([0x79, 0x9c, 0x00]))
    }

    func testTruncatedStreamsThrow() throws {
        for name in streams {
            let packed = try TestFiles.bytes("inflate/\(name).zz")
            for cut in [1, 2, 3, 10, packed.count / 3, packed.count / 2, packed.count - 5, packed.count - 1] {
                XCTAssertThrowsError(try Inflate.zlibDecompress(Array(packed.prefix(cut))), "\(name) cut at \(cut)")
            }
        }
    }

    func testFlippedBitsNeverCrashAndNeverPassSilently() throws {
        let payload = try TestFiles.bytes("inflate/data.bin")
        let packed = try TestFiles.bytes("inflate/level9.zz")
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0 ..< 60 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            var bad = packed
            let at = 2 + Int(state >> 33) % (packed.count - 6)
            bad[at] ^= UInt8(1 << (Int(state >> 20) % 8))
            if let out = try? Inflate.zlibDecompress(bad) {
                XCTAssertTrue(out == payload, "a corrupt stream decoded to wrong bytes without an error (byte \(at))")
            }
        }
    }

    func testDistanceBeforeStartIsRejected() {
        // A fixed-Huffman block whose first symbol is a match (length code 257, distance code 0).
        var w = BitWriter()
        w.write(1, bits: 1)           // final block
        w.write(1, bits: 2)           // fixed Huffman
        w.writeCode(0b0000001, bits: 7) // symbol 257: length 3
        w.writeCode(0b00000, bits: 5)   // distance code 0: distance 1
        w.writeCode(0b0000000, bits: 7) // end of block
        XCTAssertThrowsError(try Inflate.inflateRaw(w.bytes)) { error in
            XCTAssertEqual(error as? InflateError, .badDistance(distance: 1, available: 0))
        }
    }

    func testOutputLimitIsEnforced() throws {
        let packed = try TestFiles.bytes("inflate/level9.zz")
        XCTAssertThrowsError(try Inflate.zlibDecompress(packed, limit: 1000)) { error in
            XCTAssertEqual(error as? InflateError, .outputTooLarge(limit: 1000))
        }
    }
}

/// DEFLATE's bit order: header fields least-significant bit first, Huffman codes most-significant first.
struct BitWriter {
    var bytes: [UInt8] = []
    var used = 0

    mutating func bit(_ b: Int) {
        if used % 8 == 0 { bytes.append(0) }
        bytes[bytes.count - 1] |= UInt8(b & 1) << UInt8(used % 8)
        used += 1
    }

    mutating func write(_ value: Int, bits: Int) { for i in 0 ..< bits { bit(value >> i) } }
    mutating func writeCode(_ code: Int, bits: Int) { for i in stride(from: bits - 1, through: 0, by: -1) { bit(code >> i) } }
}

/// gzip files written by Python's gzip module, the gzip program and by hand with every optional header
/// field must decompress to what Python's gzip.decompress returned (scripts/fixtures/gzip_fixtures.py).
final class GzipTests: XCTestCase {
    func expected() throws -> [String: [String: Any]] {
        let meta = try TestFiles.json("gzip/gzip.json")
        return try XCTUnwrap(meta["files"] as? [String: [String: Any]])
    }

    func testEveryFileMatchesPythonsGzip() throws {
        let payload = try TestFiles.bytes("inflate/data.bin")
        let files = try expected()
        XCTAssertTrue(files.keys.contains("fields.gz") && files.keys.contains("multi.gz"))
        for (name, e) in files {
            let out = try Gzip.decompress(try TestFiles.bytes("gzip/\(name)"))
            XCTAssertEqual(out.count, e["length"] as? Int, name)
            XCTAssertEqual(Int(Gzip.crc32(out)), e["crc32"] as? Int, name)
            if e["equals_inflate_payload"] as? Bool == true { XCTAssertTrue(out == payload, name) }
        }
    }

    func testCRC32KnownValue() {
        // The CRC-32 check value of every CRC catalogue: "123456789" -> 0xCBF43926.
        XCTAssertEqual(Gzip.crc32(Array("123456789".utf8)), 0xCBF4_3926)
    }

    func testCorruptionIsDetected() throws {
        let good = try TestFiles.bytes("gzip/fields.gz")
        var crc = good; crc[crc.count - 6] ^= 1
        var size = good; size[size.count - 2] ^= 1
        var header = good; header[16] ^= 1  // inside the extra field: only the header CRC notices
        var method = good; method[2] = 7
        var reserved = good; reserved[3] |= 0x80
        for (what, bad) in [("crc", crc), ("size", size), ("header", header), ("method", method), ("reserved", reserved),
                            ("trailing junk", good + [1, 2, 3]), ("not gzip", Array(good.dropFirst()))] {
            XCTAssertThrowsError(try Gzip.decompress(bad), what)
        }
        XCTAssertThrowsError(try Gzip.decompress(good, limit: 100)) { error in
            XCTAssertEqual(error as? InflateError, .outputTooLarge(limit: 100))
        }
    }

    func testTruncatedAndFlippedFilesThrowOrDecodeRight() throws {
        let payload = try TestFiles.bytes("inflate/data.bin")
        let good = try TestFiles.bytes("gzip/python.gz")
        for cut in [0, 1, 5, 10, 11, 30, good.count / 2, good.count - 8, good.count - 1] {
            XCTAssertThrowsError(try Gzip.decompress(Array(good.prefix(cut))), "cut at \(cut)")
        }
        var state: UInt64 = 12345
        for _ in 0..<40 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            var bad = good
            let at = Int(state >> 33) % good.count
            bad[at] ^= UInt8(1 << (Int(state >> 20) % 8))
            if let out = try? Gzip.decompress(bad) {
                XCTAssertTrue(out == payload, "a corrupt file decoded to wrong bytes without an error (byte \(at))")
            }
        }
    }
}
