// Scoring a set of descriptions against a concept dataset: the library call behind `ex2 score`. It reads
// descriptions in the reference's generate format or as JSON Lines, computes every description's reward
// with `RewardModel`, and optionally the "classification by description" check: each class represented by
// the normalised mean of its normalised description embeddings, every image of the split assigned to the
// nearest class. Rewards are written back in the shape they were read in.
import CLIP
import Concepts
import Foundation

public enum ScoreError: Error, CustomStringConvertible, Equatable {
    case unreadableFile(path: String, reason: String)
    case malformed(path: String, problem: String)
    case classCountMismatch(path: String, found: Int, expected: Int, dataset: String)
    case unknownClass(path: String, line: Int, value: String, examples: [String])
    case noDescriptions(path: String)
    case zeroShotNeedsEveryClass(missing: [String])
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            return "cannot read descriptions file \(path): \(reason)"
        case let .malformed(path, problem):
            return "descriptions file \(path) is malformed: \(problem).\n" + DescriptionSet.formatHelp
        case let .classCountMismatch(path, found, expected, dataset):
            return "descriptions file \(path) has \(found) class lists, but \(dataset) has \(expected) classes; "
                + "give one list per class, in the dataset's class order (empty lists are allowed)"
        case let .unknownClass(path, line, value, examples):
            return "descriptions file \(path), line \(line): no class \(value) in the dataset; use a 0-based class "
                + "index or a class name exactly as the dataset names it (e.g. \(examples.map { "\"\($0)\"" }.joined(separator: ", ")))"
        case let .noDescriptions(path):
            return "descriptions file \(path) holds no descriptions"
        case let .zeroShotNeedsEveryClass(missing):
            return "zero-shot classification needs at least one description per class; none for: "
                + missing.prefix(10).joined(separator: ", ") + (missing.count > 10 ? " and \(missing.count - 10) more" : "")
        case let .cannotWrite(path, reason):
            return "cannot write \(path): \(reason)"
        }
    }
}

/// Descriptions read from a file, each with its class, remembering the file's shape for the output.
public struct DescriptionSet: Sendable {
    public enum Format: Sendable, Equatable {
        /// The reference's generate output: a JSON list with one list of strings per class, in class order.
        case perClassLists(classCount: Int)
        /// One JSON object per line: {"class": INDEX or "NAME", "description": "TEXT"}, other keys kept.
        case jsonLines
    }

    public struct Entry: Sendable, Equatable {
        public let classIndex: Int
        public let text: String
    }

    public let format: Format
    public let entries: [Entry]
    /// The JSON Lines objects as read (to echo them with their reward); empty for the list format.
    let lineObjects: [Data]

    public static let formatHelp = """
        Descriptions files:
          JSON, the reference's generate format: one list of descriptions per
          class, in the dataset's class order (empty lists allowed):
            [["a description of class 0", "another"], ["of class 1"], ...]
          JSON Lines: one object per line; "class" is a 0-based index or the
          class name as the dataset spells it (other keys are kept in --output):
            {"class": 0, "description": "a small bird with a red crown"}
            {"class": "sunflower", "description": "yellow petals"}
        """

    public init(format: Format, entries: [Entry]) {
        self.format = format
        self.entries = entries
        lineObjects = []
    }

    init(format: Format, entries: [Entry], lineObjects: [Data]) {
        self.format = format
        self.entries = entries
        self.lineObjects = lineObjects
    }

    public static func load(_ url: URL, classNames: [String], dataset: String) throws -> DescriptionSet {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ScoreError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        return try parse(data, path: url.path, classNames: classNames, dataset: dataset)
    }

