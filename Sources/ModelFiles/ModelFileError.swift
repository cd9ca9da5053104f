// The one error type of the ModelFiles target. Model files come from the network and are treated as
// hostile, so every failure says which file (and which tensor, key or field) is at fault and, where
// there is one, what the user can do about it.

import Foundation

public enum ModelFileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file could not be opened or mapped at all.
    case unreadable(file: String, reason: String)
    /// The bytes violate the format (truncation, bad counts, overlapping or out-of-range regions...).
    case malformed(file: String, detail: String)
    /// The file is well formed but uses something this reader does not handle (a version, a type).
    case unsupported(file: String, detail: String)
    /// A tensor was asked for by name and is not in the file or checkpoint.
    case tensorNotFound(file: String, name: String)
    /// A model specification could not be resolved to files on disk.
    case modelNotFound(spec: String, searched: [String], hint: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot open the file (\(reason)); check that the path exists and is readable"
        case let .malformed(file, detail):
            return "\(file): malformed file: \(detail); the file is damaged or not what its name says, download it again"
        case let .unsupported(file, detail):
            return "\(file): unsupported: \(detail)"
        case let .tensorNotFound(file, name):
            return "\(file): no tensor named '\(name)'; the checkpoint does not match the model architecture"
        case let .modelNotFound(spec, searched, hint):
            let places = searched.map { "  - \($0)" }.joined(separator: "\n")
            return "model '\(spec)' not found; looked in:\n\(places)\n\(hint)"
        }
    }
}

/// Maps a model file read-only. `.alwaysMapped` really maps (a 2 GiB file opens in under a millisecond);
/// `.mappedIfSafe` would read the whole file into memory.
func mapModelFile(_ url: URL) throws -> Data {
    do {
        return try Data(contentsOf: url, options: .alwaysMapped)
    } catch {
        throw ModelFileError.unreadable(file: url.path, reason: error.localizedDescription)
    }
}
