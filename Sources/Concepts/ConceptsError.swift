// The errors a user can hit while pointing EX2 at a dataset, a concept folder or a templates file. Each
// names the path it expected and, for datasets, the on-disk layout the loader reads, so the fix is obvious
// from the message alone.
import Foundation

public enum ConceptsError: Error, CustomStringConvertible, Equatable {
    /// A file or folder the layout needs is absent.
    case missing(dataset: String, path: String, layout: String)
    /// A file is present but its contents do not fit the layout.
    case malformed(dataset: String, path: String, problem: String, layout: String)
    case unknownDataset(String)
    case unknownSplit(dataset: String, split: String, valid: [String])
    case labelOutOfRange(dataset: String, path: String, label: Int, classCount: Int)
    case classCountMismatch(dataset: String, path: String, found: Int, expected: Int)
    /// Images the annotations list but that are not on disk (first few, and how many in all).
    case missingImages(dataset: String, paths: [String], total: Int)
    case unreadableImage(path: String, reason: String)
    case emptyConcept(dataset: String, classIndex: Int, name: String)
    case badTemplates(path: String, problem: String)

    public var description: String {
        switch self {
        case .missing(let d, let p, let layout):
            return "\(d): \(p) does not exist.\nExpected layout:\n\(layout)"
        case .malformed(let d, let p, let problem, let layout):
            return "\(d): \(p) is malformed: \(problem).\nExpected layout:\n\(layout)"
        case .unknownDataset(let n):
            return "unknown dataset '\(n)'; use one of \(DatasetLoader.datasetNames.joined(separator: ", ")) or folder:PATH"
        case .unknownSplit(let d, let s, let valid):
            return "\(d) has no split '\(s)'; use one of: \(valid.joined(separator: ", "))"
        case .labelOutOfRange(let d, let p, let l, let n):
            return "\(d): \(p) gives class \(l + 1) (1-based), but the class list has \(n) names; the annotation file does not belong to this dataset"
        case .classCountMismatch(let d, let p, let found, let expected):
            return "\(d): \(p) lists \(found) classes, the built-in class names have \(expected); is this the right dataset or annotation level?"
        case .missingImages(let d, let paths, let total):
            return "\(d): \(total) image(s) listed in the annotations are missing, e.g.\n  " + paths.joined(separator: "\n  ")
                + "\nRe-extract the dataset, or pass the option that skips unreadable images."
        case .unreadableImage(let p, let reason):
            return "cannot read image \(p): \(reason). Fix or remove it, or pass the option that skips unreadable images."
        case .emptyConcept(let d, let c, let name):
            return "\(d): concept \(c) ('\(name)') has no images, so it cannot be rewarded; add images or remove the concept"
        case .badTemplates(let p, let problem):
            return "query templates \(p): \(problem). Expected a JSON list of strings, each with one {} where the class name goes."
        }
    }
}