    /// Chooses the format by the first non-blank character: `[` for the list format, `{` for JSON Lines.
    public static func parse(_ data: Data, path: String, classNames: [String], dataset: String) throws -> DescriptionSet {
        guard let text = String(data: data, encoding: .utf8) else {
            throw ScoreError.malformed(path: path, problem: "it is not UTF-8 text")
        }
        let set: DescriptionSet
        switch text.first(where: { !$0.isWhitespace }) {
        case "[": set = try parseLists(data, path: path, classNames: classNames, dataset: dataset)
        case "{": set = try parseLines(text, path: path, classNames: classNames)
        case nil: throw ScoreError.noDescriptions(path: path)
        case let c?: throw ScoreError.malformed(path: path, problem: "it starts with '\(c)', neither a JSON list nor a JSON object")
        }
        if set.entries.isEmpty { throw ScoreError.noDescriptions(path: path) }
        return set
    }

    private static func parseLists(_ data: Data, path: String, classNames: [String], dataset: String) throws -> DescriptionSet {
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data) } catch {
            throw ScoreError.malformed(path: path, problem: "invalid JSON (\(error.localizedDescription))")
        }
        guard let lists = json as? [Any] else { throw ScoreError.malformed(path: path, problem: "the top level is not a list") }
        guard lists.count == classNames.count else {
            throw ScoreError.classCountMismatch(path: path, found: lists.count, expected: classNames.count, dataset: dataset)
        }
        var entries: [Entry] = []
        for (c, item) in lists.enumerated() {
            guard let list = item as? [Any] else {
                throw ScoreError.malformed(path: path, problem: "item \(c) (class '\(classNames[c])') is not a list of strings")
            }
            for (j, d) in list.enumerated() {
                guard let s = d as? String else {
                    throw ScoreError.malformed(path: path, problem: "description \(j) of class \(c) ('\(classNames[c])') is not a string")
                }
                entries.append(Entry(classIndex: c, text: s))
            }
        }
        return DescriptionSet(format: .perClassLists(classCount: classNames.count), entries: entries)
    }

    private static func parseLines(_ text: String, path: String, classNames: [String]) throws -> DescriptionSet {
        var byName: [String: Int] = [:]
        for (i, n) in classNames.enumerated() where byName[n] == nil { byName[n] = i }
        var entries: [Entry] = []
        var objects: [Data] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = n + 1
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let raw = Data(trimmed.utf8)
            let parsed: Any
            do { parsed = try JSONSerialization.jsonObject(with: raw) } catch {
                throw ScoreError.malformed(path: path, problem: "line \(lineNo) is not valid JSON")
            }
            guard let obj = parsed as? [String: Any] else {
                throw ScoreError.malformed(path: path, problem: "line \(lineNo) is not a JSON object")
            }
            guard let desc = obj["description"] as? String else {
                throw ScoreError.malformed(path: path, problem: "line \(lineNo) has no \"description\" string")
            }
            let cls: Int
            switch obj["class"] {
            case let s as String:
                guard let i = byName[s] else {
                    throw ScoreError.unknownClass(path: path, line: lineNo, value: "\"\(s)\"", examples: Array(classNames.prefix(3)))
                }
                cls = i
            case let num as NSNumber:
                guard let i = Int(exactly: num.doubleValue) else {
                    throw ScoreError.malformed(path: path, problem: "line \(lineNo): \"class\" \(num) is not a whole number (a 0-based index)")
                }
                guard classNames.indices.contains(i) else {
                    throw ScoreError.unknownClass(path: path, line: lineNo, value: "\(i) (there are \(classNames.count) classes, indices 0..<\(classNames.count))",
                                                  examples: Array(classNames.prefix(3)))
                }
                cls = i
            case nil:
                throw ScoreError.malformed(path: path, problem: "line \(lineNo) has no \"class\" (a 0-based index or a class name)")
            default:
                throw ScoreError.malformed(path: path, problem: "line \(lineNo): \"class\" must be a whole number (0-based index) or a class name")
            }
            entries.append(Entry(classIndex: cls, text: desc))
            objects.append(raw)
        }
        return DescriptionSet(format: .jsonLines, entries: entries, lineObjects: objects)
    }

    /// The rewards in the input's shape: a list per class of numbers, or each JSON Lines object with a "reward".
    public func render(rewards: [Float]) throws -> Data {
        precondition(rewards.count == entries.count, "one reward per description")
        switch format {
        case .perClassLists(let classCount):
            var lists = [[Double]](repeating: [], count: classCount)
            for (e, r) in zip(entries, rewards) { lists[e.classIndex].append(Double(r)) }
            var out = try JSONSerialization.data(withJSONObject: lists, options: [.prettyPrinted])
            out.append(0x0a)
            return out
        case .jsonLines:
            var out = Data()
            for (raw, r) in zip(lineObjects, rewards) {
                var obj = try JSONSerialization.jsonObject(with: raw) as! [String: Any]
                obj["reward"] = Double(r)
                out += try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
                out.append(0x0a)
            }
            return out
        }
    }
}

