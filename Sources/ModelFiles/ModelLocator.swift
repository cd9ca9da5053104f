// Turns what a user types for a model (a .gguf path, a model directory, or a Hugging Face hub id such
// as HuggingFaceTB/SmolLM2-135M-Instruct) into files on disk: hub ids are looked up in the local Hugging
// Face cache the way huggingface_hub lays it out, and what it lacks is downloaded through a HubFetching.
// When nothing matches, the error lists every place that was tried and how to get the model there.

import Foundation

public enum ModelLocation: Sendable, Equatable {
    /// A single GGUF file.
    case gguf(URL)
    /// A directory with config.json and safetensors weights (a checkout or a hub cache snapshot).
    case hfDirectory(URL)
}

public struct ModelLocator: Sendable {
    public let environment: [String: String]
    /// Downloads what the cache lacks; nil falls back to HubDefaults.fetcher (which the command line sets).
    public var hub: (any HubFetching)?
    /// The branch, tag or commit of hub ids; nil falls back to the pinned HubDefaults revision, then main.
    public var revision: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, hub: (any HubFetching)? = nil,
                revision: String? = nil) {
        self.environment = environment
        self.hub = hub
        self.revision = revision
    }

    /// The hub cache huggingface_hub would use: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
    public var hubCache: URL {
        if let c = environment["HF_HUB_CACHE"], !c.isEmpty { return URL(fileURLWithPath: expand(c)) }
        if let h = environment["HF_HOME"], !h.isEmpty { return URL(fileURLWithPath: expand(h)).appendingPathComponent("hub") }
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/huggingface/hub")
    }

    private var home: String {
        if let h = environment["HOME"], !h.isEmpty { return h }
        return NSHomeDirectory()
    }

    private func expand(_ p: String) -> String {
        if p == "~" { return home }
        if p.hasPrefix("~/") { return home + p.dropFirst() }
        return p
    }

    public func resolve(_ spec: String) throws -> ModelLocation {
        var searched: [String] = []
        let fm = FileManager.default
        let path = expand(spec)
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path)
            : URL(fileURLWithPath: fm.currentDirectoryPath).appendingPathComponent(path)
        searched.append("\(url.standardizedFileURL.path) (as a path)")
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDir) {
            if !isDir.boolValue {
                guard url.pathExtension.lowercased() == "gguf" else {
                    throw ModelFileError.modelNotFound(spec: spec, searched: searched, hint: "\(url.path) is a file but not a .gguf file; pass a .gguf file or a model directory holding config.json")
                }
                return .gguf(url.standardizedFileURL)
            }
            return try resolveDirectory(url.standardizedFileURL, spec: spec, searched: searched)
        }

        // A hub id: ORG/NAME, or ORG/NAME/FILE.gguf for one file of a GGUF repository.
        let parts = spec.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let looksLikeHubID = !spec.hasPrefix("/") && !spec.hasPrefix(".") && !spec.hasPrefix("~")
            && (parts.count == 2 || (parts.count == 3 && parts[2].lowercased().hasSuffix(".gguf")))
            && HubCacheLayout.split(parts[0] + "/" + (parts.count > 1 ? parts[1] : "")) != nil
            && parts.allSatisfy { !$0.isEmpty && !$0.contains(" ") && $0 != ".." && $0 != "." }
        if looksLikeHubID {
            let repo = parts[0] + "/" + parts[1]
            let kind: HubModelKind = parts.count == 3 ? .file(parts[2]) : .decoder
            let revision = self.revision ?? HubDefaults.policyRevision
            searched.append("\(HubCacheLayout(root: hubCache).repoFolder(repo).appendingPathComponent("snapshots").path) (hub cache\(revision.map { ", revision \($0)" } ?? ""))")
            if let snapshot = try hubSnapshot(repo, revision: revision, kind: kind) {
                if parts.count == 3 {
                    let f = snapshot.appendingPathComponent(parts[2])
                    searched.append(f.path)
                    if fm.fileExists(atPath: f.path) { return .gguf(f) }
                } else {
                    return try resolveDirectory(snapshot, spec: spec, searched: searched)
                }
            }
        }
        let download = looksLikeHubID
            ? (isOffline
                ? "HF_HUB_OFFLINE is set, so nothing is downloaded: unset it to let ex2 fetch \(parts[0])/\(parts[1]) into \(hubCache.path), or fetch it elsewhere with `huggingface-cli download \(parts[0])/\(parts[1])` and copy the cache"
                : "download it with `huggingface-cli download \(parts[0])/\(parts[1])` (it goes to \(hubCache.path); set HF_HUB_CACHE or HF_HOME to use another cache)")
            : "pass a path to a .gguf file, a model directory with config.json, or a hub id ORG/NAME (downloaded into the Hugging Face cache)"
        throw ModelFileError.modelNotFound(spec: spec, searched: searched, hint: "To fix: \(download); scripts/setup.sh fetches the default models into models/.")
    }

    /// The snapshot of hub repository `repo` at `revision` (nil: main) holding what `kind` needs: the pinned
    /// cached one when it is complete, else what the hub downloader (`hub`, else HubDefaults.fetcher) makes of
    /// it, else, with no downloader, whatever the cache holds (the newest snapshot when no ref names one).
    public func hubSnapshot(_ repo: String, revision: String?, kind: HubModelKind) throws -> URL? {
        let layout = HubCacheLayout(root: hubCache)
        if let pinned = layout.pinnedSnapshot(repo, revision: revision), HubFileSelection.isComplete(kind, pinned) { return pinned }
        if let hub = hub ?? HubDefaults.fetcher { return try hub.snapshot(repo: repo, revision: revision, kind: kind) }
        return layout.snapshot(repo, revision: revision)
    }

    /// HF_HUB_OFFLINE as huggingface_hub reads it.
    public var isOffline: Bool {
        ["1", "on", "yes", "true"].contains((environment["HF_HUB_OFFLINE"] ?? "").lowercased())
    }

    private func resolveDirectory(_ dir: URL, spec: String, searched: [String]) throws -> ModelLocation {
        let fm = FileManager.default
        if fm.fileExists(atPath: dir.appendingPathComponent("config.json").path) { return .hfDirectory(dir) }
        let ggufs = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.lowercased().hasSuffix(".gguf") }.sorted()
        if ggufs.count == 1 { return .gguf(dir.appendingPathComponent(ggufs[0])) }
        let hint = ggufs.isEmpty
            ? "\(dir.path) has neither config.json nor a .gguf file; point at the model's own directory"
            : "\(dir.path) holds several .gguf files (\(ggufs.joined(separator: ", "))); pass the one you want"
        throw ModelFileError.modelNotFound(spec: spec, searched: searched + ["\(dir.path) (config.json or a single .gguf)"], hint: hint)
    }
}
