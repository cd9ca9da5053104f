// Strict loading, shared by the model families: every tensor is taken by name with the shape the config
// implies, and anything left unused at the end is an error, as nanoGPT's from_pretrained does. Each
// failure is a WeightError naming the file and the tensor.
import ModelFiles

/// A checkpoint tensor that is missing, has the wrong shape, cannot be read or is left over.
public struct WeightError: Error, CustomStringConvertible, Sendable, Equatable {
    public let file: String
    public let tensor: String
    public let message: String
    public init(file: String, tensor: String, message: String) {
        self.file = file; self.tensor = tensor; self.message = message
    }
    public var description: String { "\(file): tensor '\(tensor)': \(message)" }
}

/// Takes tensors out of a WeightSource by name, checking shapes and remembering what was used.
public struct StrictWeightReader {
    public let source: any WeightSource
    public let file: String
    public private(set) var used = Set<String>()

    public init(_ source: any WeightSource, file: String) { self.source = source; self.file = file }

    /// The tensor as Float, row-major; a scalar may be stored as [] or [1].
    public mutating func take(_ name: String, _ shape: [Int]) throws -> [Float] {
        guard let s = source.shape(of: name) else {
            throw WeightError(file: file, tensor: name, message: "missing from the checkpoint")
        }
        let same = s == shape || (shape.isEmpty && s == [1]) || (shape == [1] && s.isEmpty)
        guard same else { throw WeightError(file: file, tensor: name, message: "has shape \(s), expected \(shape)") }
        used.insert(name)
        do { return try source.floats(name) } catch {
            throw WeightError(file: file, tensor: name, message: "cannot be read: \(error)")
        }
    }

    public func has(_ name: String) -> Bool { source.shape(of: name) != nil }

    /// `prefix.weight` [out, in] and, with `bias` (PyTorch's default), `prefix.bias` [out].
    public mutating func linear(_ prefix: String, out: Int, in k: Int, bias: Bool = true) throws -> Linear {
        Linear(dense: try take(prefix + ".weight", [out, k]), out: out, in: k, bias: bias ? try take(prefix + ".bias", [out]) : nil)
    }

    /// The tensors nobody took, sorted, less the `ignored` ones (buffers that carry no weights).
    public func unused(ignoring ignored: (String) -> Bool = { _ in false }) -> [String] {
        source.tensorNames.filter { !used.contains($0) && !ignored($0) }.sorted()
    }

    /// Fails naming the first tensor nobody took; `message` says why, given all of them.
    public func finish(ignoring ignored: (String) -> Bool = { _ in false }, message: ([String]) -> String) throws {
        let left = unused(ignoring: ignored)
        if let first = left.first { throw WeightError(file: file, tensor: first, message: message(left)) }
    }
}
