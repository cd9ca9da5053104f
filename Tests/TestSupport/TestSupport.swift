// What the test targets that run `ex2` as a subprocess share: the repository root, the built `ex2`
// executable (skipping loudly when it is not built), running a program for its output, waiting for a
// server's port file, and a folder dataset of named concepts.
import Foundation
import XCTest

public enum TestSupport {
    /// The checkout this file belongs to.
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The `ex2` built beside the test bundle, else the release build in the checkout.
    public static func ex2Executable() throws -> URL {
        let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ex2"),
                          repositoryRoot.appendingPathComponent(".build/release/ex2")]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("SKIPPED: the ex2 executable is not built (swift build -c release)")
        }
        return found
    }

    /// Runs `executable` to completion: its exit status and its output (stdout, and stderr too unless
    /// `mergeStderr` is false, when stderr is discarded).
    public static func run(_ executable: URL, _ args: [String], cwd: URL? = nil, env: [String: String] = [:],
                           mergeStderr: Bool = true) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        if let cwd { p.currentDirectoryURL = cwd }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = mergeStderr ? out : FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The port a server wrote to `file` once listening; nil if `process` exits or `timeout` passes first.
    public static func waitForPort(file: URL, process: Process, timeout: TimeInterval) -> Int? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            if let s = try? String(contentsOf: file, encoding: .utf8), let p = Int(s.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return p
            }
            usleep(50_000)
        }
        return nil
    }

    /// `dir/concepts/NAME/` for each name, each holding one placeholder image file: a folder dataset
    /// whose class names are all a test needs (nothing decodes the images). Returns `dir/concepts`.
    @discardableResult
    public static func conceptFolders(_ names: [String], in dir: URL) throws -> URL {
        let root = dir.appendingPathComponent("concepts")
        for name in names {
            let d = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            try Data([0]).write(to: d.appendingPathComponent("placeholder.png"))
        }
        return root
    }
}
