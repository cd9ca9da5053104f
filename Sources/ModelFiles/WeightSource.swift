// One read-only interface over GGUF files and safetensors checkpoints, so model loaders can take
// weights from either without caring which format (or how many shards) they came from.

public protocol WeightSource: Sendable {
    var tensorNames: [String] { get }
    /// PyTorch order (slowest-varying first); nil when there is no such tensor.
    func shape(of name: String) -> [Int]?
    /// Dequantized / converted to Float, row-major in `shape` order.
    func floats(_ name: String) throws -> [Float]
}

extension GGUFFile: WeightSource {
    public var tensorNames: [String] { tensors.map(\.name) }
    public func shape(of name: String) -> [Int]? { tensor(name)?.shape }
}

extension SafetensorsFile: WeightSource {
    public var tensorNames: [String] { names }
    public func shape(of name: String) -> [Int]? { tensors[name]?.shape }
}

extension SafetensorsCheckpoint: WeightSource {
    public var tensorNames: [String] { names }
    public func shape(of name: String) -> [Int]? { info(name)?.shape }
}
