// Turns what a user types for a model (a .gguf path, a model directory, or a Hugging Face hub id such
// as HuggingFaceTB/SmolLM2-135M-Instruct) into files on disk, offline: hub ids are looked up in the
// local Hugging Face cache the way huggingface_hub lays it out. When nothing matches, the error lists
// every place that was tried and how to get the model there.

import Foundation

public enum ModelLocation: Sendable, Equatable {
    /// A single GGUF file.
    case gguf(URL)
    /// A directory with config.json and safetensors weights (a checkout or a hub cache snapshot).
    case hfDirectory(URL)
}

public struct ModelLocator: Sendable {
    public let environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
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
            && parts.allSatisfy { !$0.isEmpty && !$0.contains(" ") && $0 != ".." && $0 != "." }
        if looksLikeHubID {
            let repo = hubCache.appendingPathComponent("models--\(parts[0])--\(parts[1])")
            let snapshots = repo.appendingPathComponent("snapshots")
            var snapshot: URL?
            let refMain = repo.appendingPathComponent("refs/main")
            if let rev = try? String(contentsOf: refMain, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
               !rev.isEmpty, !rev.contains("/") {
                let s = snapshots.appendingPathComponent(rev)
                searched.append("\(s.path) (hub cache snapshot named by refs/main)")
                if fm.fileExists(atPath: s.path) { snapshot = s }
            }
            if snapshot == nil {
                searched.append("\(snapshots.path) (newest hub cache snapshot)")
                let entries = (try? fm.contentsOfDirectory(at: snapshots, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
                snapshot = entries.max { a, b in
                    let da = (try? a.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
                    let db = (try? b.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
                    return (da, a.lastPathComponent) < (db, b.lastPathComponent)
                }
            }
            if let snapshot {
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
            ? "download it with `huggingface-cli download \(parts[0])/\(parts[1])` (it goes to \(hubCache.path); set HF_HUB_CACHE or HF_HOME to use another cache)"
            : "pass a path to a .gguf file, a model directory with config.json, or a hub id ORG/NAME that is in the local Hugging Face cache"
        throw ModelFileError.modelNotFound(spec: spec, searched: searched, hint: "To fix: \(download); scripts/setup.sh fetches the default models into models/.")
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
