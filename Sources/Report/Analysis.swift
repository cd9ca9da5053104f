// What a run says, in numbers: the share of informative vs spurious descriptions (overall and per
// concept), the recurring spurious patterns (concept name masked), the attribute kinds the informative
// ones use, the VLM's reward by verdict, the top-rewarded descriptions, and the training curves. Every
// figure of the report comes from here, and `ex2 report --format json` prints this same structure.
import EX2
import Foundation
import Judge

public struct DescriptionRow: Codable, Sendable, Equatable {
    public var classIndex: Int
    public var className: String
    public var template: Int
    public var text: String
    public var reward: Double?
    /// "informative", "spurious", "unparsed", or nil when not judged.
    public var verdict: String?
    public var pYes: Double?
    public var explanation: String?
    public var attributes: [String]?
    enum CodingKeys: String, CodingKey {
        case classIndex = "class_index", className = "class_name", template, text, reward, verdict, pYes = "p_yes", explanation, attributes
    }
}

public struct Share: Codable, Sendable, Equatable {
    public var informative: Int
    public var spurious: Int
    /// Not judged yet, or the judge's answer could not be read.
    public var unjudged: Int
    public var total: Int { informative + spurious + unjudged }
    /// Informative among the judged (nil when none was judged).
    public var informativeShare: Double? { informative + spurious == 0 ? nil : Double(informative) / Double(informative + spurious) }
    enum CodingKeys: String, CodingKey { case informative, spurious, unjudged, total, informativeShare = "informative_share" }
    public init(informative: Int, spurious: Int, unjudged: Int) {
        self.informative = informative; self.spurious = spurious; self.unjudged = unjudged
    }
    public init(from d: Decoder) throws {
        let c = try d.container(keyedBy: CodingKeys.self)
        informative = try c.decode(Int.self, forKey: .informative); spurious = try c.decode(Int.self, forKey: .spurious)
        unjudged = try c.decode(Int.self, forKey: .unjudged)
    }
    public func encode(to e: Encoder) throws {
        var c = e.container(keyedBy: CodingKeys.self)
        try c.encode(informative, forKey: .informative); try c.encode(spurious, forKey: .spurious)
        try c.encode(unjudged, forKey: .unjudged); try c.encode(total, forKey: .total)
        try c.encode(informativeShare, forKey: .informativeShare)
    }
}

public struct ConceptFigures: Codable, Sendable, Equatable {
    public var className: String
    public var share: Share
    public var meanReward: Double?
    /// Attribute kind -> informative descriptions of this concept that mention it.
    public var attributeCounts: [String: Int]
    public var attributeAnswered: Int
    /// The best-rewarded descriptions (indices into `descriptions`), highest first.
    public var topRewarded: [Int]
    enum CodingKeys: String, CodingKey {
        case className = "class_name", share, meanReward = "mean_reward", attributeCounts = "attribute_counts"
        case attributeAnswered = "attribute_answered", topRewarded = "top_rewarded"
    }
}

public struct SpuriousPattern: Codable, Sendable, Equatable {
    /// The masked, normalised opening shared by the group ("click to enlarge photo of <concept>").
    public var pattern: String
    public var count: Int
    public var concepts: Int
    public var examples: [String]
}

public struct AttributeFigure: Codable, Sendable, Equatable {
    public var kind: String
    public var count: Int
    /// count / informative descriptions with an attribute answer.
    public var share: Double?
}

public struct RewardByVerdict: Codable, Sendable, Equatable {
    public var informativeMean: Double?
    public var informativeCount: Int
    public var spuriousMean: Double?
    public var spuriousCount: Int
    enum CodingKeys: String, CodingKey {
        case informativeMean = "informative_mean", informativeCount = "informative_count", spuriousMean = "spurious_mean"
        case spuriousCount = "spurious_count"
    }
}

public struct TrainingPoint: Codable, Sendable, Equatable {
    public var step: Int
    public var rewardMean: Double?
    public var kl: Double?
    public var klCoef: Double?
    enum CodingKeys: String, CodingKey { case step, rewardMean = "reward_mean", kl, klCoef = "kl_coef" }
}

public struct RunAnalysis: Codable, Sendable {
    public var run: String
    public var policy: String
    public var vlm: String
    public var dataset: String
    public var judge: String?
    public var judgeMode: String?
    public var notes: [String: String]
    public var classNames: [String]
    public var overall: Share
    public var concepts: [ConceptFigures]
    public var patterns: [SpuriousPattern]
    public var attributes: [AttributeFigure]
    public var attributeAnswered: Int
    public var rewardByVerdict: RewardByVerdict
    public var training: [TrainingPoint]
    public var descriptions: [DescriptionRow]
    enum CodingKeys: String, CodingKey {
        case run, policy, vlm, dataset, judge, judgeMode = "judge_mode", notes, classNames = "class_names", overall, concepts
        case patterns, attributes, attributeAnswered = "attribute_answered", rewardByVerdict = "reward_by_verdict", training
        case descriptions
    }
}

public enum Analysis {
    public static let topPerConcept = 3

