// Embedding images and texts with a CLIP model: the library call behind `ex2 embed`. Image files go
// through the persistent embedding cache (the directory `ex2 score` uses, so either command fills it for
// the other) in batches, with progress reported after each; texts go through the model's own tokenizer.
// The result holds L2-normalised embeddings and the model's similarity scale, and renders itself as JSON
// or as a NumPy .npy matrix (images first, then texts, one row each) with a JSON sidecar for the rest.
import CLIP
import Foundation
import Imaging

public struct EmbedRequest: Sendable {
    /// The VLM spec, as VLMLoader.load(spec:) takes it.
    public var vlm: String
    public var images: [URL]
    public var texts: [String]
    /// nil: embed every image afresh and store nothing.
    public var cacheDirectory: URL?

    public init(vlm: String, images: [URL] = [], texts: [String] = [], cacheDirectory: URL? = EmbedRequest.defaultCacheDirectory) {
        self.vlm = vlm
        self.images = images
        self.texts = texts
        self.cacheDirectory = cacheDirectory
    }

    /// $EX2_CACHE/image-embeddings, else $XDG_CACHE_HOME/ex2/image-embeddings, else ~/.cache/ex2/image-embeddings
    /// (the same place `ex2 score` keeps its image embeddings).
    public static var defaultCacheDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        if let d = env["EX2_CACHE"], !d.isEmpty { return URL(fileURLWithPath: d).appendingPathComponent("image-embeddings") }
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("ex2").appendingPathComponent("image-embeddings")
    }
}

public enum EmbedError: Error, CustomStringConvertible, Equatable {
    case nothingToEmbed
    case nonFinite(what: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .nothingToEmbed: return "nothing to embed: give at least one image file or one text"
        case let .nonFinite(what):
            return "the embedding of \(what) has NaN or infinite values; the model weights are damaged, re-download the checkpoint"
        case let .cannotWrite(path, reason): return "cannot write \(path): \(reason)"
        }
    }
}

/// L2-normalised embeddings of images and texts from one model, in the order they were asked for.
public struct EmbeddingOutput: Sendable, Equatable {
    public var model: String
    public var dimension: Int
    /// The scale CLIP multiplies cosines by (exp(logit_scale) for HF CLIP, 100 for OpenCLIP, as in EX2).
    public var logitScale: Float
    /// What the model adds after scaling (SigLIP's logit_bias); 0 for the others, and then not written.
    public var logitBias: Float = 0
    public var images: [String]
    public var imageEmbeddings: [[Float]]
    public var texts: [String]
    public var textEmbeddings: [[Float]]

    /// {"model", "dimension", "logit_scale", "normalized", "images": [{"path", "embedding"}], "texts": [{"text", "embedding"}]}.
    public func json() throws -> Data {
        struct Item: Encodable { var path: String?; var text: String?; var embedding: [Float] }
        struct File: Encodable {
            var model: String; var dimension: Int; var logit_scale: Float; var logit_bias: Float?; var normalized = true
            var images: [Item]; var texts: [Item]
        }
        let file = File(model: model, dimension: dimension, logit_scale: logitScale, logit_bias: logitBias == 0 ? nil : logitBias,
                        images: zip(images, imageEmbeddings).map { Item(path: $0, embedding: $1) },
                        texts: zip(texts, textEmbeddings).map { Item(text: $0, embedding: $1) })
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try enc.encode(file) + Data("\n".utf8)
    }

    /// The .npy matrix [images + texts, dimension] (float32, little-endian, C order): images first, then texts.
    public func npy() -> Data { NPY.float32Matrix(imageEmbeddings + textEmbeddings, columns: dimension) }

    /// What the .npy file cannot hold: the model, the scale, and which row is which.
    public func npySidecar() throws -> Data {
        struct Sidecar: Encodable {
            var model: String; var dimension: Int; var logit_scale: Float; var logit_bias: Float?; var normalized = true
            var rows: String; var images: [String]; var texts: [String]
        }
        let s = Sidecar(model: model, dimension: dimension, logit_scale: logitScale, logit_bias: logitBias == 0 ? nil : logitBias,
                        rows: "images first (rows 0..<\(images.count)), then texts (rows \(images.count)..<\(images.count + texts.count))",
                        images: images, texts: texts)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try enc.encode(s) + Data("\n".utf8)
    }
}

public enum Embedder {
    /// Loads the model and embeds the request. `progress` gets (images done, images in all) after each batch.
    public static func run(_ request: EmbedRequest, progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> EmbeddingOutput {
        guard !request.images.isEmpty || !request.texts.isEmpty else { throw EmbedError.nothingToEmbed }
        let clip = try VLMLoader.load(spec: request.vlm)
        return try embed(clip: clip, name: request.vlm, request: request, progress: progress)
    }

    /// Embeds with an already loaded model (`name` is what the output calls it).
    public static func embed(clip: any VisionLanguageModel, name: String, request: EmbedRequest,
                             progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> EmbeddingOutput {
        let cache = request.cacheDirectory.map { clip.embeddingCache(directory: $0) }
        var images: [[Float]] = []
        images.reserveCapacity(request.images.count)
        let urls = request.images
        progress?(0, urls.count)
        for start in stride(from: 0, to: urls.count, by: clip.imageBatch) {
            let chunk = Array(urls[start..<min(urls.count, start + clip.imageBatch)])
            // Decoding errors (ImageError) already name the file; the embeddings come back normalised.
            images += try clip.embedImageFiles(chunk, cache: cache)
            progress?(start + chunk.count, urls.count)
        }
        let texts = request.texts.isEmpty ? [] : try clip.embedTexts(request.texts)
        for (url, e) in zip(urls, images) where !e.allSatisfy(\.isFinite) { throw EmbedError.nonFinite(what: url.path) }
        for (t, e) in zip(request.texts, texts) where !e.allSatisfy(\.isFinite) { throw EmbedError.nonFinite(what: "the text \(t.debugDescription)") }
        return EmbeddingOutput(model: name, dimension: clip.embedDim, logitScale: clip.logitScale, logitBias: clip.logitBias,
                               images: urls.map(\.path), imageEmbeddings: images,
                               texts: request.texts, textEmbeddings: texts)
    }
}

/// NumPy's .npy format, version 1.0, for a float32 matrix: what `numpy.save` writes for the same array.
public enum NPY {
    public static func float32Matrix(_ rows: [[Float]], columns: Int) -> Data {
        precondition(rows.allSatisfy { $0.count == columns }, "every row of an .npy matrix has the same length")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows.count), \(columns)), }"
        // numpy leaves room for the first dimension to grow to 21 digits, so files can be appended in place.
        header += String(repeating: " ", count: max(0, 21 - String(rows.count).count))
        // Magic (6) + version (2) + length (2) + header + "\n" is padded with spaces to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let len = UInt16(header.utf8.count)
        out.append(contentsOf: [UInt8(len & 0xff), UInt8(len >> 8)])
        out.append(contentsOf: Array(header.utf8))
        out.reserveCapacity(out.count + 4 * rows.count * columns)
        for row in rows {
            for v in row {
                let b = v.bitPattern.littleEndian
                out.append(contentsOf: [UInt8(b & 0xff), UInt8(b >> 8 & 0xff), UInt8(b >> 16 & 0xff), UInt8(b >> 24)])
            }
        }
        return out
    }
}
