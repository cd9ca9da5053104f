// Every model spec on the command line may name a hub repository: the downloader is installed once at
// start (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE are read there), with a byte progress bar on stderr, and
// --revision / --vlm-revision pin the branch, tag or commit of the policy's and the VLM's repositories.
import ArgumentParser
import Foundation
import Hub
import ModelFiles

enum HubSetup {
    static func install() {
        let bar = DownloadProgress()
        HubDefaults.fetcher = HubClient(progress: { bar.update($0) })
    }
}

/// --revision for the policy's hub id.
struct PolicyRevision: ParsableArguments {
    @Option(help: "The branch, tag or commit of the policy when it is a hub id (default: main).")
    var revision: String?
    func validate() throws { if let revision { HubDefaults.policyRevision = revision } }
}

/// --vlm-revision for the VLM's hub id (or the hub repository of an r-open-clip tag).
struct VLMRevision: ParsableArguments {
    @Option(name: .customLong("vlm-revision"), help: "The branch, tag or commit of the VLM's hub repository (default: main).")
    var vlmRevision: String?
    func validate() throws { if let vlmRevision { HubDefaults.vlmRevision = vlmRevision } }
}

/// --revision for the commands whose only model is the VLM.
struct VLMOnlyRevision: ParsableArguments {
    @Option(help: "The branch, tag or commit of the VLM's hub repository (default: main).")
    var revision: String?
    func validate() throws { if let revision { HubDefaults.vlmRevision = revision } }
}

/// A download's bar: bytes, rate and time left, redrawn at most ten times a second on a terminal; one
/// summary line per file otherwise.
final class DownloadProgress: @unchecked Sendable {  // guarded by lock; called from the HTTP client's threads
    private let lock = NSLock()
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var started: [String: Date] = [:]
    private var lastDraw = Date.distantPast

    func update(_ p: HubProgress) {
        lock.withLock {
            let key = p.repo + "/" + p.file
            let now = Date()
            let start = started[key] ?? now
            if started[key] == nil { started[key] = now }
            let elapsed = max(now.timeIntervalSince(start), 1e-3)
            let rate = Double(p.done - p.resumedFrom) / elapsed
            var line = "downloading \(key)"
            if p.total > 0 {
                let width = 24, filled = Int(min(Double(width), Double(width) * Double(p.done) / Double(p.total)))
                line += " [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
                line += " \(Self.bytes(p.done))/\(Self.bytes(p.total))"
            } else {
                line += " \(Self.bytes(p.done))"
            }
            line += ", \(Self.bytes(Int64(rate)))/s"
            if p.resumedFrom > 0 { line += ", resumed at \(Self.bytes(p.resumedFrom))" }
            if !p.finished, p.total > p.done, rate > 0 {
                let left = Int(Double(p.total - p.done) / rate)
                line += String(format: ", %d:%02d left", left / 60, left % 60)
            }
            if isTerminal {
                guard p.finished || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
                lastDraw = now
                FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K" + (p.finished ? "\n" : "")).utf8))
            } else if p.finished {
                FileHandle.standardError.write(Data((line + String(format: " in %.1f s\n", elapsed)).utf8))
            }
            if p.finished { started[key] = nil }
        }
    }

    static func bytes(_ n: Int64) -> String {
        let d = Double(n)
        if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
        if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
        if d >= 1e3 { return String(format: "%.1f kB", d / 1e3) }
        return "\(n) B"
    }
}
