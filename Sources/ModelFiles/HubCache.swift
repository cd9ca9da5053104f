// The Hugging Face hub cache as huggingface_hub lays it out, so that Python and ex2 share one cache:
//   HUB_CACHE/models--ORG--NAME/blobs/ETAG                 file contents, named by their etag
//   HUB_CACHE/models--ORG--NAME/snapshots/COMMIT/PATH      relative symlinks into blobs/
//   HUB_CACHE/models--ORG--NAME/refs/REVISION              the commit a branch or tag pointed at
// plus which files of a repository a model needs (config, weights in the preferred format and all
// their shards, tokenizer and preprocessor files), and the hook through which a locator asks for a
// download when the cache does not hold them.

import Foundation

/// What a model spec needs from a hub repository.
public enum HubModelKind: Sendable, Equatable {
    /// A language model: config.json, weights, tokenizer files; or the one GGUF file of a GGUF repository.
    case decoder
    /// One named file (ORG/NAME/FILE.gguf, an OpenCLIP tag's weights).
    case file(String)
    /// A vision-language model: an HF CLIP-style directory (config.json, preprocessor) or an OpenCLIP one
    /// (open_clip_config.json), whichever the repository is.
    case vlm
    /// An OpenCLIP weights file, by its preferred and fallback names.
    case openCLIPWeights(preferred: [String])
    /// An OpenCLIP repository (r-open-clip:hf-hub:): open_clip_config.json and open_clip's weights, even
    /// where the repository also holds a transformers copy (config.json, model.safetensors).
    case openCLIPDirectory
}

/// Downloads what the cache lacks. ModelFiles does no networking: the `Hub` target implements this.
public protocol HubFetching: Sendable {
    /// Makes the snapshot of `repo` at `revision` (nil: main) hold the files `kind` needs and returns its directory.
    func snapshot(repo: String, revision: String?, kind: HubModelKind) throws -> URL
}

public struct HubCacheLayout: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    public static func isCommit(_ s: String) -> Bool {
        s.utf8.count == 40 && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// ORG/NAME split and checked (no empty parts, no path tricks).
    public static func split(_ repo: String) -> (String, String)? {
        let parts = repo.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, parts.allSatisfy({ p in
            !p.isEmpty && p != "." && p != ".." && !p.contains(" ") && !p.contains("\\") && !p.hasPrefix("-")
        }) else { return nil }
        return (parts[0], parts[1])
    }

    public func repoFolder(_ repo: String) -> URL {
        root.appendingPathComponent("models--" + repo.replacingOccurrences(of: "/", with: "--"))
    }
    public func blob(_ repo: String, etag: String) -> URL { repoFolder(repo).appendingPathComponent("blobs/\(etag)") }
    public func incomplete(_ repo: String, etag: String) -> URL { repoFolder(repo).appendingPathComponent("blobs/\(etag).incomplete") }
    public func lock(_ repo: String, etag: String) -> URL {
        root.appendingPathComponent(".locks/models--" + repo.replacingOccurrences(of: "/", with: "--") + "/\(etag).lock")
    }
    public func snapshotFolder(_ repo: String, commit: String) -> URL {
        repoFolder(repo).appendingPathComponent("snapshots/\(commit)")
    }

