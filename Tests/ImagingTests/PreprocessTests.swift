// Resize, crop and normalisation checked against the reference pipelines' own outputs: PIL's resize for
// every filter, transformers' CLIPImageProcessor (PIL and torchvision backends) and open_clip's eval
// transform, all recorded by scripts/fixtures/imaging_fixtures.py.
import Foundation
import XCTest
@testable import Imaging

final class PreprocessTests: XCTestCase {
    private func decoded(_ name: String) throws -> RGBImage {
        try ImageDecoder.decode(contentsOf: try Fixtures.image(name))
    }

    private func chw(_ img: RGBImage) -> [UInt8] {
        let plane = img.width * img.height
        var out = [UInt8](repeating: 0, count: 3 * plane)
        for i in 0..<plane { for c in 0..<3 { out[c * plane + i] = img.pixels[3 * i + c] } }
        return out
    }

    func testResizeEqualsPILForEveryFilter() throws {
        struct Fixture: Decodable {
            struct R: Decodable { let name: String; let filter: Int; let filter_name: String; let width: Int; let height: Int; let sha256: String }
            let results: [R]
        }
        let fixture = try Fixtures.json("resize.json", as: Fixture.self)
        XCTAssertGreaterThan(fixture.results.count, 50)
        var cache: [String: RGBImage] = [:]
        for r in fixture.results {
            let image = try cache[r.name] ?? decoded(r.name)
            cache[r.name] = image
            let filter = try XCTUnwrap(ResampleFilter(rawValue: r.filter))
            let out = image.resized(width: r.width, height: r.height, filter: filter)
            XCTAssertEqual(sha256Hex(out.pixels), r.sha256,
                           "\(r.name) \(image.width)x\(image.height) -> \(r.width)x\(r.height) \(r.filter_name) differs from PIL")
        }
    }

    /// NEAREST picks whole pixels; which ones, for 60 size pairs, as PIL picks them (nearest_resize_fixtures.py).
    func testNearestResizePicksThePixelsPILPicks() throws {
        struct Fixture: Decodable {
            struct C: Decodable { let width: Int; let height: Int; let out_width: Int; let out_height: Int; let cols: [Int]; let rows: [Int] }
            let cases: [C]
        }
        let fixture = try Fixtures.json("nearest.json", as: Fixture.self)
        XCTAssertGreaterThanOrEqual(fixture.cases.count, 60)
        for c in fixture.cases {
            var px = [UInt8](repeating: 0, count: c.width * c.height * 3)
            for y in 0..<c.height { for x in 0..<c.width {
                let i = (y * c.width + x) * 3
                px[i] = UInt8(x % 256); px[i + 1] = UInt8(y % 256); px[i + 2] = UInt8((x / 256) * 16 + y / 256)
            } }
            let out = RGBImage(width: c.width, height: c.height, pixels: px).resized(width: c.out_width, height: c.out_height, filter: .nearest)
            let p = out.pixels, ow = c.out_width
            let cols: [Int] = (0..<ow).map { x -> Int in Int(p[x * 3]) + 256 * Int(p[x * 3 + 2] / 16) }
            let rows: [Int] = (0..<c.out_height).map { y -> Int in
                let i = y * ow * 3
                return Int(p[i + 1]) + 256 * Int(p[i + 2] % 16)
            }
            XCTAssertEqual(cols, c.cols, "\(c.width)x\(c.height) -> \(c.out_width)x\(c.out_height): columns")
            XCTAssertEqual(rows, c.rows, "\(c.width)x\(c.height) -> \(c.out_width)x\(c.out_height): rows")
        }
    }

    func testCropPixelsMatchReferencePipelines() throws {
        let fixture = try Fixtures.json("preprocess.json", as: PreprocessFixture.self)
        let pipelines = Set(fixture.results.map(\.pipeline))
        XCTAssertTrue(pipelines.contains("hf_pil"), "fixture lacks the transformers PIL pipeline")
        if !pipelines.contains("openclip") {
            print("NOTE: preprocess.json has no open_clip results; rerun scripts/fixtures/imaging_fixtures.py with open-clip-torch")
        }
        var cache: [String: RGBImage] = [:]
        var compared = 0, within1 = 0, exact = 0
        var exactHashes = 0, hashes = 0
        for r in fixture.results {
            let image = try cache[r.name] ?? decoded(r.name)
            cache[r.name] = image
            let pre: CLIPPreprocessor
            switch r.pipeline {
            case "openclip": pre = try .openCLIP(size: r.size)
            default:
                pre = try .huggingFace(CLIPImageProcessorConfig(size: .shortestEdge(r.size), cropHeight: r.size,
                                                                cropWidth: r.size))
            }
            let out = pre.pixels(image)
            XCTAssertEqual(out.width, r.size); XCTAssertEqual(out.height, r.size)
            let ours = chw(out)
            // PIL-backed pipelines must be byte-identical (except the one image whose decode is approximate);
            // transformers' torchvision backend resizes with torch's own uint8 kernel, so allow 1/255.
            let mustBeExact = r.pipeline != "hf_torchvision" && r.name != "chelsea_rgba16.png"
            hashes += 1
            let hashEqual = sha256Hex(ours) == r.sha256
            if hashEqual { exactHashes += 1 }
            if mustBeExact { XCTAssertTrue(hashEqual, "\(r.pipeline) \(r.size) \(r.name): crop differs from the reference") }
            var reference: [(Int, Int)] = r.samples.map { ($0[0], $0[1]) }
            if let b64 = r.base64, let data = Data(base64Encoded: b64) {
                reference = Array(data).enumerated().map { ($0.offset, Int($0.element)) }
            }
            for (i, v) in reference {
                compared += 1
                let d = abs(Int(ours[i]) - v)
                if d == 0 { exact += 1 }
                if d <= 1 { within1 += 1 }
                if mustBeExact { XCTAssertEqual(Int(ours[i]), v, "\(r.pipeline) \(r.size) \(r.name) value \(i)") }
            }
        }
        XCTAssertGreaterThan(compared, 10_000)
        let fraction = Double(within1) / Double(compared)
        XCTAssertGreaterThanOrEqual(fraction, 0.999, "only \(within1)/\(compared) values within 1/255")
        print("preprocess: \(exactHashes)/\(hashes) crops byte-identical; \(exact)/\(compared) values exact, \(within1) within 1")
    }

