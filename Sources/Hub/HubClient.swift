// Downloads from the Hugging Face hub (or any server that speaks its protocol, via HF_ENDPOINT) into the
// cache huggingface_hub uses, the way hf_hub_download does it:
//   1. GET /api/models/REPO/revision/REV: the commit the revision points at and the repository's files;
//   2. per file, HEAD /REPO/resolve/COMMIT/FILE without following absolute redirects: X-Repo-Commit, the
//      etag (X-Linked-Etag for LFS files, which is their sha256, else ETag), the size, and the Location of
//      the bytes (an LFS blob URL for large files);
//   3. GET the bytes into blobs/ETAG.incomplete, resuming with Range after a dropped connection or an
//      earlier interrupted run; an LFS blob is checked against its sha256 before it is renamed into place;
//   4. link snapshots/COMMIT/FILE to the blob and write refs/REV.
// HF_TOKEN (or the token file huggingface-cli login writes) is sent as a Bearer token; HF_HUB_OFFLINE=1
// makes no request at all. Progress goes to a callback, for the command line's progress bar.

import AsyncHTTPClient
import Crypto
import Foundation
import ModelFiles
import NIOCore
import NIOHTTP1

public struct HubError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One file's download progress.
public struct HubProgress: Sendable {
    public var repo: String
    public var file: String
    public var done: Int64
    public var total: Int64
    /// Bytes already on disk from an interrupted download (not counted in the rate).
    public var resumedFrom: Int64
    public var finished: Bool
}

public final class HubClient: HubFetching, @unchecked Sendable {  // immutable after init; HTTPClient is thread-safe
    public let endpoint: String
    public let cache: URL
    public let token: String?
    public let offline: Bool
    public let maxRetries: Int
    private let progress: (@Sendable (HubProgress) -> Void)?
    private let http: HTTPClient

