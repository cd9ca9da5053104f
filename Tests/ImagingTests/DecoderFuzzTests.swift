// Hostile images: hundreds of seeded random mutations of real JPEG and PNG files (bytes flipped, runs
// overwritten, lengths and chunk sizes corrupted, pieces cut out or repeated). Each must either decode to
// a well-formed image or throw an error that names the file; a crash, a hang or a malformed image fails.
// The seed of every case is in the failure message, so a failure replays exactly.
import Foundation
import XCTest
@testable import Imaging
import Tensors

final class DecoderFuzzTests: XCTestCase {
    static let files = ["coffee_333x517_420.jpg", "imagenet_progressive_512.jpg", "rocket_301x211_422.jpg",
                        "rosella_rgba.png", "chelsea_rgb16.png", "camera_gray16.png", "tshirt_palette_trns.png"]

    /// One mutated copy of `data`, chosen by `rng`.
    static func mutate(_ data: [UInt8], _ rng: inout RandomStream) -> [UInt8] {
        var d = data
        func pos() -> Int { Int(rng.next() % UInt64(max(1, d.count))) }
        switch rng.next() % 6 {
        case 0:  // a few random bytes
            for _ in 0..<(1 + Int(rng.next() % 8)) { d[pos()] = UInt8(truncatingIfNeeded: rng.next()) }
        case 1:  // one bit, early (headers, markers, chunk lengths live there)
            let p = Int(rng.next() % UInt64(min(d.count, 512)))
            d[p] ^= UInt8(1 << (rng.next() % 8))
        case 2:  // a run overwritten with 0x00 or 0xFF
            let p = pos(), n = min(d.count - p, 1 + Int(rng.next() % 64))
            let v: UInt8 = rng.next() % 2 == 0 ? 0 : 0xFF
            for i in p..<(p + n) { d[i] = v }
        case 3:  // a 32-bit big-endian field (PNG chunk length, JPEG segment) set to an extreme value
            let p = Int(rng.next() % UInt64(min(d.count - 4, 1024)))
            let v: UInt32 = [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x0001_0000][Int(rng.next() % 5)]
            for i in 0..<4 { d[p + i] = UInt8(truncatingIfNeeded: v >> (24 - 8 * i)) }
        case 4:  // a piece cut out
            let p = pos(), n = min(d.count - p, 1 + Int(rng.next() % 256))
            d.removeSubrange(p..<(p + n))
        default:  // a piece repeated
            let p = pos(), n = min(d.count - p, 1 + Int(rng.next() % 256))
            d.insert(contentsOf: d[p..<(p + n)], at: p)
        }
        return d
    }

    func testMutatedFilesDecodeOrFailNamingTheFile() throws {
        var decoded = 0, failed = 0
        for (f, file) in Self.files.enumerated() {
            let original = [UInt8](try Data(contentsOf: try Fixtures.image(file)))
            for i in 0..<150 {
                let seed = UInt64(f * 1000 + i)
                var rng = RandomStream(seed: seed)
                let data = Data(Self.mutate(original, &rng))
                let name = "fuzz-\(seed)-\(file)"
                do {
                    // A small pixel budget keeps a mutated size field from asking for gigabytes.
                    let image = try ImageDecoder.decode(data: data, name: name, maxPixels: 4_000_000)
                    XCTAssertEqual(image.pixels.count, image.width * image.height * 3, "\(name): malformed image")
                    decoded += 1
                } catch {
                    XCTAssertTrue("\(error)".contains(name), "\(name): the error does not name the file: \(error)")
                    failed += 1
                }
            }
        }
        // Both outcomes must occur, or the mutations are too weak (or too strong) to test anything.
        XCTAssertGreaterThan(decoded, 50, "mutations that leave an image decodable")
        XCTAssertGreaterThan(failed, 50, "mutations that break the file")
        print("image fuzz: \(decoded) decoded, \(failed) failed cleanly")
    }
}