    func testNormalizedFloatsMatchTransformers() throws {
        struct Fixture: Decodable { let name: String; let shape: [Int]; let base64: String }
        let fixture = try Fixtures.json("normalized.json", as: Fixture.self)
        // The config goes through our Codable exactly as transformers' own config dict was written.
        let root = try Fixtures.root.appendingPathComponent("normalized.json")
        struct Wrapper: Decodable { let config: CLIPImageProcessorConfig }
        let config = try JSONDecoder().decode(Wrapper.self, from: Data(contentsOf: root)).config
        let pre = try CLIPPreprocessor.huggingFace(config)
        let ours = pre(try decoded(fixture.name))
        let data = try XCTUnwrap(Data(base64Encoded: fixture.base64))
        let expected: [Float] = data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        XCTAssertEqual(fixture.shape, [3, 64, 64])
        XCTAssertEqual(ours.count, expected.count)
        var worst: Float = 0
        for i in 0..<min(ours.count, expected.count) { worst = max(worst, abs(ours[i] - expected[i])) }
        XCTAssertLessThanOrEqual(worst, 1e-5, "largest difference from transformers' pixel_values")
    }

    func testConfigDecodingForms() throws {
        let old = #"{"size": 224, "crop_size": 224, "do_center_crop": true, "resample": 3}"#
        let c1 = try JSONDecoder().decode(CLIPImageProcessorConfig.self, from: Data(old.utf8))
        XCTAssertEqual(c1.size, .shortestEdge(224))
        XCTAssertEqual(c1.cropHeight, 224)
        let new = #"{"size": {"height": 336, "width": 300}, "crop_size": {"height": 336, "width": 336},"#
            + #" "resample": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "rescale_factor": 0.5}"#
        let c2 = try JSONDecoder().decode(CLIPImageProcessorConfig.self, from: Data(new.utf8))
        XCTAssertEqual(c2.size, .exact(height: 336, width: 300))
        XCTAssertEqual(c2.resample, .bilinear)
        XCTAssertEqual(c2.imageMean, [0.5, 0.5, 0.5])
        XCTAssertEqual(c2.rescaleFactor, 0.5)
        // Round trip through our encoder.
        let again = try JSONDecoder().decode(CLIPImageProcessorConfig.self, from: JSONEncoder().encode(c2))
        XCTAssertEqual(again, c2)
        XCTAssertThrowsError(try JSONDecoder().decode(CLIPImageProcessorConfig.self, from: Data(#"{"resample": 6}"#.utf8)))
        XCTAssertThrowsError(try JSONDecoder().decode(CLIPImageProcessorConfig.self, from: Data(#"{"image_mean": [0.5]}"#.utf8)))
        XCTAssertThrowsError(try CLIPPreprocessor.openCLIP(size: 0))
    }

    func testCenterCropOffsetsFollowEachReference() {
        // 225 wide after resize: transformers floors (224 + 1) // 2 = 0, torchvision rounds 0.5 to even = 0;
        // 227 wide: floor 1 vs round(1.5) = 2. Checked on a synthetic gradient with the column index in red.
        let w = 227, h = 8
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w { px[(y * w + x) * 3] = UInt8(x) } }
        let img = RGBImage(width: w, height: h, pixels: px)
        let hf = CLIPPreprocessor.crop(img, height: 8, width: 224, top: 0, left: (w - 224) / 2)
        XCTAssertEqual(hf[0, 0].0, 1)
        XCTAssertEqual(hf[223, 7].0, 224)
        // Padding: a crop larger than the image keeps the image at ceil((ch - h) / 2) like transformers.
        let padded = CLIPPreprocessor.crop(img, height: 11, width: 227, top: -2, left: 0)
        XCTAssertEqual(padded[5, 1].0, 0)
        XCTAssertEqual(padded[5, 2].0, 5)
        XCTAssertEqual(padded[5, 10].0, 0)
    }
}