/// What `ex2 score` does, as a value.
public struct ScoreRequest: Sendable {
    public var vlm: String
    public var dataset: String
    /// The folder holding the datasets; not needed for `folder:PATH`.
    public var dataRoot: URL?
    public var split: String?
    public var descriptions: URL
    public var reward: RewardOptions
    public var zeroShot: Bool

    public init(vlm: String, dataset: String, dataRoot: URL?, split: String? = nil, descriptions: URL,
                reward: RewardOptions = RewardOptions(), zeroShot: Bool = false) {
        self.vlm = vlm
        self.dataset = dataset
        self.dataRoot = dataRoot
        self.split = split
        self.descriptions = descriptions
        self.reward = reward
        self.zeroShot = zeroShot
    }
}

public struct ZeroShotResult: Sendable {
    /// For each image of the split (in the dataset's order): its class and the predicted class.
    public let labels: [Int]
    public let predictions: [Int]
    public let perClassAccuracy: [Double?]
    public var correct: Int { zip(labels, predictions).filter { $0 == $1 }.count }
    public var accuracy: Double { labels.isEmpty ? 0 : Double(correct) / Double(labels.count) }
}

public struct ScoreReport: Sendable {
    public let dataset: String
    public let split: String?
    public let classNames: [String]
    public let scale: Float
    /// Per class, the images its rewards average over.
    public let rewardImageCounts: [Int]
    public let descriptions: DescriptionSet
    /// One per `descriptions.entries` element, in the same order.
    public let rewards: [Float]
    public let zeroShot: ZeroShotResult?
    public let skipped: [UnreadableImage]
    public let notes: [String]

    /// Mean reward of each class's descriptions (nil for a class without descriptions).
    public var classMeans: [Double?] {
        var sum = [Double](repeating: 0, count: classNames.count), n = [Int](repeating: 0, count: classNames.count)
        for (e, r) in zip(descriptions.entries, rewards) { sum[e.classIndex] += Double(r); n[e.classIndex] += 1 }
        return zip(sum, n).map { $1 == 0 ? nil : $0 / Double($1) }
    }

    public var descriptionCounts: [Int] {
        var n = [Int](repeating: 0, count: classNames.count)
        for e in descriptions.entries { n[e.classIndex] += 1 }
        return n
    }

    /// Mean over all descriptions.
    public var overallMean: Double { rewards.isEmpty ? 0 : rewards.reduce(0.0) { $0 + Double($1) } / Double(rewards.count) }
}

public enum Scoring {
    public enum Stage: Sendable { case rewardImages, zeroShotImages }