    /// Settings from the environment as huggingface_hub reads them: HF_ENDPOINT, HF_HUB_CACHE / HF_HOME,
    /// HF_TOKEN (else HUGGING_FACE_HUB_TOKEN, else the token file in HF_HOME), HF_HUB_OFFLINE.
    public init(environment env: [String: String] = ProcessInfo.processInfo.environment, maxRetries: Int = 5,
                progress: (@Sendable (HubProgress) -> Void)? = nil) {
        var e = env["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co"
        while e.hasSuffix("/") { e.removeLast() }
        endpoint = e
        let locator = ModelLocator(environment: env)
        cache = locator.hubCache
        offline = locator.isOffline
        var t = env["HF_TOKEN"].flatMap { $0.isEmpty ? nil : $0 } ?? env["HUGGING_FACE_HUB_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if t == nil {
            let home = env["HF_HOME"].flatMap { $0.isEmpty ? nil : $0 }
                ?? ((env["HOME"] ?? NSHomeDirectory()) + "/.cache/huggingface")
            let path = env["HF_TOKEN_PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/token"
            t = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            if t?.isEmpty == true { t = nil }
        }
        token = t
        self.maxRetries = maxRetries
        self.progress = progress
        var config = HTTPClient.Configuration()
        config.redirectConfiguration = .disallow
        config.timeout = .init(connect: .seconds(10), read: .seconds(60))
        config.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    deinit { try? http.syncShutdown() }

    var layout: HubCacheLayout { HubCacheLayout(root: cache) }

    // MARK: HubFetching

    public func snapshot(repo: String, revision: String?, kind: HubModelKind) throws -> URL {
        guard HubCacheLayout.split(repo) != nil else { throw HubError("'\(repo)' is not a hub id ORG/NAME") }
        let rev = revision ?? "main"
        if offline {
            // Offline, a cache without refs (filled by hand, or by old tools) still serves its newest snapshot.
            let local = layout.snapshot(repo, revision: revision)
            if let local, HubFileSelection.isComplete(kind, local) { return local }
            let what = local.map { "the cached snapshot \($0.path) lacks files the model needs (\(missingDescription(kind, $0)))" }
                ?? "\(repo) (revision \(rev)) is not in the cache \(cache.path)"
            throw HubError("HF_HUB_OFFLINE is set, so nothing is downloaded, and \(what); unset HF_HUB_OFFLINE to download it, or fill the cache with `huggingface-cli download \(repo)\(revision.map { " --revision \($0)" } ?? "")`")
        }
        let info = try modelInfo(repo: repo, revision: rev)
        let choice = try HubFileSelection.choose(kind, from: info.files, repo: repo)
        for f in choice.files { try download(repo: repo, commit: info.commit, file: f) }
        try layout.writeRef(repo, revision: rev, commit: info.commit)
        let dir = layout.snapshotFolder(repo, commit: info.commit)
        if let index = choice.index {
            for shard in try HubFileSelection.shards(ofIndex: dir.appendingPathComponent(index)) {
                guard info.files.contains(shard) else {
                    throw HubError("\(repo): \(index) lists the shard \(shard), which the repository does not have")
                }
                try download(repo: repo, commit: info.commit, file: shard)
            }
        }
        return dir
    }

    private func missingDescription(_ kind: HubModelKind, _ dir: URL) -> String {
        switch kind {
        case .file(let f): return f
        case .openCLIPWeights(let p): return p.joined(separator: " or ")
        case .decoder: return "config.json and weights, or a .gguf file"
        case .openCLIPDirectory: return "open_clip_config.json and open_clip weights"
        case .vlm: return "config.json or open_clip_config.json, and weights"
        }
    }

    // MARK: protocol

    struct ModelInfo { var commit: String; var files: [String] }

    func modelInfo(repo: String, revision: String) throws -> ModelInfo {
        let url = "\(endpoint)/api/models/\(repo)/revision/\(quote(revision, safe: ""))"
        let r = try request(.GET, url, what: "the file list of \(repo) at \(revision)", collectBody: true)
        try check(r, repo: repo, file: nil, revision: revision)
        guard let obj = try? JSONSerialization.jsonObject(with: r.body) as? [String: Any],
              let sha = obj["sha"] as? String, HubCacheLayout.isCommit(sha),
              let siblings = obj["siblings"] as? [[String: Any]] else {
            throw HubError("\(url): the model info is not the JSON the hub sends (no sha or siblings)")
        }
        let files = siblings.compactMap { $0["rfilename"] as? String }
        return ModelInfo(commit: sha, files: files)
    }

    struct FileMetadata { var commit: String; var etag: String; var size: Int64?; var location: String }

    /// HEAD on resolve/COMMIT/FILE, following only relative redirects (a renamed repository), as huggingface_hub does.
    func metadata(repo: String, revision: String, file: String) throws -> FileMetadata {
        var url = "\(endpoint)/\(repo)/resolve/\(quote(revision, safe: ""))/\(quote(file, safe: "/"))"
        for _ in 0..<6 {
            let r = try request(.HEAD, url, what: "\(repo)/\(file)", collectBody: false)
            if (300..<400).contains(r.status), let loc = r.headers.first(name: "Location") {
                let next = Self.resolve(loc, against: url)
                // A redirect on the same host (a renamed repository, the hub's resolve cache) is followed for
                // its metadata; one to another host (the LFS storage) is where the bytes are.
                if Self.host(of: next) == Self.host(of: url) { url = next; continue }
                return try fileMetadata(r, repo: repo, file: file, location: next, redirected: true)
            }
            try check(r, repo: repo, file: file, revision: revision)
            return try fileMetadata(r, repo: repo, file: file, location: url, redirected: false)
        }
        throw HubError("\(url): too many redirects")
    }

    private func fileMetadata(_ r: Response, repo: String, file: String, location: String, redirected: Bool) throws -> FileMetadata {
        guard let commit = r.headers.first(name: "X-Repo-Commit"), HubCacheLayout.isCommit(commit) else {
            throw HubError("\(repo)/\(file): the server sent no X-Repo-Commit header, so this is not a Hugging Face hub (check HF_ENDPOINT=\(endpoint))")
        }
        guard let raw = r.headers.first(name: "X-Linked-Etag") ?? r.headers.first(name: "ETag") else {
            throw HubError("\(repo)/\(file): the server sent no ETag, so the file cannot be named in the cache")
        }
        var etag = raw.trimmingCharacters(in: .whitespaces)
        if etag.hasPrefix("W/") { etag.removeFirst(2) }
        etag = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard !etag.isEmpty, etag.utf8.count <= 128, !etag.hasPrefix("."), !etag.hasSuffix(".incomplete"),
              etag.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e }) else {
            throw HubError("\(repo)/\(file): the etag '\(raw)' cannot name a cache file")
        }
        // A redirect's own Content-Length is its (empty) body, not the file's.
        let size = (r.headers.first(name: "X-Linked-Size") ?? (redirected ? nil : r.headers.first(name: "Content-Length"))).flatMap { Int64($0) }
        return FileMetadata(commit: commit, etag: etag, size: size, location: location)
    }

    /// Brings snapshots/COMMIT/FILE into the cache unless it is there.
    func download(repo: String, commit: String, file: String) throws {
        guard HubCacheLayout.isSafeRelativePath(file) else {
            throw HubError("\(repo): refusing the file name '\(file)' (it leaves the snapshot directory)")
        }
        let layout = self.layout
        let dst = layout.snapshotFolder(repo, commit: commit).appendingPathComponent(file)
        if FileManager.default.fileExists(atPath: dst.path) { return }
        let meta = try metadata(repo: repo, revision: commit, file: file)
        let blob = layout.blob(repo, etag: meta.etag)
        let fm = FileManager.default
        try fm.createDirectory(at: blob.deletingLastPathComponent(), withIntermediateDirectories: true)
        let lockURL = layout.lock(repo, etag: meta.etag)
        try fm.createDirectory(at: lockURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        let lockFD = open(lockURL.path, O_CREAT | O_RDWR, 0o644)
        guard lockFD >= 0 else { throw HubError("\(lockURL.path): cannot create the lock file (\(String(cString: strerror(errno))))") }
        defer { close(lockFD) }
        // Another ex2 or huggingface_hub downloading the same blob finishes first.
        while flock(lockFD, LOCK_EX) != 0 {
            guard errno == EINTR else { throw HubError("\(lockURL.path): cannot lock (\(String(cString: strerror(errno))))") }
        }
        defer { flock(lockFD, LOCK_UN) }
        if !fm.fileExists(atPath: blob.path) {
            try fetchBlob(meta, repo: repo, file: file, to: blob)
        }
        try layout.link(repo, commit: meta.commit, path: file, etag: meta.etag)
        if meta.commit != commit { try layout.link(repo, commit: commit, path: file, etag: meta.etag) }
    }

    static func isSHA256(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    private func fetchBlob(_ meta: FileMetadata, repo: String, file: String, to blob: URL) throws {
        let part = layout.incomplete(repo, etag: meta.etag)
        let fm = FileManager.default
        if !fm.fileExists(atPath: part.path) { fm.createFile(atPath: part.path, contents: nil) }
        let lfs = Self.isSHA256(meta.etag)
        var attempt = 0
        var resumedAtStart: Int64 = -1
        while true {
            let have = Int64((try? fm.attributesOfItem(atPath: part.path)[.size] as? NSNumber)?.int64Value ?? 0)
            if resumedAtStart < 0 { resumedAtStart = have }
            do {
                try fetchRange(meta, repo: repo, file: file, into: part, from: have, resumedFrom: resumedAtStart)
                break
            } catch let e as TransferError {
                attempt += 1
                guard attempt <= maxRetries else {
                    throw HubError("\(repo)/\(file): the download failed \(attempt) times (\(e.message)); what arrived is kept in \(part.path) and the next run resumes from there")
                }
                Thread.sleep(forTimeInterval: min(8, 0.25 * Double(1 << min(attempt, 5))))
            }
        }
        let got = Int64((try? fm.attributesOfItem(atPath: part.path)[.size] as? NSNumber)?.int64Value ?? 0)
        if let size = meta.size, got != size {
            try? fm.removeItem(at: part)
            throw HubError("\(repo)/\(file): received \(got) bytes, the hub announced \(size); the partial file was removed, run again")
        }
        if lfs {
            let digest = try sha256(of: part)
            guard digest == meta.etag else {
                try? fm.removeItem(at: part)
                throw HubError("\(repo)/\(file): the downloaded file's sha256 is \(digest) but the hub says \(meta.etag): the bytes were corrupted on the way (or by a proxy); the file was deleted, run again")
            }
        }
        try fm.moveItem(at: part, to: blob)
    }

    struct TransferError: Error { let message: String }

    /// GETs the bytes from `offset` on, appending to `part`; a connection dropped half-way is a TransferError (retried).
    private func fetchRange(_ meta: FileMetadata, repo: String, file: String, into part: URL, from offset: Int64,
                            resumedFrom: Int64) throws {
        if let size = meta.size, offset >= size { return }
        var url = meta.location
        for _ in 0..<6 {
            var headers = baseHeaders(for: url)
            if offset > 0 { headers.add(name: "Range", value: "bytes=\(offset)-") }
            guard let handle = FileHandle(forUpdatingAtPath: part.path) else {
                throw HubError("\(part.path): cannot open the partial download for writing")
            }
            defer { try? handle.close() }
            let sink = FileSink(handle: handle, offset: offset, total: meta.size, repo: repo, file: file,
                                resumedFrom: resumedFrom, progress: progress)
            let req: HTTPClient.Request
            do { req = try HTTPClient.Request(url: url, method: .GET, headers: headers) } catch {
                throw HubError("\(url): not a URL ex2 can request (\(error))")
            }
            let outcome: FileSink.Outcome
            do {
                outcome = try http.execute(request: req, delegate: sink, deadline: nil).wait()
            } catch let e as HubError {
                throw e
            } catch {
                throw TransferError(message: describe(error))
            }
            if (300..<400).contains(outcome.status), let loc = outcome.location {
                url = Self.resolve(loc, against: url)
                continue
            }
            if outcome.status == 416 {
                // Nothing left to send from `offset` (a partial file that is already whole, or longer than
                // the file): start over; the size and sha256 checks decide what is kept.
                try? FileManager.default.removeItem(at: part)
                FileManager.default.createFile(atPath: part.path, contents: nil)
                throw TransferError(message: "the server had nothing from byte \(offset) on (HTTP 416); starting over")
            }
            if outcome.status == 206 && outcome.rangeStart != offset {
                try? FileManager.default.removeItem(at: part)
                FileManager.default.createFile(atPath: part.path, contents: nil)
                throw TransferError(message: "the server resumed at byte \(outcome.rangeStart.map(String.init) ?? "?"), not \(offset); starting over")
            }
            guard outcome.status == 200 || outcome.status == 206 else {
                if outcome.status >= 500 || outcome.status == 429 { throw TransferError(message: "HTTP \(outcome.status)") }
                throw HubError("\(url): HTTP \(outcome.status) while downloading \(repo)/\(file)")
            }
            if let size = meta.size, outcome.written + (outcome.status == 206 ? offset : 0) < size {
                throw TransferError(message: "the connection closed after \(outcome.written) bytes")
            }
            return
        }
        throw HubError("\(url): too many redirects")
    }

    /// `location` (absolute, host-relative or path-relative) as an absolute URL, relative to `base`.
    static func resolve(_ location: String, against base: String) -> String {
        URL(string: location, relativeTo: URL(string: base))?.absoluteString ?? location
    }

    /// scheme://host:port of a URL, for deciding where the token may go.
    static func host(of url: String) -> String {
        guard let u = URL(string: url), let host = u.host else { return "" }
        return "\(u.scheme ?? "")://\(host.lowercased()):\(u.port ?? (u.scheme == "https" ? 443 : 80))"
    }

    private func sha256(of url: URL) throws -> String {
        guard let h = FileHandle(forReadingAtPath: url.path) else { throw HubError("\(url.path): cannot read the download back") }
        defer { try? h.close() }
        var s = Crypto.SHA256()   // BoringSSL's: about 4x this machine's portable SHA-256 (SHA-NI)
        while let d = try h.read(upToCount: 1 << 22), !d.isEmpty { s.update(data: d) }
        return s.finalize().map { String(format: "%02x", $0) }.joined()
    }

    // MARK: HTTP

    struct Response { var status: Int; var headers: HTTPHeaders; var body: Data }

    /// The token goes to the hub's own host only, never to the storage hosts it redirects to (as
    /// huggingface_hub does; presigned storage URLs also refuse a request that carries one).
    private func baseHeaders(for url: String) -> HTTPHeaders {
        var h = HTTPHeaders()
        h.add(name: "User-Agent", value: "ex2/1 (huggingface_hub protocol)")
        h.add(name: "Accept-Encoding", value: "identity")
        if let token, Self.host(of: url) == Self.host(of: endpoint) { h.add(name: "Authorization", value: "Bearer \(token)") }
        return h
    }

    private func request(_ method: HTTPMethod, _ url: String, what: String, collectBody: Bool) throws -> Response {
        var attempt = 0
        while true {
            let req: HTTPClient.Request
            do { req = try HTTPClient.Request(url: url, method: method, headers: baseHeaders(for: url)) } catch {
                throw HubError("\(url): not a URL ex2 can request (\(error)); check HF_ENDPOINT")
            }
            do {
                let r = try http.execute(request: req, deadline: .now() + .seconds(120)).wait()
                if (r.status.code >= 500 || r.status.code == 429) && attempt < maxRetries {
                    attempt += 1
                    Thread.sleep(forTimeInterval: min(8, 0.25 * Double(1 << min(attempt, 5))))
                    continue
                }
                var body = Data()
                if collectBody, var b = r.body, let bytes = b.readBytes(length: b.readableBytes) { body = Data(bytes) }
                return Response(status: Int(r.status.code), headers: r.headers, body: body)
            } catch {
                attempt += 1
                // A host that does not resolve will not resolve in a few seconds either (and each lookup can
                // take its own timeout): say so at once rather than after minutes of retries.
                let unresolvable = "\(error)".contains("DNS error") || "\(error)".contains("UnknownHost")
                guard attempt <= maxRetries, !unresolvable else {
                    throw HubError("cannot reach \(endpoint) for \(what): \(describe(error)); check the network, or set HF_HUB_OFFLINE=1 to use only the cache (\(cache.path))")
                }
                Thread.sleep(forTimeInterval: min(8, 0.25 * Double(1 << min(attempt, 5))))
            }
        }
    }

    /// Turns the hub's error answers into what the user should do.
    private func check(_ r: Response, repo: String, file: String?, revision: String) throws {
        guard r.status >= 400 else { return }
        let code = r.headers.first(name: "X-Error-Code") ?? ""
        let serverMessage = r.headers.first(name: "X-Error-Message").map { " (the hub says: \($0))" } ?? ""
        let target = file.map { "\(repo)/\($0)" } ?? repo
        switch (code, r.status) {
        case ("GatedRepo", _):
            throw HubError("\(repo) is a gated repository: accept its conditions on the hub's page for \(repo), then set HF_TOKEN to an access token of that account\(token == nil ? "" : " (the token sent was not granted access)")\(serverMessage)")
        case ("RepoNotFound", _), (_, 401) where file == nil || code.isEmpty:
            throw HubError("\(repo) was not found on \(endpoint): check the spelling; if it is private or gated, set HF_TOKEN to an access token that can read it\(serverMessage)")
        case ("RevisionNotFound", _):
            throw HubError("\(repo) has no revision '\(revision)': pass an existing branch, tag or commit with --revision\(serverMessage)")
        case ("EntryNotFound", _), (_, 404):
            throw HubError("\(target) was not found at revision \(revision)\(serverMessage)")
        case (_, 403):
            throw HubError("\(target): access denied (HTTP 403); set HF_TOKEN to a token with read access\(serverMessage)")
        default:
            throw HubError("\(target): HTTP \(r.status) from \(endpoint)\(serverMessage)")
        }
    }

    private func describe(_ error: Error) -> String {
        if let e = error as? HTTPClientError {
            if e == .remoteConnectionClosed { return "the connection was closed" }
            if e == .readTimeout { return "timed out" }
            if e == .connectTimeout { return "connection timed out" }
        }
        return "\(error)"
    }

    /// Percent-encodes like Python's urllib.parse.quote (unreserved characters and `safe` are kept).
    func quote(_ s: String, safe: String) -> String {
        var allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
        allowed.insert(charactersIn: safe)
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}

/// Streams a response body into the partial file, with progress; a non-2xx answer writes nothing.
final class FileSink: HTTPClientResponseDelegate, @unchecked Sendable {  // touched only on its event loop
    struct Outcome: Sendable { var status: Int; var location: String?; var written: Int64; var rangeStart: Int64? }

    let handle: FileHandle
    let offset: Int64
    let total: Int64?
    let repo: String, file: String
    let resumedFrom: Int64
    let progress: (@Sendable (HubProgress) -> Void)?
    private var status = 0
    private var location: String?
    private var rangeStart: Int64?
    private var written: Int64 = 0
    private var writing = false
    private var lastReport = Date.distantPast
    private var failure: Error?

    init(handle: FileHandle, offset: Int64, total: Int64?, repo: String, file: String, resumedFrom: Int64,
         progress: (@Sendable (HubProgress) -> Void)?) {
        self.handle = handle; self.offset = offset; self.total = total; self.repo = repo; self.file = file
        self.resumedFrom = resumedFrom; self.progress = progress
    }

    func didReceiveHead(task: HTTPClient.Task<Outcome>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        status = Int(head.status.code)
        location = head.headers.first(name: "Location")
        if status == 206 {
            // The server resumed: the body continues the partial file where it ends (checked by the caller
            // against Content-Range: bytes START-END/TOTAL).
            if let cr = head.headers.first(name: "Content-Range"), let sp = cr.split(separator: " ").last,
               let start = sp.split(separator: "-").first { rangeStart = Int64(start) }
            guard rangeStart == offset else { return task.eventLoop.makeSucceededVoidFuture() }
            writing = true
            do { try handle.seek(toOffset: UInt64(offset)) } catch { failure = error }
        } else if status == 200 {
            // A full body (the server ignored Range, or there was nothing to resume): start the file over.
            writing = true
            do { try handle.truncate(atOffset: 0) } catch { failure = error }
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Outcome>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard writing, failure == nil else { return task.eventLoop.makeSucceededVoidFuture() }
        buffer.withUnsafeReadableBytes { raw in
            do { try handle.write(contentsOf: Data(raw)) } catch { failure = error }
        }
        if let failure {   // a full disk: stop the transfer now instead of receiving the rest for nothing
            return task.eventLoop.makeFailedFuture(HubError("\(repo)/\(file): cannot write the download to disk (\(failure)); check free space in the cache"))
        }
        written += Int64(buffer.readableBytes)
        let now = Date()
        if now.timeIntervalSince(lastReport) >= 0.1 {
            lastReport = now
            progress?(HubProgress(repo: repo, file: file, done: (status == 206 ? offset : 0) + written, total: total ?? -1,
                                  resumedFrom: resumedFrom, finished: false))
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Outcome>, _ error: Error) {}

    func didFinishRequest(task: HTTPClient.Task<Outcome>) throws -> Outcome {
        if let failure { throw HubError("\(repo)/\(file): cannot write the download to disk (\(failure)); check free space in the cache") }
        try? handle.synchronize()
        if writing {
            progress?(HubProgress(repo: repo, file: file, done: (status == 206 ? offset : 0) + written, total: total ?? -1,
                                  resumedFrom: resumedFrom, finished: true))
        }
        return Outcome(status: status, location: location, written: written, rangeStart: rangeStart)
    }
}
