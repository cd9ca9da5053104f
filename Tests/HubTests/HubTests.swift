// Hub downloads against a fake hub on loopback (scripts/test-support/fake_hub.py: model info, resolve
// with a redirect to an LFS blob on another port, etags, X-Repo-Commit, 401 for a gated repo, 404, a
// connection dropped half-way, a corrupted blob), checked with the real huggingface_hub 2.4.0
// (scripts/test-support/hub_interop.py, in .venv-test): it finds the snapshot ex2 wrote with
// local_files_only=True and scan_cache_dir sees no problem, and ex2 reads a cache huggingface_hub wrote.
import EX2TestSupport
import Foundation
import XCTest
@testable import Hub
@testable import Llama
@testable import ModelFiles

/// One fake hub process over a root of repositories, stopped at the end of the test.
final class FakeHub {
    let root: URL
    let log: URL
    let process = Process()
    let port: Int
    var endpoint: String { "http://127.0.0.1:\(port)" }

    init(root: URL, flags: [String] = []) throws {
        self.root = root
        log = root.deletingLastPathComponent().appendingPathComponent("hub-\(UUID().uuidString).log")
        let portFile = root.deletingLastPathComponent().appendingPathComponent("hub-\(UUID().uuidString).port")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", TestSupport.repositoryRoot.appendingPathComponent("scripts/test-support/fake_hub.py").path,
                             "--root", root.path, "--port-file", portFile.path, "--log", log.path] + flags
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard let p = TestSupport.waitForPort(file: portFile, process: process, timeout: 20) else {
            process.terminate()
            throw XCTSkip("SKIPPED: the fake hub (python3 scripts/test-support/fake_hub.py) did not start")
        }
        port = p
    }

    deinit { stop() }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }

    /// The request log: one object per request.
    func requests() -> [[String: Any]] {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}

final class HubTests: XCTestCase {
    let fm = FileManager.default
    var work: URL!
    var ex2: URL!

    static let fixtures = TestSupport.repositoryRoot.appendingPathComponent("Tests")
    static let hfTiny = fixtures.appendingPathComponent("CLIPTests/Fixtures/hf_tiny")
    static let openclipTiny = fixtures.appendingPathComponent("CLIPTests/Fixtures/openclip_tiny")
    static let openclipBare = fixtures.appendingPathComponent("CLIPTests/Fixtures/openclip_bare")
    static let image = fixtures.appendingPathComponent("CLIPTests/Fixtures/images/coffee_333x517_420.jpg")
    static let torchBin = fixtures.appendingPathComponent("ModelFilesTests/Fixtures/torch_bin")

    override func setUpWithError() throws {
        ex2 = try TestSupport.ex2Executable()
        work = fm.temporaryDirectory.appendingPathComponent("ex2-hub-\(UUID().uuidString)")
        try fm.createDirectory(at: work.appendingPathComponent("repos"), withIntermediateDirectories: true)
    }

    override func tearDown() { if let work { try? fm.removeItem(at: work) } }

    var repos: URL { work.appendingPathComponent("repos") }

    func addRepo(_ id: String, from source: URL, branch: String? = nil, hubJSON: String? = nil) throws {
        var dst = repos.appendingPathComponent(id)
        if let branch { dst = dst.appendingPathComponent("revisions/\(branch)") }
        try fm.createDirectory(at: dst.deletingLastPathComponent(), withIntermediateDirectories: true)
        try fm.copyItem(at: source, to: dst)
        if let hubJSON { try Data(hubJSON.utf8).write(to: repos.appendingPathComponent("\(id)/.hub.json")) }
    }

    func env(_ hub: FakeHub?, cache: URL, _ extra: [String: String] = [:]) -> [String: String] {
        var e = ["HF_HUB_CACHE": cache.path, "HF_HOME": work.appendingPathComponent("hf-home").path, "HF_TOKEN": "",
                 "HF_HUB_OFFLINE": "0", "EX2_CLIP_BPE": ""]
        if let hub { e["HF_ENDPOINT"] = hub.endpoint }
        return e.merging(extra) { $1 }
    }

