// The EX2 reward: how close, in the VLM's space, a description is to the images of its concept. For a
// description t of class c it is the mean over the chosen images i of c of scale * cos(image_i, t), exactly
// the reference's formula. The mean of dot products with a fixed unit text vector equals the dot product with
// the mean of the unit image vectors, so each class keeps one mean vector and a description costs one dot
// product, whatever the number of images. `RewardTable` is that arithmetic on embeddings alone;
// `RewardModel` adds the CLIP model, the dataset's reward images (first N by sorted path, embedded once
// through the persistent cache) and the text side, and is what `ex2 score` and the PPO trainer call.
import CLIP
import Concepts
import Foundation
import Imaging

/// An image passed over under `skipUnreadable`, and why.
public struct UnreadableImage: Sendable, Equatable {
    public let url: URL
    public let reason: String
}

public enum RewardError: Error, CustomStringConvertible, Equatable {
    case classOutOfRange(index: Int, position: Int, classCount: Int)
    case classWithoutImages(classIndex: Int, name: String)
    case countMismatch(descriptions: Int, classes: Int)
    case dimensionMismatch(what: String, got: Int, expected: Int)

    public var description: String {
        switch self {
        case let .classOutOfRange(index, position, count):
            return "reward request \(position) names class \(index), but the dataset has \(count) classes (0-based indices 0..<\(count))"
        case let .classWithoutImages(c, name):
            return "class \(c) ('\(name)') has no reward images, so its descriptions cannot be scored; add images to the concept or drop it"
        case let .countMismatch(d, c):
            return "rewards(descriptions:classes:) got \(d) descriptions but \(c) class indices; pass one class per description"
        case let .dimensionMismatch(what, got, expected):
            return "\(what) has dimension \(got), the image embeddings have \(expected); the text and image embeddings must come from the same model"
        }
    }
}

/// The reward arithmetic: per class, the mean of its L2-normalised image embeddings, times the scale.
public struct RewardTable: Sendable {
    /// exp(logit_scale) for HF CLIP, 100 for OpenCLIP, 1/temperature for ALIGN (the reference's choices).
    public let scale: Float
    /// Added to every reward: SigLIP's logit_bias (so the reward is the mean of the model's own logits); 0 else.
    public let bias: Float
    /// Per class: mean of the normalised image embeddings (empty when the class has no images).
    public let classMeans: [[Float]]
    public let imageCounts: [Int]
    public let dimension: Int

    /// `imageEmbeddings[c]` holds class c's image embeddings, normalised or not (they are normalised here).
    public init(imageEmbeddings: [[[Float]]], scale: Float, bias: Float = 0) throws {
        let dim = imageEmbeddings.lazy.flatMap { $0 }.first?.count ?? 0
        var means: [[Float]] = []
        for (c, images) in imageEmbeddings.enumerated() {
            guard !images.isEmpty else { means.append([]); continue }
            var sum = [Double](repeating: 0, count: dim)
            for (i, e) in images.enumerated() {
                guard e.count == dim else {
                    throw RewardError.dimensionMismatch(what: "image embedding \(i) of class \(c)", got: e.count, expected: dim)
                }
                for (k, v) in l2Normalized(e).enumerated() { sum[k] += Double(v) }
            }
            means.append(sum.map { Float($0 / Double(images.count)) })
        }
        self.scale = scale
        self.bias = bias
        classMeans = means
        imageCounts = imageEmbeddings.map(\.count)
        dimension = dim
    }

    /// scale * <class mean, text / |text|> + bias for each (text embedding, class index) pair.
    public func rewards(textEmbeddings: [[Float]], classes: [Int]) throws -> [Float] {
        guard textEmbeddings.count == classes.count else {
            throw RewardError.countMismatch(descriptions: textEmbeddings.count, classes: classes.count)
        }
        return try zip(textEmbeddings, classes).enumerated().map { position, pair in
            let (t, c) = pair
            guard classMeans.indices.contains(c) else {
                throw RewardError.classOutOfRange(index: c, position: position, classCount: classMeans.count)
            }
            guard !classMeans[c].isEmpty else { throw RewardError.classWithoutImages(classIndex: c, name: "\(c)") }
            guard t.count == dimension else {
                throw RewardError.dimensionMismatch(what: "text embedding \(position)", got: t.count, expected: dimension)
            }
            return scale * dot(classMeans[c], l2Normalized(t)) + bias
        }
    }
}

func dot(_ a: [Float], _ b: [Float]) -> Float {
    var s: Double = 0
    for (x, y) in zip(a, b) { s += Double(x) * Double(y) }
    return Float(s)
}

public struct RewardOptions: Sendable {
    /// Reward images per class: the first N by sorted path; 0 or negative means all.
    public var imagesPerClass: Int
    /// nil: the model's own (VisionLanguageModel.logitScale).
    public var scale: Float?
    /// Where image embeddings persist between runs; nil computes them afresh.
    public var cacheDirectory: URL?
    /// Pass over images that cannot be read or decoded (the next image by sorted path takes the place of
    /// one of the first N), recording them in `RewardModel.skipped`, instead of failing.
    public var skipUnreadable: Bool

    public init(imagesPerClass: Int = 256, scale: Float? = nil, cacheDirectory: URL? = RewardOptions.defaultCacheDirectory,
                skipUnreadable: Bool = false) {
        self.imagesPerClass = imagesPerClass
        self.scale = scale
        self.cacheDirectory = cacheDirectory
        self.skipUnreadable = skipUnreadable
    }

    /// The cache `ex2 embed` fills too ($EX2_CACHE/image-embeddings, else ~/.cache/ex2/image-embeddings).
    public static var defaultCacheDirectory: URL { EmbedRequest.defaultCacheDirectory }
}