    /// Analyses a run directory: descriptions.json (required), rewards.json, the inspection journal and
    /// metrics.jsonl when present.
    public static func analyse(_ run: RunDirectory, attributeList: [String] = Conversations.defaultAttributes) throws -> RunAnalysis {
        let descURL = try run.require(run.descriptions, writtenBy: "ex2 describe")
        guard let d = try? Data(contentsOf: descURL), let lists = try? JSONSerialization.jsonObject(with: d) as? [[String]] else {
            throw RunDirectoryError(path: descURL.path, message: "is not a list per concept of descriptions (as `ex2 describe` writes)")
        }
        var rewards: [[Double]]? = nil
        if FileManager.default.fileExists(atPath: run.rewards.path) {
            guard let r = try? Data(contentsOf: run.rewards), let v = try? JSONSerialization.jsonObject(with: r) as? [[Double]],
                  v.count == lists.count, zip(v, lists).allSatisfy({ $0.count == $1.count }) else {
                throw RunDirectoryError(path: run.rewards.path, message: "does not match descriptions.json (a list per concept of numbers, one per description); run `ex2 score --run \(run.url.path)` again")
            }
            rewards = v
        }
        var header: JournalHeader? = nil
        var entries: [JournalEntry] = []
        if FileManager.default.fileExists(atPath: run.inspectionJournal.path) {
            (header, entries) = try Journal.read(run.inspectionJournal)
        }
        let names = try classNames(run, count: lists.count, entries: entries)
        let metrics = FileManager.default.fileExists(atPath: run.metrics.path) ? try trainingCurve(run.metrics) : []
        return analyse(run: run.name, policy: run.policy, vlm: run.vlm, dataset: run.dataset, notes: run.notes, classNames: names,
                       descriptions: lists, rewards: rewards, journalHeader: header, entries: entries, training: metrics,
                       attributeList: attributeList)
    }

    /// Class names: from descriptions.jsonl, else the journal, else the dataset itself.
    static func classNames(_ run: RunDirectory, count: Int, entries: [JournalEntry]) throws -> [String] {
        if FileManager.default.fileExists(atPath: run.descriptionRecords.path) {
            var names = [String?](repeating: nil, count: count)
            for r in try DescriptionRecords.read(run.descriptionRecords) where r.classIndex < count { names[r.classIndex] = r.className }
            if names.allSatisfy({ $0 != nil }) { return names.map { $0! } }
        }
        var names = [String?](repeating: nil, count: count)
        for e in entries where e.classIndex < count { names[e.classIndex] = e.className }
        if names.allSatisfy({ $0 != nil }) { return names.map { $0! } }
        let fromDataset = try Describing.classNames(dataset: run.dataset, dataRoot: run.dataRoot, split: run.split)
        guard fromDataset.count == count else {
            throw RunDirectoryError(path: run.descriptions.path, message: "has \(count) concepts but the dataset \(run.dataset) has \(fromDataset.count)")
        }
        return fromDataset
    }

