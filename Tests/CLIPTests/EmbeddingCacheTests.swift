// The on-disk image embedding cache: hits return what was stored, damaged entries are ignored and
// rewritten, writes leave no temporary files, and the key follows file content, not file names.
@testable import CLIP
import Foundation
import ModelFiles
import XCTest

final class EmbeddingCacheTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("clip-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func testSHA256KnownAnswers() {
        // FIPS 180-4 example vectors.
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("".utf8)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testStoreLookupAndCorruption() throws {
        let cache = ImageEmbeddingCache(directory: tmp, modelIdentity: "m", preprocessing: "p")
        let key = ImageEmbeddingCache.contentKey(Data("image bytes".utf8))
        XCTAssertNil(cache.lookup(key))
        let v: [Float] = [0.25, -1, 3.5, .pi]
        try cache.store(key, v)
        XCTAssertEqual(cache.lookup(key), v)
        XCTAssertNil(ImageEmbeddingCache(directory: tmp, modelIdentity: "other", preprocessing: "p").lookup(key),
                     "another model does not see this model's entries")

        let files = try FileManager.default.subpathsOfDirectory(atPath: tmp.path)
        XCTAssertFalse(files.contains { $0.hasSuffix(".tmp") }, "no temporary files left: \(files)")
        let entry = tmp.appendingPathComponent(try XCTUnwrap(files.first { $0.hasSuffix(".emb") }))
        var bytes = try Data(contentsOf: entry)
        bytes[bytes.count - 40] ^= 0x01   // flip a bit inside the floats
        try bytes.write(to: entry)
        XCTAssertNil(cache.lookup(key), "a damaged entry is ignored")
        try bytes.prefix(10).write(to: entry)
        XCTAssertNil(cache.lookup(key), "a truncated entry is ignored")
        try cache.store(key, v)
        XCTAssertEqual(cache.lookup(key), v, "rewritten after damage")
    }

    func testModelUsesCacheForFiles() throws {
        let model = try CLIPModel.load(spec: try Fixtures.url("openclip_tiny").path)
        let cache = model.embeddingCache(directory: tmp)
        let src = try Fixtures.url("images/chelsea_225x150_444_progressive.jpg")
        let copy = tmp.appendingPathComponent("renamed.jpg")
        try FileManager.default.copyItem(at: src, to: copy)
        let fresh = try model.embedImageFiles([src])[0]
        let first = try model.embedImageFiles([src, copy], cache: cache)
        // Batches of different sizes may round differently inside BLAS: compare with a tolerance.
        for (a, b) in zip(first[0], fresh) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertEqual(first[1], first[0], "same bytes under another name: same embedding")
        let key = ImageEmbeddingCache.contentKey(try Data(contentsOf: src))
        XCTAssertEqual(cache.lookup(key), first[0], "the cache holds what was returned")
        // A planted entry is served from the cache (proves the second call reads it instead of recomputing).
        let planted = [Float](repeating: 0.5, count: model.embedDim)
        try cache.store(key, planted)
        XCTAssertEqual(try model.embedImageFiles([copy], cache: cache)[0], planted)
    }
}
