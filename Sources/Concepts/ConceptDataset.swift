// What a loaded concept dataset is: the class (concept) names in class-index order, every image of the
// chosen split with its class index in the order the reference's loaders list them, and the reward's
// view of it — per class, the first N images by sorted path (the EX2 reference sorts each class's path
// strings and takes the first `num_images_for_reward`, 256 by default, all when 0 or -1).
import Foundation
import Imaging

public struct Concept: Sendable, Equatable {
    public let name: String
    public let index: Int

    public init(name: String, index: Int) {
        self.name = name
        self.index = index
    }
}

public struct LabeledImage: Sendable, Equatable {
    public let url: URL
    public let label: Int

    public init(url: URL, label: Int) {
        self.url = url
        self.label = label
    }
}

public struct SkippedImage: Sendable, Equatable {
    public let url: URL
    public let reason: String
}

/// The reward images of every class, and the files passed over because they could not be read.
public struct RewardImageSet: Sendable {
    public var perClass: [[URL]]
    public var skipped: [SkippedImage]
}

public struct ConceptDataset: Sendable {
    /// "cub", "flowers", ..., or "folder:PATH".
    public let name: String
    /// The split loaded; nil for a concept folder.
    public let split: String?
    /// The folder the dataset was read from (the layout's base folder).
    public let root: URL
    public let classNames: [String]
    /// The split's images in the order the layout's annotation files list them.
    public let images: [LabeledImage]
    /// Images the annotations list but that were missing, when the caller asked to skip them.
    public let skipped: [SkippedImage]
    /// Each class's image paths, sorted the way Python sorts strings (by Unicode code point).
    let sortedByClass: [[URL]]

    public init(name: String, split: String?, root: URL, classNames: [String], images: [LabeledImage],
                skipped: [SkippedImage] = []) {
        self.name = name
        self.split = split
        self.root = root
        self.classNames = classNames
        self.images = images
        self.skipped = skipped
        var perClass = [[URL]](repeating: [], count: classNames.count)
        for image in images where image.label >= 0 && image.label < classNames.count {
            perClass[image.label].append(image.url)
        }
        sortedByClass = perClass.map { urls in
            urls.sorted { $0.path.unicodeScalars.lexicographicallyPrecedes($1.path.unicodeScalars) }
        }
    }

    public var concepts: [Concept] { classNames.enumerated().map { Concept(name: $1, index: $0) } }

    /// Images per class in this split.
    public var imageCounts: [Int] { sortedByClass.map(\.count) }

    /// Classes that have no image in this split (they cannot be rewarded).
    public var classesWithoutImages: [Int] { sortedByClass.indices.filter { sortedByClass[$0].isEmpty } }

    /// The first `limit` images of a class by sorted path; `limit` 0 or negative means all.
    public func imagesForReward(classIndex: Int, limit: Int = 256) -> [URL] {
        guard sortedByClass.indices.contains(classIndex) else { return [] }
        let all = sortedByClass[classIndex]
        return limit > 0 ? Array(all.prefix(limit)) : all
    }

    /// Every class's reward images, each checked by `validate` (by default a full decode). An image that
    /// fails throws `ConceptsError.unreadableImage`, unless `skipUnreadable` is set: then it is recorded in
    /// `skipped` and the next image by sorted path takes its place. With `requireEveryClass`, a class left
    /// without images throws `ConceptsError.emptyConcept`.
    public func rewardImages(limit: Int = 256, skipUnreadable: Bool = false, requireEveryClass: Bool = true,
                             validate: (URL) throws -> Void = { _ = try ImageDecoder.decode(contentsOf: $0) }) throws
        -> RewardImageSet
    {
        var result = RewardImageSet(perClass: [], skipped: [])
        for (c, urls) in sortedByClass.enumerated() {
            var chosen: [URL] = []
            for url in urls {
                if limit > 0 && chosen.count == limit { break }
                do {
                    try validate(url)
                    chosen.append(url)
                } catch {
                    guard skipUnreadable else { throw ConceptsError.unreadableImage(path: url.path, reason: "\(error)") }
                    result.skipped.append(SkippedImage(url: url, reason: "\(error)"))
                }
            }
            if requireEveryClass && chosen.isEmpty {
                throw ConceptsError.emptyConcept(dataset: name, classIndex: c, name: classNames[c])
            }
            result.perClass.append(chosen)
        }
        return result
    }
}