    /// Loads the VLM and the dataset, embeds the reward images, scores every description, and (with
    /// `zeroShot`) classifies every image of the split by its descriptions.
    public static func run(_ request: ScoreRequest, progress: ((Stage, Int, Int) -> Void)? = nil) throws -> ScoreReport {
        let clip = try VLMLoader.load(spec: request.vlm)
        let root = request.dataRoot ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let dataset = try DatasetLoader.load(name: request.dataset, root: root, split: request.split,
                                             options: .init(skipMissingImages: request.reward.skipUnreadable))
        let descriptions = try DescriptionSet.load(request.descriptions, classNames: dataset.classNames, dataset: request.dataset)
        let described = Set(descriptions.entries.map(\.classIndex))
        if request.zeroShot {
            let missing = dataset.classNames.indices.filter { !described.contains($0) }
            if !missing.isEmpty { throw ScoreError.zeroShotNeedsEveryClass(missing: missing.map { dataset.classNames[$0] }) }
        }
        let model = try RewardModel(clip: clip, dataset: dataset, options: request.reward) { progress?(.rewardImages, $0, $1) }
        let texts = try model.textEmbeddings(descriptions.entries.map(\.text))
        let rewards = try model.table.rewards(textEmbeddings: texts, classes: descriptions.entries.map(\.classIndex))

        var skipped = model.skipped + dataset.skipped.map { UnreadableImage(url: $0.url, reason: $0.reason) }
        var zeroShot: ZeroShotResult?
        if request.zeroShot {
            let (embeddings, zsSkipped) = try model.imageEmbeddings(dataset.images.map(\.url)) { progress?(.zeroShotImages, $0, $1) }
            let already = Set(skipped.map(\.url))
            skipped += zsSkipped.filter { !already.contains($0.url) }
            let prototypes = classPrototypes(texts: texts, classes: descriptions.entries.map(\.classIndex), classCount: dataset.classNames.count)
            var labels: [Int] = [], predictions: [Int] = []
            for (image, e) in zip(dataset.images, embeddings) {
                guard let e else { continue }
                labels.append(image.label)
                predictions.append(nearest(e, prototypes))
            }
            zeroShot = ZeroShotResult(labels: labels, predictions: predictions,
                                      perClassAccuracy: perClassAccuracy(labels, predictions, classCount: dataset.classNames.count))
        }
        return ScoreReport(dataset: dataset.name, split: dataset.split, classNames: dataset.classNames, scale: model.table.scale,
                           rewardImageCounts: model.rewardImages.map(\.count), descriptions: descriptions, rewards: rewards,
                           zeroShot: zeroShot, skipped: skipped, notes: clip.notes)
    }

    /// Per class, the normalised mean of its (normalised) description embeddings; empty for an undescribed class.
    public static func classPrototypes(texts: [[Float]], classes: [Int], classCount: Int) -> [[Float]] {
        var sums = [[Double]](repeating: [], count: classCount)
        for (t, c) in zip(texts, classes) {
            let u = l2Normalized(t)
            if sums[c].isEmpty { sums[c] = [Double](repeating: 0, count: u.count) }
            for (k, v) in u.enumerated() { sums[c][k] += Double(v) }
        }
        return sums.map { $0.isEmpty ? [] : l2Normalized($0.map { Float($0) }) }
    }

    /// For each image embedding, the class whose prototype is nearest (empty prototypes never win).
    public static func classify(_ images: [[Float]], prototypes: [[Float]]) -> [Int] {
        images.map { nearest($0, prototypes) }
    }

    /// The class whose prototype has the largest dot product with the image (ties: the lower index).
    static func nearest(_ image: [Float], _ prototypes: [[Float]]) -> Int {
        var best = -1, bestScore = -Float.infinity
        for (c, p) in prototypes.enumerated() where !p.isEmpty {
            let s = dot(image, p)
            if s > bestScore { best = c; bestScore = s }
        }
        return best
    }

    static func perClassAccuracy(_ labels: [Int], _ predictions: [Int], classCount: Int) -> [Double?] {
        var right = [Int](repeating: 0, count: classCount), n = [Int](repeating: 0, count: classCount)
        for (l, p) in zip(labels, predictions) where l >= 0 && l < classCount {
            n[l] += 1
            if l == p { right[l] += 1 }
        }
        return zip(right, n).map { $1 == 0 ? nil : Double($0) / Double($1) }
    }
}
