// The one error type of the CLIP target. Users reach these through `ex2` with a model spec they typed or a
// checkpoint they downloaded, so each case names the file, tensor or field at fault and says what to do.

public enum CLIPError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A config file is missing, unreadable or has a field we cannot accept.
    case badConfig(file: String, detail: String)
    /// The checkpoint describes an architecture this engine does not implement.
    case unsupportedArchitecture(model: String, detail: String)
    /// A tensor is absent, has the wrong shape, or is left over after loading.
    case badWeights(file: String, detail: String)
    /// A model spec (directory, hub id, r-open-clip:...) could not be turned into files.
    case modelNotFound(spec: String, detail: String)
    /// Embedding inputs that do not fit the model (an empty token list, an id outside the vocabulary...).
    case badInput(String)
    /// The embedding cache directory cannot be written.
    case cacheFailure(path: String, detail: String)

    /// The detail alone, without the file and the advice.
    public var reason: String {
        switch self {
        case let .badConfig(_, d), let .unsupportedArchitecture(_, d), let .badWeights(_, d), let .modelNotFound(_, d),
             let .cacheFailure(_, d): return d
        case let .badInput(d): return d
        }
    }

    public var description: String {
        switch self {
        case let .badConfig(file, detail):
            return "\(file): \(detail)"
        case let .unsupportedArchitecture(model, detail):
            return "\(model): unsupported VLM architecture: \(detail); supported are transformers' CLIPModel, AlignModel "
                + "and SiglipModel checkpoints and OpenCLIP's ViT, ModifiedResNet, ConvNeXt and SigLIP configs (`ex2 embed --list-vlms` lists them)"
        case let .badWeights(file, detail):
            return "\(file): \(detail); the weights do not match the model config, re-download the checkpoint"
        case let .modelNotFound(spec, detail):
            return "CLIP model '\(spec)' not found: \(detail)"
        case let .badInput(detail):
            return "invalid CLIP input: \(detail)"
        case let .cacheFailure(path, detail):
            return "embedding cache \(path): \(detail); check that the cache directory is writable or choose another"
        }
    }
}
