// `ex2 embed`'s library call against transformers (embeddings of the tiny CLIP model of
// scripts/fixtures/reward_fixtures.py, computed by scripts/fixtures/embed_fixtures.py) and the .npy writer
// against numpy.save's bytes; plus the cache round trip and a broken image that must name its file.
import CLIP
import Foundation
import XCTest
@testable import EX2

final class EmbedTests: XCTestCase {
    struct Expected: Decodable {
        var logit_scale: Double
        var dimension: Int
        var images: [String]
        var image_embeddings: [[Double]]
        var texts: [String]
        var text_embeddings: [[Double]]
        var npy_header_hex: String
        var small_npy_bits: [[UInt32]]
    }

    var fixtures: URL {
        get throws {
            try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil), "EX2Tests fixtures are missing")
        }
    }

    func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixtures.appendingPathComponent("embed_expected.json")))
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-embed-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func assertClose(_ got: [[Float]], _ want: [[Double]], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        for (i, (g, w)) in zip(got, want).enumerated() {
            XCTAssertEqual(g.count, w.count, "\(what) \(i)", file: file, line: line)
            var dot = 0.0, norm = 0.0, worst = 0.0
            for (a, b) in zip(g, w) { dot += Double(a) * b; norm += Double(a) * Double(a); worst = max(worst, abs(Double(a) - b)) }
            // Both sides are unit vectors: cosine is the dot product; the norm checks our normalisation.
            XCTAssertEqual(norm, 1, accuracy: 1e-5, "\(what) \(i) is not unit length", file: file, line: line)
            XCTAssertGreaterThanOrEqual(dot, 0.99999, "\(what) \(i): cosine to transformers", file: file, line: line)
            XCTAssertLessThanOrEqual(worst, 1e-4, "\(what) \(i): largest difference to transformers", file: file, line: line)
        }
    }

    func testEmbeddingsMatchTransformersAndTheCacheGivesThemBack() throws {
        let e = try expected()
        let root = try fixtures
        let cacheDir = try temporaryDirectory()
        let request = EmbedRequest(vlm: root.appendingPathComponent("clip_tiny").path,
                                   images: e.images.map { root.appendingPathComponent($0) }, texts: e.texts,
                                   cacheDirectory: cacheDir)
        var reports: [(Int, Int)] = []
        let first = try Embedder.run(request) { reports.append(($0, $1)) }
        XCTAssertEqual(first.dimension, e.dimension)
        XCTAssertEqual(Double(first.logitScale), e.logit_scale, accuracy: 1e-5 * e.logit_scale)
        XCTAssertEqual(first.images, request.images.map(\.path))
        XCTAssertEqual(first.texts, e.texts)
        assertClose(first.imageEmbeddings, e.image_embeddings, "image")
        assertClose(first.textEmbeddings, e.text_embeddings, "text")
        XCTAssertEqual(reports.first?.0, 0)
        XCTAssertEqual(reports.last?.0, e.images.count)

        // The second run reads every image from the cache: same numbers, and the cache really holds entries.
        let entries = FileManager.default.enumerator(atPath: cacheDir.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".emb") } ?? []
        XCTAssertEqual(entries.count, Set(e.images).count)
        let second = try Embedder.run(request)
        XCTAssertEqual(second, first)

        // Without a cache nothing is written and the numbers are the same.
        var uncached = request
        uncached.cacheDirectory = nil
        XCTAssertEqual(try Embedder.run(uncached).imageEmbeddings, first.imageEmbeddings)
    }

    func testBrokenImageNamesTheFile() throws {
        let root = try fixtures
        let dir = try temporaryDirectory()
        var png = try Data(contentsOf: root.appendingPathComponent("stamps/birds/owl.png"))
        png = png.prefix(png.count / 2)
        let broken = dir.appendingPathComponent("half-an-owl.png")
        try png.write(to: broken)
        let request = EmbedRequest(vlm: root.appendingPathComponent("clip_tiny").path,
                                   images: [root.appendingPathComponent("stamps/fruit/banana.png"), broken], cacheDirectory: nil)
        XCTAssertThrowsError(try Embedder.run(request)) { error in
            XCTAssertTrue("\(error)".contains("half-an-owl.png"), "\(error)")
        }
        let missing = EmbedRequest(vlm: root.appendingPathComponent("clip_tiny").path,
                                   images: [dir.appendingPathComponent("no-such-file.jpg")], cacheDirectory: nil)
        XCTAssertThrowsError(try Embedder.run(missing)) { error in
            XCTAssertTrue("\(error)".contains("no-such-file.jpg"), "\(error)")
        }
        XCTAssertThrowsError(try Embedder.run(EmbedRequest(vlm: root.appendingPathComponent("clip_tiny").path))) { error in
            XCTAssertEqual(error as? EmbedError, .nothingToEmbed)
        }
    }

    func testNPYWriterMatchesNumpySave() throws {
        let e = try expected()
        let small = e.small_npy_bits.map { $0.map(Float.init(bitPattern:)) }
        let want = try Data(contentsOf: fixtures.appendingPathComponent("small.npy"))
        XCTAssertEqual(NPY.float32Matrix(small, columns: 5), want)
    }

    func testOutputsCarryEveryRowAndTheScale() throws {
        let e = try expected()
        let out = EmbeddingOutput(model: "m", dimension: e.dimension, logitScale: Float(e.logit_scale), images: e.images,
                                  imageEmbeddings: e.image_embeddings.map { $0.map(Float.init) },
                                  texts: e.texts, textEmbeddings: e.text_embeddings.map { $0.map(Float.init) })
        // .npy: numpy's header for [images + texts, dim], then the rows, images first, as little-endian float32.
        let npy = [UInt8](out.npy())
        let header = stride(from: 0, to: e.npy_header_hex.count, by: 2).map { i -> UInt8 in
            let s = e.npy_header_hex.index(e.npy_header_hex.startIndex, offsetBy: i)
            return UInt8(e.npy_header_hex[s...e.npy_header_hex.index(after: s)], radix: 16)!
        }
        XCTAssertEqual(Array(npy.prefix(header.count)), header)
        let rows = out.imageEmbeddings + out.textEmbeddings
        XCTAssertEqual(npy.count, header.count + 4 * rows.count * e.dimension)
        for (r, row) in rows.enumerated() {
            for (c, v) in row.enumerated() {
                let o = header.count + 4 * (r * e.dimension + c)
                let bits = UInt32(npy[o]) | UInt32(npy[o + 1]) << 8 | UInt32(npy[o + 2]) << 16 | UInt32(npy[o + 3]) << 24
                XCTAssertEqual(bits, v.bitPattern)
            }
        }
        let sidecar = try XCTUnwrap(JSONSerialization.jsonObject(with: out.npySidecar()) as? [String: Any])
        XCTAssertEqual(sidecar["images"] as? [String], e.images)
        XCTAssertEqual(sidecar["texts"] as? [String], e.texts)
        XCTAssertEqual((sidecar["logit_scale"] as? Double).map(Float.init), Float(e.logit_scale))

        // JSON: every embedding read back as Double converts to the very same Float.
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: out.json()) as? [String: Any])
        XCTAssertEqual(json["dimension"] as? Int, e.dimension)
        XCTAssertEqual((json["logit_scale"] as? Double).map(Float.init), Float(e.logit_scale))
        let images = try XCTUnwrap(json["images"] as? [[String: Any]])
        let texts = try XCTUnwrap(json["texts"] as? [[String: Any]])
        XCTAssertEqual(images.map { $0["path"] as? String }, e.images)
        XCTAssertEqual(texts.map { $0["text"] as? String }, e.texts)
        for (item, want) in zip(images + texts, rows) {
            let got = try XCTUnwrap(item["embedding"] as? [Double])
            XCTAssertEqual(got.map(Float.init), want)
        }
    }
}
