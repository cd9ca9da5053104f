// The one interface the EX2 pipeline sees of a vision-language model, whatever its family (CLIP, OpenCLIP,
// SigLIP, ALIGN): images and texts in, embeddings out, the similarity scale and bias the reward applies, and
// an identity and preprocessing key for the embedding cache. The reward, `ex2 embed`, `ex2 score` and
// `ex2 train` take `any VisionLanguageModel`; `VLMLoader.load(spec:)` picks the family from the checkpoint.
// A family implements the four requirements; batching files through the cache and the logits come from here.
import Foundation
import Imaging
import ModelFiles
import Tensors

public protocol VisionLanguageModel: AnyObject, Sendable {
    /// The width of the joint embedding space.
    var embedDim: Int { get }
    /// What the reward multiplies cosines by: exp(logit_scale) for HF CLIP and SigLIP, 100 for OpenCLIP CLIP
    /// (the reference's choice), 1/temperature for ALIGN.
    var logitScale: Float { get }
    /// What the reward adds after scaling: SigLIP's logit_bias; 0 for the softmax-trained families.
    var logitBias: Float { get }
    /// Changes whenever the architecture or the weights change; keys the embedding cache.
    var identity: String { get }
    /// Things a user should know that are not errors.
    var notes: [String] { get }
    /// The family and shape, for messages and `ex2 embed --list-vlms` (e.g. "CLIP ViT-B/32").
    var summary: String { get }
    /// Images per forward pass.
    var imageBatch: Int { get }
    /// Changes whenever the image pipeline changes; keys the embedding cache with `identity`.
    var preprocessingKey: String { get }

    /// One decoded image as the vision tower takes it (CHW floats).
    func preprocess(_ image: RGBImage) -> [Float]
    /// Embeddings of already preprocessed images, L2-normalised unless `normalize` is false.
    func embedPreprocessed(_ pixels: [[Float]], normalize: Bool) throws -> [[Float]]
    /// Embeddings of texts through the model's own tokenizer, L2-normalised unless `normalize` is false.
    func embedTexts(_ texts: [String], normalize: Bool) throws -> [[Float]]
}

extension VisionLanguageModel {
    public var logitBias: Float { 0 }

    /// Embeddings of decoded images, L2-normalised unless `normalize` is false.
    public func embedImages(_ images: [RGBImage], normalize: Bool = true) throws -> [[Float]] {
        var pixels = [[Float]](repeating: [], count: images.count)
        pixels.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let o = out  // each index is written by exactly one iteration
            parallelFor(images.count) { i in o[i] = preprocess(images[i]) }
        }
        return try embedPreprocessed(pixels, normalize: normalize)
    }

    public func embedTexts(_ texts: [String]) throws -> [[Float]] { try embedTexts(texts, normalize: true) }
    public func embedPreprocessed(_ pixels: [[Float]]) throws -> [[Float]] { try embedPreprocessed(pixels, normalize: true) }

    /// Embeddings of image files, read through `cache` when given (computed and stored on a miss).
    public func embedImageFiles(_ urls: [URL], cache: ImageEmbeddingCache? = nil) throws -> [[Float]] {
        var result = [[Float]?](repeating: nil, count: urls.count)
        var missing: [(index: Int, key: String?, image: RGBImage)] = []
        for (i, url) in urls.enumerated() {
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw ImageError.unreadable(name: url.path, reason: error.localizedDescription)
            }
            var key: String?
            if let cache {
                key = ImageEmbeddingCache.contentKey(data)
                if let hit = cache.lookup(key!), hit.count == embedDim { result[i] = hit; continue }
            }
            missing.append((i, key, try ImageDecoder.decode(data: data, name: url.path)))
        }
        for start in stride(from: 0, to: missing.count, by: imageBatch) {
            let chunk = missing[start..<min(missing.count, start + imageBatch)]
            let embeddings = try embedImages(chunk.map(\.image))
            for (m, e) in zip(chunk, embeddings) {
                result[m.index] = e
                if let cache, let key = m.key { try cache.store(key, e) }
            }
        }
        return result.map { $0! }
    }

    /// A cache for this model's image embeddings under `directory`.
    public func embeddingCache(directory: URL) -> ImageEmbeddingCache {
        ImageEmbeddingCache(directory: directory, modelIdentity: identity, preprocessing: preprocessingKey)
    }

    /// scale * <image_i, text_j> + bias for normalised embeddings: logits_per_image [images][texts].
    public func logits(images: [[Float]], texts: [[Float]], scale: Float? = nil, bias: Float? = nil) -> [[Float]] {
        let s = scale ?? logitScale, b = bias ?? logitBias
        return images.map { im in
            texts.map { t in
                var d: Float = 0
                for (x, y) in zip(im, t) { d += x * y }
                return s * d + b
            }
        }
    }
}

/// x / |x| (zero stays zero), as torch.nn.functional.normalize.
public func l2Normalized(_ x: [Float]) -> [Float] {
    var s: Double = 0
    for v in x { s += Double(v) * Double(v) }
    let n = Float(max(s.squareRoot(), 1e-12))
    return x.map { $0 / n }
}
