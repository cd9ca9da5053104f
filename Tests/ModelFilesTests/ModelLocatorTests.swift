// Model resolution over temporary directories laid out like checkouts and a Hugging Face hub cache.

import Foundation
import XCTest
@testable import ModelFiles

final class ModelLocatorTests: XCTestCase {
    private var root: URL!
    private let fm = FileManager.default

    override func setUpWithError() throws {
        root = fm.temporaryDirectory.appendingPathComponent("mf-loc-\(UUID().uuidString)").standardizedFileURL
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? fm.removeItem(at: root) }

    private func touch(_ rel: String, _ text: String = "x") throws -> URL {
        let u = root.appendingPathComponent(rel)
        try fm.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: u)
        return u
    }

    func testPathsAndDirectories() throws {
        let loc = ModelLocator(environment: ["HOME": root.path])
        let g = try touch("m/a.gguf")
        XCTAssertEqual(try loc.resolve(g.path), .gguf(g))
        XCTAssertEqual(try loc.resolve(root.appendingPathComponent("m").path), .gguf(g), "a directory with exactly one .gguf")
        _ = try touch("hf/config.json", "{}")
        XCTAssertEqual(try loc.resolve(root.appendingPathComponent("hf").path), .hfDirectory(root.appendingPathComponent("hf")))
        _ = try touch("m/b.gguf")
        XCTAssertThrowsError(try loc.resolve(root.appendingPathComponent("m").path)) { XCTAssertTrue("\($0)".contains("several .gguf"), "\($0)") }
        let txt = try touch("notes.txt")
        XCTAssertThrowsError(try loc.resolve(txt.path)) { XCTAssertTrue("\($0)".contains("not a .gguf"), "\($0)") }
        try fm.createDirectory(at: root.appendingPathComponent("empty"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try loc.resolve(root.appendingPathComponent("empty").path))
        XCTAssertEqual(try ModelLocator(environment: ["HOME": root.path]).resolve("~/m/a.gguf"), .gguf(g))
    }

    private func makeHubRepo(cache: URL, revs: [String], main: String?) throws -> URL {
        let repo = cache.appendingPathComponent("models--Org--Model")
        for (i, r) in revs.enumerated() {
            let snap = repo.appendingPathComponent("snapshots/\(r)")
            try fm.createDirectory(at: snap, withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: snap.appendingPathComponent("config.json"))
            try fm.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_000_000 + Double(i) * 1000)], ofItemAtPath: snap.path)
        }
        if let main {
            try fm.createDirectory(at: repo.appendingPathComponent("refs"), withIntermediateDirectories: true)
            try Data((main + "\n").utf8).write(to: repo.appendingPathComponent("refs/main"))
        }
        return repo
    }

    func testHubCacheOrderAndRevisions() throws {
        // HF_HUB_CACHE wins over HF_HOME, which wins over ~/.cache/huggingface/hub.
        let explicit = root.appendingPathComponent("explicit")
        let hfHome = root.appendingPathComponent("hfhome")
        let homeCache = root.appendingPathComponent("home/.cache/huggingface/hub")
        let r1 = try makeHubRepo(cache: explicit, revs: ["aaa", "bbb"], main: "aaa")
        let r2 = try makeHubRepo(cache: hfHome.appendingPathComponent("hub"), revs: ["ccc", "ddd"], main: nil)
        let r3 = try makeHubRepo(cache: homeCache, revs: ["eee"], main: "missing-rev")
        let home = root.appendingPathComponent("home").path
        XCTAssertEqual(try ModelLocator(environment: ["HF_HUB_CACHE": explicit.path, "HF_HOME": hfHome.path, "HOME": home]).resolve("Org/Model"),
                       .hfDirectory(r1.appendingPathComponent("snapshots/aaa")), "refs/main names the revision")
        XCTAssertEqual(try ModelLocator(environment: ["HF_HOME": hfHome.path, "HOME": home]).resolve("Org/Model"),
                       .hfDirectory(r2.appendingPathComponent("snapshots/ddd")), "newest snapshot without refs/main")
        XCTAssertEqual(try ModelLocator(environment: ["HOME": home]).resolve("Org/Model"),
                       .hfDirectory(r3.appendingPathComponent("snapshots/eee")), "refs/main naming a missing snapshot falls back")
    }

    func testGGUFFileInHubRepo() throws {
        let cache = root.appendingPathComponent("c")
        let repo = cache.appendingPathComponent("models--Org--Model-GGUF/snapshots/r1")
        try fm.createDirectory(at: repo, withIntermediateDirectories: true)
        try Data().write(to: repo.appendingPathComponent("x.Q4_K_M.gguf"))
        try Data().write(to: repo.appendingPathComponent("x.Q8_0.gguf"))
        let loc = ModelLocator(environment: ["HF_HUB_CACHE": cache.path])
        XCTAssertEqual(try loc.resolve("Org/Model-GGUF/x.Q8_0.gguf"), .gguf(repo.appendingPathComponent("x.Q8_0.gguf")))
        XCTAssertThrowsError(try loc.resolve("Org/Model-GGUF")) { XCTAssertTrue("\($0)".contains("several .gguf"), "\($0)") }
    }

    func testMissingModelListsEveryPlace() throws {
        let cache = root.appendingPathComponent("nocache")
        let loc = ModelLocator(environment: ["HF_HUB_CACHE": cache.path])
        XCTAssertThrowsError(try loc.resolve("Nobody/Nothing")) { e in
            guard case let .modelNotFound(spec, searched, hint)? = e as? ModelFileError else { return XCTFail("\(e)") }
            XCTAssertEqual(spec, "Nobody/Nothing")
            XCTAssertTrue(searched.contains { $0.contains("Nobody/Nothing (as a path)") }, "\(searched)")
            XCTAssertTrue(searched.contains { $0.contains(cache.path + "/models--Nobody--Nothing/snapshots") }, "\(searched)")
            XCTAssertTrue(hint.contains("huggingface-cli download Nobody/Nothing"), hint)
            XCTAssertTrue("\(e)".contains("scripts/setup.sh"))
        }
        XCTAssertThrowsError(try loc.resolve("/definitely/not/here.gguf")) { XCTAssertTrue("\($0)".contains("/definitely/not/here.gguf")) }
    }
}