    public static func trainingCurve(_ url: URL) throws -> [TrainingPoint] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw RunDirectoryError(path: url.path, message: "cannot be read")
        }
        var out: [TrainingPoint] = []
        for line in text.split(separator: "\n") {
            // A torn last line (a killed run) is skipped.
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let step = o["step"] as? Int,
                  let stats = o["stats"] as? [String: Any] else { continue }
            out.append(TrainingPoint(step: step, rewardMean: stats["env/reward_mean"] as? Double, kl: stats["objective/kl"] as? Double,
                                     klCoef: stats["objective/kl_coef"] as? Double))
        }
        return out
    }

    /// The analysis of given inputs (the library call behind `analyse(_:)`).
    public static func analyse(run: String, policy: String, vlm: String, dataset: String, notes: [String: String] = [:],
                               classNames: [String], descriptions lists: [[String]], rewards: [[Double]]?,
                               journalHeader: JournalHeader?, entries: [JournalEntry], training: [TrainingPoint],
                               attributeList: [String] = Conversations.defaultAttributes) -> RunAnalysis {
        var knowledge: [JournalEntry.Key: JournalEntry] = [:], attrs: [JournalEntry.Key: JournalEntry] = [:]
        for e in entries {
            if e.kind == .knowledge { knowledge[e.key] = e } else { attrs[e.key] = e }
        }
        var rows: [DescriptionRow] = []
        for (c, list) in lists.enumerated() {
            for (j, text) in list.enumerated() {
                let k = knowledge[.init(kind: .knowledge, classIndex: c, index: j, description: text)]
                let a = attrs[.init(kind: .attributes, classIndex: c, index: j, description: text)]
                let verdict: String? = k.map { $0.status == .unparsed ? "unparsed" : ($0.verdict == "yes" ? "informative" : "spurious") }
                rows.append(DescriptionRow(classIndex: c, className: classNames[c], template: j, text: text, reward: rewards?[c][j],
                                           verdict: verdict, pYes: k?.pYes, explanation: k?.explanation,
                                           attributes: verdict == "informative" && a?.status == .answered ? a?.attributes : nil))
            }
        }
        func share(_ rs: some Sequence<DescriptionRow>) -> Share {
            var s = Share(informative: 0, spurious: 0, unjudged: 0)
            for r in rs {
                switch r.verdict { case "informative": s.informative += 1; case "spurious": s.spurious += 1; default: s.unjudged += 1 }
            }
            return s
        }
        func mean(_ xs: [Double]) -> Double? { xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count) }
        let known = attributeList.map { $0.lowercased() }
        var concepts: [ConceptFigures] = []
        for (c, name) in classNames.enumerated() {
            let idx = rows.indices.filter { rows[$0].classIndex == c }
            var counts: [String: Int] = [:]
            var answered = 0
            for i in idx { if let a = rows[i].attributes { answered += 1; for k in a { counts[k, default: 0] += 1 } } }
            let top = idx.filter { rows[$0].reward != nil }.sorted { (rows[$0].reward!, -$0) > (rows[$1].reward!, -$1) }
            concepts.append(ConceptFigures(className: name, share: share(idx.map { rows[$0] }),
                                           meanReward: mean(idx.compactMap { rows[$0].reward }), attributeCounts: counts,
                                           attributeAnswered: answered, topRewarded: Array(top.prefix(topPerConcept))))
        }
        let withAttrs = rows.filter { $0.attributes != nil }
        var totals: [String: Int] = [:]
        for r in withAttrs { for k in r.attributes! { totals[k, default: 0] += 1 } }
        let kinds = known + totals.keys.filter { !known.contains($0) }.sorted()
        let attributes = kinds.map { k in
            AttributeFigure(kind: k, count: totals[k] ?? 0, share: withAttrs.isEmpty ? nil : Double(totals[k] ?? 0) / Double(withAttrs.count))
        }
        let inf = rows.filter { $0.verdict == "informative" }.compactMap(\.reward)
        let spu = rows.filter { $0.verdict == "spurious" }.compactMap(\.reward)
        return RunAnalysis(run: run, policy: policy, vlm: vlm, dataset: dataset, judge: journalHeader?.model,
                           judgeMode: journalHeader?.judgeMode.rawValue, notes: notes, classNames: classNames,
                           overall: share(rows), concepts: concepts,
                           patterns: Patterns.group(rows.filter { $0.verdict == "spurious" }.map { ($0.text, $0.className) }),
                           attributes: attributes, attributeAnswered: withAttrs.count,
                           rewardByVerdict: RewardByVerdict(informativeMean: mean(inf), informativeCount: inf.count,
                                                            spuriousMean: mean(spu), spuriousCount: spu.count),
                           training: training, descriptions: rows)
    }
}

/// Recurring spurious patterns: each description with its concept's name masked as <concept>,
/// lower-cased, punctuation and words with digits (sizes, years, counts) dropped, and cut to its first
/// words (descriptions stop mid-sentence at the token limit, so their tails differ); descriptions with
/// the same opening form one pattern.
public enum Patterns {
    public static let words = 6

    public static func mask(_ text: String, concept: String) -> String {
        var t = text.lowercased()
        let name = concept.lowercased()
        // The name as written, and with underscores or hyphens read as spaces (Saint_Bernard, Saint Bernard).
        let variants = Set([name, name.replacingOccurrences(of: "_", with: " "), name.replacingOccurrences(of: "-", with: " ")])
        for v in variants.sorted(by: { $0.count > $1.count }) where !v.isEmpty {
            t = t.replacingOccurrences(of: v, with: " \u{1}concept\u{1} ")
        }
        var out = ""
        for ch in t.unicodeScalars {
            if ch == "\u{1}" { out.unicodeScalars.append(ch) }
            else if CharacterSet.alphanumerics.contains(ch) || ch == "'" { out.unicodeScalars.append(ch) }
            else { out += " " }
        }
        return out.split(separator: " ").filter { !$0.contains(where: \.isNumber) }
            .map { $0 == "\u{1}concept\u{1}" ? "<concept>" : String($0) }.joined(separator: " ")
    }

    public static func key(_ text: String, concept: String) -> String {
        mask(text, concept: concept).split(separator: " ").prefix(words).joined(separator: " ")
    }

    /// Patterns of at least `minimum` descriptions, most frequent first (ties by pattern), with up to
    /// three distinct examples each.
    public static func group(_ items: [(text: String, concept: String)], minimum: Int = 2, limit: Int = 20) -> [SpuriousPattern] {
        var groups: [String: (count: Int, concepts: Set<String>, examples: [String])] = [:]
        for (text, concept) in items {
            let k = key(text, concept: concept)
            guard !k.isEmpty else { continue }
            var g = groups[k] ?? (0, [], [])
            g.count += 1
            g.concepts.insert(concept)
            if g.examples.count < 3, !g.examples.contains(text) { g.examples.append(text) }
            groups[k] = g
        }
        return groups.filter { $0.value.count >= minimum }
            .map { SpuriousPattern(pattern: $0.key, count: $0.value.count, concepts: $0.value.concepts.count, examples: $0.value.examples) }
            .sorted { ($0.count, $1.pattern) > ($1.count, $0.pattern) }
            .prefix(limit).map { $0 }
    }
}