    /// `ex2 embed` of the test image (and texts); the float32 rows as written to .npy, or the failure's output.
    func embed(_ vlm: String, _ env: [String: String], args: [String] = [], texts: [String] = []) throws -> (ok: Bool, npy: Data, output: String) {
        let out = work.appendingPathComponent("embed-\(UUID().uuidString).npy")
        var a = ["embed", "--vlm", vlm, "--no-cache", "--output", out.path] + args
        if texts.isEmpty { a += ["--image", Self.image.path] } else { a += ["--text"] + texts }
        let r = try TestSupport.run(ex2, a, env: env)
        return (r.status == 0, (try? Data(contentsOf: out)) ?? Data(), r.output)
    }

    func sha256(_ url: URL) throws -> String { SHA256.hex(try Data(contentsOf: url)) }

    func interop(_ args: [String], env: [String: String]) throws -> [String: Any] {
        let py = TestSupport.repositoryRoot.appendingPathComponent(".venv-test/bin/python")
        guard fm.isExecutableFile(atPath: py.path) else {
            throw XCTSkip("SKIPPED: \(py.path) is missing (scripts/setup.sh installs huggingface_hub there)")
        }
        let r = try TestSupport.run(py, [TestSupport.repositoryRoot.appendingPathComponent("scripts/test-support/hub_interop.py").path] + args,
                                    env: env, mergeStderr: false)
        XCTAssertEqual(r.status, 0, "hub_interop \(args.first ?? ""): \(r.output)")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any], r.output)
    }

    // MARK: tests

    func testDownloadResumesAfterADropWorksOfflineAndIsSharedWithHuggingFaceHub() throws {
        try addRepo("org/tiny-clip", from: Self.hfTiny)
        let hub = try FakeHub(root: repos, flags: ["--drop-once", "model.safetensors:100000"])
        let cache = work.appendingPathComponent("cache")
        let reference = try embed(Self.hfTiny.path, env(nil, cache: work.appendingPathComponent("unused")))
        XCTAssertTrue(reference.ok, reference.output)

        let first = try embed("org/tiny-clip", env(hub, cache: cache))
        XCTAssertTrue(first.ok, first.output)
        XCTAssertEqual(first.npy, reference.npy, "the downloaded model embeds as the local one")
        let log = hub.requests()
        XCTAssertTrue(log.contains { ($0["dropped"] as? Bool) == true }, "the fake hub dropped a connection: \(log)")
        XCTAssertTrue(log.contains { ($0["range"] as? String) == "bytes=100000-" && ($0["status"] as? Int) == 206 },
                      "the download resumed with Range after the drop: \(log)")
        XCTAssertTrue(first.output.contains("downloading org/tiny-clip/model.safetensors"), "a progress line per file: \(first.output)")

        // The layout is huggingface_hub's: refs/main, blobs by etag, relative snapshot links.
        let repoDir = cache.appendingPathComponent("models--org--tiny-clip")
        let commit = try String(contentsOf: repoDir.appendingPathComponent("refs/main"), encoding: .utf8)
        XCTAssertTrue(HubCacheLayout.isCommit(commit), commit)
        let link = try fm.destinationOfSymbolicLink(atPath: repoDir.appendingPathComponent("snapshots/\(commit)/model.safetensors").path)
        XCTAssertEqual(link, "../../blobs/" + (try sha256(Self.hfTiny.appendingPathComponent("model.safetensors"))))
        XCTAssertFalse(try fm.contentsOfDirectory(atPath: repoDir.appendingPathComponent("blobs").path).contains { $0.hasSuffix(".incomplete") })

        // Offline: the same result and not one request.
        let before = hub.requests().count
        let offline = try embed("org/tiny-clip", env(hub, cache: cache, ["HF_HUB_OFFLINE": "1"]))
        XCTAssertTrue(offline.ok, offline.output)
        XCTAssertEqual(offline.npy, reference.npy)
        XCTAssertEqual(hub.requests().count, before, "HF_HUB_OFFLINE=1 makes no request")
        // Online with a complete snapshot: no download either (a cache hit needs no network).
        XCTAssertTrue(try embed("org/tiny-clip", env(hub, cache: cache)).ok)
        XCTAssertEqual(hub.requests().count, before)

        // huggingface_hub finds every file ex2 wrote, offline, and its cache scan has no warnings.
        let files = ["config.json", "model.safetensors", "preprocessor_config.json"]
        let found = try interop(["check", "org/tiny-clip", "--cache", cache.path, "--files"] + files, env: env(hub, cache: cache))
        let got = try XCTUnwrap(found["files"] as? [String: [String: Any]])
        for f in files { XCTAssertEqual(got[f]?["sha256"] as? String, try sha256(Self.hfTiny.appendingPathComponent(f)), f) }
        let scan = try interop(["scan", "--cache", cache.path, "--strict"], env: env(hub, cache: cache))
        XCTAssertEqual((scan["warnings"] as? [Any])?.count, 0, "\(scan)")

        // And ex2 reads a cache huggingface_hub filled.
        let theirs = work.appendingPathComponent("cache-hf")
        _ = try interop(["download", "org/tiny-clip", "--cache", theirs.path], env: env(hub, cache: theirs))
        let fromTheirs = try embed("org/tiny-clip", env(hub, cache: theirs, ["HF_HUB_OFFLINE": "1"]))
        XCTAssertTrue(fromTheirs.ok, fromTheirs.output)
        XCTAssertEqual(fromTheirs.npy, reference.npy)
    }

    func testInterruptedDownloadResumesInTheNextRun() throws {
        try addRepo("org/tiny-clip", from: Self.hfTiny)
        let hub = try FakeHub(root: repos)
        let cache = work.appendingPathComponent("cache")
        let weights = try Data(contentsOf: Self.hfTiny.appendingPathComponent("model.safetensors"))
        let etag = try sha256(Self.hfTiny.appendingPathComponent("model.safetensors"))
        // What an earlier run killed half-way leaves behind.
        let part = HubCacheLayout(root: cache).incomplete("org/tiny-clip", etag: etag)
        try fm.createDirectory(at: part.deletingLastPathComponent(), withIntermediateDirectories: true)
        try weights.prefix(123_456).write(to: part)
        let r = try embed("org/tiny-clip", env(hub, cache: cache))
        XCTAssertTrue(r.ok, r.output)
        XCTAssertTrue(hub.requests().contains { ($0["range"] as? String) == "bytes=123456-" }, "\(hub.requests())")
        XCTAssertEqual(try Data(contentsOf: HubCacheLayout(root: cache).blob("org/tiny-clip", etag: etag)), weights)
        XCTAssertFalse(fm.fileExists(atPath: part.path))
    }

    func testCorruptedBlobIsDeletedAndReported() throws {
        try addRepo("org/tiny-clip", from: Self.hfTiny)
        let hub = try FakeHub(root: repos, flags: ["--corrupt", "model.safetensors"])
        let cache = work.appendingPathComponent("cache")
        let r = try embed("org/tiny-clip", env(hub, cache: cache))
        XCTAssertFalse(r.ok)
        XCTAssertTrue(r.output.contains("sha256") && r.output.contains("model.safetensors") && r.output.contains("deleted"), r.output)
        let blobs = (try? fm.contentsOfDirectory(atPath: cache.appendingPathComponent("models--org--tiny-clip/blobs").path)) ?? []
        let etag = try sha256(Self.hfTiny.appendingPathComponent("model.safetensors"))
        XCTAssertFalse(blobs.contains { $0.hasPrefix(etag) }, "no corrupted blob or partial file is kept: \(blobs)")
    }

    func testGatedMissingAndOfflineErrorsSayWhatToDo() throws {
        try addRepo("org/gated-clip", from: Self.hfTiny, hubJSON: #"{"gated": "manual"}"#)
        let hub = try FakeHub(root: repos, flags: ["--token", "hf_secret"])
        let cache = work.appendingPathComponent("cache")
        let denied = try embed("org/gated-clip", env(hub, cache: cache))
        XCTAssertFalse(denied.ok)
        XCTAssertTrue(denied.output.contains("gated") && denied.output.contains("HF_TOKEN"), denied.output)
        let allowed = try embed("org/gated-clip", env(hub, cache: cache, ["HF_TOKEN": "hf_secret"]))
        XCTAssertTrue(allowed.ok, allowed.output)
        XCTAssertTrue(hub.requests().contains { ($0["auth"] as? Bool) == true && ($0["status"] as? Int) == 200 })
        let cdn = hub.requests().filter { ($0["server"] as? String) == "cdn" }
        XCTAssertFalse(cdn.isEmpty)
        XCTAssertFalse(cdn.contains { ($0["auth"] as? Bool) == true }, "the token never goes to the storage host: \(cdn)")

        let missing = try embed("org/no-such-model", env(hub, cache: cache))
        XCTAssertFalse(missing.ok)
        XCTAssertTrue(missing.output.contains("org/no-such-model") && missing.output.contains("not found"), missing.output)

        let offline = try embed("org/other", env(hub, cache: cache, ["HF_HUB_OFFLINE": "1"]))
        XCTAssertFalse(offline.ok)
        XCTAssertTrue(offline.output.contains("HF_HUB_OFFLINE") && offline.output.contains("org/other"), offline.output)
    }

    func testRevisionPinsABranchOrACommit() throws {
        try addRepo("org/tiny-clip", from: Self.hfTiny)
        try addRepo("org/tiny-clip", from: Self.openclipTiny, branch: "dev")
        let hub = try FakeHub(root: repos)
        let cache = work.appendingPathComponent("cache")
        let main = try embed(Self.hfTiny.path, env(nil, cache: cache))
        let dev = try embed(Self.openclipTiny.path, env(nil, cache: cache))
        XCTAssertNotEqual(main.npy, dev.npy)
        let gotDev = try embed("org/tiny-clip", env(hub, cache: cache), args: ["--revision", "dev"])
        XCTAssertTrue(gotDev.ok, gotDev.output)
        XCTAssertEqual(gotDev.npy, dev.npy, "--revision dev gives the dev branch's model")
        let gotMain = try embed("org/tiny-clip", env(hub, cache: cache))
        XCTAssertEqual(gotMain.npy, main.npy)
        let repoDir = cache.appendingPathComponent("models--org--tiny-clip")
        let devCommit = try String(contentsOf: repoDir.appendingPathComponent("refs/dev"), encoding: .utf8)
        XCTAssertNotEqual(devCommit, try String(contentsOf: repoDir.appendingPathComponent("refs/main"), encoding: .utf8))
        let byCommit = try embed("org/tiny-clip", env(hub, cache: cache, ["HF_HUB_OFFLINE": "1"]), args: ["--revision", devCommit])
        XCTAssertEqual(byCommit.npy, dev.npy, byCommit.output)
    }

    func testOpenCLIPHubRepoAndPretrainedTag() throws {
        try addRepo("org/bare-openclip", from: Self.openclipBare)
        // Like laion's repositories, it also holds a transformers copy; r-open-clip:hf-hub: must use open_clip's files.
        for f in ["config.json", "model.safetensors", "preprocessor_config.json"] {
            try fm.copyItem(at: Self.hfTiny.appendingPathComponent(f), to: repos.appendingPathComponent("org/bare-openclip/\(f)"))
        }
        // A repository under the name open_clip's table gives ViT-B-32:laion2b_s34b_b79k, holding both weight
        // formats (tiny ones, so the load fails on shapes after the download).
        let tagRepo = repos.appendingPathComponent("laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
        try fm.createDirectory(at: tagRepo, withIntermediateDirectories: true)
        try fm.copyItem(at: Self.openclipTiny.appendingPathComponent("open_clip_model.safetensors"), to: tagRepo.appendingPathComponent("open_clip_model.safetensors"))
        try fm.copyItem(at: Self.openclipBare.appendingPathComponent("open_clip_pytorch_model.bin"), to: tagRepo.appendingPathComponent("open_clip_pytorch_model.bin"))
        let hub = try FakeHub(root: repos)
        let cache = work.appendingPathComponent("cache")

        let texts = ["a photo of a cat", "fish &amp; chips"]
        let local = try embed(Self.openclipBare.path, env(nil, cache: cache), texts: texts)
        XCTAssertTrue(local.ok, local.output)
        let viaHub = try embed("r-open-clip:hf-hub:org/bare-openclip", env(hub, cache: cache), texts: texts)
        XCTAssertTrue(viaHub.ok, viaHub.output)
        XCTAssertEqual(viaHub.npy, local.npy)
        // The plain hub id, into a fresh cache, is what transformers would load: the HF CLIP copy (images only:
        // hf_tiny has no tokenizer). (A cache already holding the complete OpenCLIP files serves it as is.)
        let plainID = try embed("org/bare-openclip", env(hub, cache: work.appendingPathComponent("cache-plain")))
        XCTAssertEqual(plainID.npy, try embed(Self.hfTiny.path, env(nil, cache: cache)).npy, plainID.output)

        let tag = try embed("r-open-clip:ViT-B-32:laion2b_s34b_b79k", env(hub, cache: cache), texts: texts)
        XCTAssertFalse(tag.ok, "tiny weights under a ViT-B-32 name must not load")
        XCTAssertTrue(tag.output.contains("shape"), tag.output)
        let snapshots = cache.appendingPathComponent("models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K/snapshots")
        let commit = try XCTUnwrap(try fm.contentsOfDirectory(atPath: snapshots.path).first)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: snapshots.appendingPathComponent(commit).path), ["open_clip_model.safetensors"],
                       "the tag's safetensors file is fetched, as open_clip prefers it, and nothing else")
    }

    func testShardedPolicyDownloadsEveryShardAndMatchesTransformers() throws {
        try addRepo("org/tiny-llama-bin", from: Self.torchBin.appendingPathComponent("tiny_llama_bin"))
        let hub = try FakeHub(root: repos)
        let cache = work.appendingPathComponent("cache")
        let e = env(hub, cache: cache)
        let locator = ModelLocator(environment: e, hub: HubClient(environment: e))
        guard case .hfDirectory(let dir) = try locator.resolve("org/tiny-llama-bin") else { return XCTFail("not an HF directory") }
        for shard in ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json", "config.json"] {
            XCTAssertTrue(fm.fileExists(atPath: dir.appendingPathComponent(shard).path), shard)
        }
        // A run interrupted between shards leaves the index without its second shard: the next run fetches it.
        let second = dir.appendingPathComponent("pytorch_model-00002-of-00002.bin")
        try fm.removeItem(at: second.resolvingSymlinksInPath())
        try fm.removeItem(at: second)
        let before = hub.requests().count
        guard case .hfDirectory(let again) = try locator.resolve("org/tiny-llama-bin") else { return XCTFail("not an HF directory") }
        XCTAssertEqual(again, dir)
        XCTAssertTrue(fm.fileExists(atPath: second.path))
        XCTAssertGreaterThan(hub.requests().count, before)
        let model = try DecoderModel.load(hfDirectory: dir)
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.torchBin.appendingPathComponent("tiny_llama_bin.json"))) as! [String: Any]
        let tokens = try XCTUnwrap(expected["tokens"] as? [Int])
        let want = (expected["logits"] as! [[NSNumber]]).flatMap { $0.map(\.floatValue) }
        let got = model.forward([SequenceChunk(slot: 0, tokens: tokens, startPosition: 0)], cache: model.makeCache(slots: 1, capacity: 16), logits: .all)
        XCTAssertLessThan(zip(got, want).map { abs($0 - $1) }.max() ?? .infinity, 1e-4)
    }
}
