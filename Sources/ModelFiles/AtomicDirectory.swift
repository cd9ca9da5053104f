// Directories written whole and then put in place, so a reader (or a process killed mid-write) never
// sees a half-written one under the real name: build under a hidden sibling name, then rename. Replacing
// an existing directory takes two renames (Linux's atomic exchange is not reachable from Swift's Glibc):
// the old one moves aside to ".NAME.old-*" first, and is restored if the second rename fails.
import Foundation

public enum AtomicDirectory {
    /// A fresh hidden sibling of `dir` to build it in: ".NAME.<kind>-<pid>-<random>".
    public static func sibling(of dir: URL, kind: String) -> URL {
        let unique = "\(ProcessInfo.processInfo.processIdentifier)-\(UInt64.random(in: 0...UInt64.max))"
        return dir.deletingLastPathComponent().appendingPathComponent(".\(dir.lastPathComponent).\(kind)-\(unique)")
    }

    /// Puts the complete directory `built` at `dir`, replacing what was there.
    public static func install(_ built: URL, at dir: URL) throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: dir.path) else { return try fm.moveItem(at: built, to: dir) }
        // Not FileManager.replaceItemAt: on Linux it fails with ENOTEMPTY for a non-empty directory.
        let old = sibling(of: dir, kind: "old")
        try fm.moveItem(at: dir, to: old)
        do { try fm.moveItem(at: built, to: dir) } catch { try? fm.moveItem(at: old, to: dir); throw error }
        try? fm.removeItem(at: old)
    }
}