    /// The commit `revision` names in the cache: itself when it is a commit hash with a snapshot, else refs/REVISION.
    public func commit(_ repo: String, revision: String) -> String? {
        guard !revision.isEmpty, !revision.split(separator: "/").contains(".."), !revision.hasPrefix("/") else { return nil }
        let ref = repoFolder(repo).appendingPathComponent("refs/\(revision)")
        if let s = try? String(contentsOf: ref, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           !s.isEmpty, !s.contains("/"), s != "..", s != "." { return s }
        if !revision.contains("/"), FileManager.default.fileExists(atPath: snapshotFolder(repo, commit: revision).path) { return revision }
        return nil
    }

    /// The snapshot `revision` (nil: main) names through refs/ or as a commit, if the cache has it.
    public func pinnedSnapshot(_ repo: String, revision: String?) -> URL? {
        guard let c = commit(repo, revision: revision ?? "main") else { return nil }
        let s = snapshotFolder(repo, commit: c)
        return FileManager.default.fileExists(atPath: s.path) ? s : nil
    }

    /// The pinned snapshot; with no revision and no refs/main, the newest snapshot (caches filled by hand
    /// or by old tools). Only for when nothing can be downloaded: online, a missing ref is looked up.
    public func snapshot(_ repo: String, revision: String?) -> URL? {
        if let s = pinnedSnapshot(repo, revision: revision) { return s }
        guard revision == nil else { return nil }
        let snapshots = repoFolder(repo).appendingPathComponent("snapshots")
        let entries = (try? FileManager.default.contentsOfDirectory(at: snapshots, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        return entries.max { a, b in
            let da = (try? a.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
            let db = (try? b.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
            return (da, a.lastPathComponent) < (db, b.lastPathComponent)
        }
    }

    /// Records that `revision` points at `commit` (huggingface_hub writes no ref for a commit revision).
    /// A repository-relative path (a file name, a revision) that stays where it is put: no empty, "." or ".."
    /// components, no leading "/", no backslashes or control characters.
    public static func isSafeRelativePath(_ p: String) -> Bool {
        !p.isEmpty && !p.hasPrefix("/") && !p.unicodeScalars.contains { $0.value < 0x20 || $0 == "\\" }
            && p.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    public func writeRef(_ repo: String, revision: String, commit: String) throws {
        guard revision != commit else { return }
        guard Self.isSafeRelativePath(revision), Self.isSafeRelativePath(commit), !commit.contains("/") else {
            throw ModelFileError.malformed(file: repoFolder(repo).path, detail: "refusing the revision '\(revision)' -> '\(commit)': not a plain name")
        }
        let ref = repoFolder(repo).appendingPathComponent("refs/\(revision)")
        try FileManager.default.createDirectory(at: ref.deletingLastPathComponent(), withIntermediateDirectories: true)
        if (try? String(contentsOf: ref, encoding: .utf8)) == commit { return }
        try Data(commit.utf8).write(to: ref, options: .atomic)
    }

    /// snapshots/COMMIT/PATH -> ../../blobs/ETAG (relative, as huggingface_hub makes it).
    public func link(_ repo: String, commit: String, path: String, etag: String) throws {
        guard Self.isSafeRelativePath(path) else {
            throw ModelFileError.malformed(file: repoFolder(repo).path, detail: "refusing the file name '\(path)': it would leave the snapshot directory")
        }
        let fm = FileManager.default
        let dst = snapshotFolder(repo, commit: commit).appendingPathComponent(path)
        try fm.createDirectory(at: dst.deletingLastPathComponent(), withIntermediateDirectories: true)
        let depth = path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: 2 + depth) + "blobs/\(etag)"
        if let existing = try? fm.destinationOfSymbolicLink(atPath: dst.path), existing == target { return }
        try? fm.removeItem(at: dst)
        try fm.createSymbolicLink(atPath: dst.path, withDestinationPath: target)
    }
}

/// Which files of a repository a model needs, chosen from the repository's file list the way transformers
/// and open_clip choose: safetensors when there is any, else PyTorch .bin; an index brings its shards.
public enum HubFileSelection {
    static let support = [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json",
        "preprocessor_config.json", "open_clip_config.json", "vocab.txt", "spiece.model",
    ]

    /// OpenCLIP's weight files, in the order open_clip prefers them.
    public static let openCLIPWeightFiles = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]

    public struct Choice: Sendable, Equatable {
        /// Files to fetch now.
        public var files: [String]
        /// An index whose shards must be fetched once it is here.
        public var index: String?
    }

    public static func choose(_ kind: HubModelKind, from listing: [String], repo: String) throws -> Choice {
        let have = Set(listing)
        func weights(_ names: [(file: String, index: String?)]) -> Choice? {
            for n in names {
                if let i = n.index, have.contains(i) { return Choice(files: [i], index: i) }
                if have.contains(n.file) { return Choice(files: [n.file], index: nil) }
            }
            return nil
        }
        let hfWeights: [(file: String, index: String?)] = [("model.safetensors", "model.safetensors.index.json"),
                                                           ("pytorch_model.bin", "pytorch_model.bin.index.json")]
        let openCLIP: [(file: String, index: String?)] = openCLIPWeightFiles.map { ($0, nil) }
        switch kind {
        case .file(let f):
            guard have.contains(f) else {
                throw ModelFileError.modelNotFound(spec: "\(repo)/\(f)", searched: ["the file list of \(repo) on the hub"], hint: "\(repo) has no file \(f); its files: \(listing.sorted().prefix(30).joined(separator: ", "))")
            }
            return Choice(files: [f], index: nil)
        case .openCLIPWeights(let preferred):
            for p in preferred where have.contains(p) { return Choice(files: [p], index: nil) }
            throw ModelFileError.modelNotFound(spec: repo, searched: ["the file list of \(repo) on the hub"], hint: "\(repo) has none of \(preferred.joined(separator: ", "))")
        case .openCLIPDirectory:
            guard have.contains("open_clip_config.json"), var w = weights(openCLIP) else {
                throw ModelFileError.modelNotFound(spec: repo, searched: ["the file list of \(repo) on the hub"], hint: "\(repo) is not an OpenCLIP repository: it needs open_clip_config.json and open_clip_model.safetensors or open_clip_pytorch_model.bin")
            }
            w.files = ["open_clip_config.json"] + ["bpe_simple_vocab_16e6.txt.gz"].filter(have.contains) + w.files
            return w
        case .decoder, .vlm:
            let isOpenCLIP = kind == .vlm && !have.contains("config.json") && have.contains("open_clip_config.json")
            if kind == .decoder && !have.contains("config.json") {
                let ggufs = listing.filter { $0.lowercased().hasSuffix(".gguf") }.sorted()
                if ggufs.count == 1 { return Choice(files: ggufs, index: nil) }
                throw ModelFileError.modelNotFound(spec: repo, searched: ["the file list of \(repo) on the hub"], hint: ggufs.isEmpty
                    ? "\(repo) has no config.json and no .gguf file, so it is not a model repository ex2 can load"
                    : "\(repo) holds several GGUF files; pass the one you want as \(repo)/FILE.gguf: \(ggufs.joined(separator: ", "))")
            }
            guard var w = weights(isOpenCLIP ? openCLIP : hfWeights) else {
                throw ModelFileError.modelNotFound(spec: repo, searched: ["the file list of \(repo) on the hub"], hint: "\(repo) has no weights ex2 reads (\((isOpenCLIP ? openCLIP : hfWeights).map(\.file).joined(separator: ", ")) or a sharded index)")
            }
            w.files = support.filter(have.contains) + w.files
            return w
        }
    }

    /// The shard file names an index lists.
    public static func shards(ofIndex url: URL) throws -> [String] {
        Array(Set(try readIndex(url).weightMap.map(\.1))).sorted()
    }

    /// Whether `dir` (a snapshot) already holds what `kind` needs, judged without the repository's file list.
    public static func isComplete(_ kind: HubModelKind, _ dir: URL) -> Bool {
        let fm = FileManager.default
        func has(_ f: String) -> Bool { fm.fileExists(atPath: dir.appendingPathComponent(f).path) }
        func indexComplete(_ i: String) -> Bool {
            guard has(i), let s = try? shards(ofIndex: dir.appendingPathComponent(i)) else { return false }
            return s.allSatisfy(has)
        }
        switch kind {
        case .file(let f): return has(f)
        case .openCLIPWeights(let preferred): return preferred.contains(where: has)
        case .openCLIPDirectory:
            return has("open_clip_config.json") && openCLIPWeightFiles.contains(where: has)
        case .decoder, .vlm:
            if has("config.json") {
                // An index needs every shard it lists (a download interrupted between shards is not complete).
                for i in ["model.safetensors.index.json", "pytorch_model.bin.index.json"] where has(i) { return indexComplete(i) }
                return has("model.safetensors") || has("pytorch_model.bin")
                    || (((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).contains { $0.hasSuffix(".safetensors") })
            }
            if kind == .vlm && has("open_clip_config.json") { return openCLIPWeightFiles.contains(where: has) }
            return kind == .decoder && ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).contains { $0.lowercased().hasSuffix(".gguf") }
        }
    }
}

/// The process-wide hub settings the command line sets once: the downloader (nil: the cache only) and the
/// revisions --revision / --vlm-revision pin for the policy's and the VLM's hub ids.
public enum HubDefaults {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var _fetcher: (any HubFetching)?
    nonisolated(unsafe) private static var _policyRevision: String?
    nonisolated(unsafe) private static var _vlmRevision: String?

    public static var fetcher: (any HubFetching)? {
        get { lock.withLock { _fetcher } }
        set { lock.withLock { _fetcher = newValue } }
    }
    public static var policyRevision: String? {
        get { lock.withLock { _policyRevision } }
        set { lock.withLock { _policyRevision = newValue } }
    }
    public static var vlmRevision: String? {
        get { lock.withLock { _vlmRevision } }
        set { lock.withLock { _vlmRevision = newValue } }
    }
}