/// Called with (images embedded or found in the cache so far, images to do in all).
public typealias EmbeddingProgress = (_ done: Int, _ total: Int) -> Void

public final class RewardModel: Sendable {
    public let clip: any VisionLanguageModel
    public let classNames: [String]
    public let table: RewardTable
    /// Per class, the images the reward averages over.
    public let rewardImages: [[URL]]
    /// Images passed over under `skipUnreadable`, with the reason.
    public let skipped: [UnreadableImage]
    let cache: ImageEmbeddingCache?
    let skipUnreadable: Bool

    /// Embeds the reward images of every class of `dataset` (through the cache) and fixes the class means.
    /// Every class must keep at least one readable image.
    public init(clip: any VisionLanguageModel, dataset: ConceptDataset, options: RewardOptions = RewardOptions(),
                progress: EmbeddingProgress? = nil) throws {
        self.clip = clip
        classNames = dataset.classNames
        cache = options.cacheDirectory.map { clip.embeddingCache(directory: $0) }
        skipUnreadable = options.skipUnreadable
        let embedder = ImageEmbedder(clip: clip, cache: cache, skipUnreadable: options.skipUnreadable)
        let limit = options.imagesPerClass
        let candidates = dataset.classNames.indices.map { dataset.imagesForReward(classIndex: $0, limit: 0) }
        var chosen = [[URL]](repeating: [], count: candidates.count)
        var embeddings = [[[Float]]](repeating: [], count: candidates.count)
        var next = [Int](repeating: 0, count: candidates.count)
        var skipped: [UnreadableImage] = []
        var done = 0
        var total = candidates.reduce(0) { $0 + (limit > 0 ? min(limit, $1.count) : $1.count) }
        // Rounds: the first N of each class, then, only when some were unreadable, the next ones in their place.
        while true {
            var request: [(cls: Int, url: URL)] = []
            for c in candidates.indices {
                let want = limit > 0 ? limit - chosen[c].count : candidates[c].count
                let end = min(candidates[c].count, next[c] + max(0, want))
                for url in candidates[c][next[c]..<end] { request.append((c, url)) }
                next[c] = end
            }
            if request.isEmpty { break }
            let base = done
            let result = try embedder.embed(request.map(\.url)) { d, _ in progress?(base + d, total) }
            done += request.count
            for (r, e) in zip(request, result.embeddings) {
                guard let e else { continue }
                chosen[r.cls].append(r.url)
                embeddings[r.cls].append(e)
            }
            if result.skipped.isEmpty { break }
            skipped += result.skipped
            total += result.skipped.count
        }
        for c in chosen.indices where chosen[c].isEmpty {
            throw ConceptsError.emptyConcept(dataset: dataset.name, classIndex: c, name: dataset.classNames[c])
        }
        rewardImages = chosen
        self.skipped = skipped
        table = try RewardTable(imageEmbeddings: embeddings, scale: options.scale ?? clip.logitScale, bias: clip.logitBias)
    }

    /// The reward of each description for its class (`classes[i]` is the 0-based class of `descriptions[i]`).
    public func rewards(descriptions: [String], classes: [Int]) throws -> [Float] {
        guard descriptions.count == classes.count else {
            throw RewardError.countMismatch(descriptions: descriptions.count, classes: classes.count)
        }
        for (position, c) in classes.enumerated() where !table.classMeans.indices.contains(c) {
            throw RewardError.classOutOfRange(index: c, position: position, classCount: classNames.count)
        }
        return try table.rewards(textEmbeddings: try textEmbeddings(descriptions), classes: classes)
    }

    /// L2-normalised text embeddings; the text tower packs ragged texts, so batching costs no padding.
    public func textEmbeddings(_ texts: [String]) throws -> [[Float]] {
        try clip.embedTexts(texts)
    }

    /// Normalised embeddings of arbitrary image files through the same cache (nil for skipped files).
    public func imageEmbeddings(_ urls: [URL], progress: EmbeddingProgress? = nil) throws
        -> (embeddings: [[Float]?], skipped: [UnreadableImage])
    {
        try ImageEmbedder(clip: clip, cache: cache, skipUnreadable: skipUnreadable).embed(urls, progress: progress)
    }
}

/// Embeds image files in chunks through the cache; when a chunk fails, retries it file by file so the
/// error (or the skip) names the one file at fault.
struct ImageEmbedder {
    let clip: any VisionLanguageModel
    let cache: ImageEmbeddingCache?
    let skipUnreadable: Bool
    let chunk = 128

    func embed(_ urls: [URL], progress: EmbeddingProgress?) throws -> (embeddings: [[Float]?], skipped: [UnreadableImage]) {
        var out = [[Float]?](repeating: nil, count: urls.count)
        var skipped: [UnreadableImage] = []
        progress?(0, urls.count)
        for start in stride(from: 0, to: urls.count, by: chunk) {
            let range = start..<min(urls.count, start + chunk)
            do {
                let e = try clip.embedImageFiles(Array(urls[range]), cache: cache)
                for (i, v) in zip(range, e) { out[i] = v }
            } catch is ImageError {
                for i in range {
                    do {
                        out[i] = try clip.embedImageFiles([urls[i]], cache: cache)[0]
                    } catch let error as ImageError {
                        guard skipUnreadable else { throw ConceptsError.unreadableImage(path: urls[i].path, reason: "\(error)") }
                        skipped.append(UnreadableImage(url: urls[i], reason: "\(error)"))
                    }
                }
            }
            progress?(range.upperBound, urls.count)
        }
        return (out, skipped)
    }
}
