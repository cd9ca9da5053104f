// How far to trust a judge: a set of descriptions labelled by the reference question's rule
// (scripts/judge/labelled-set.json), asked like any inspection (`ex2 inspect --labelled FILE`), and the
// judge's agreement with the labels: overall, per dataset, the confusion matrix and, when the answers
// carry P(Yes) (local mode), the agreement at every threshold, so that a calibrated threshold can be
// chosen and its effect seen.
import Foundation

public struct LabelledSet: Sendable {
    public struct Item: Sendable, Equatable {
        public var dataset: String
        public var className: String
        public var description: String
        /// true: the snippet teaches something about the concept ("Yes").
        public var informative: Bool
    }
    public var items: [Item]
    /// Concept names in first-seen order, and each item's concept index and index within its concept.
    public let classNames: [String]
    public let descriptions: [[String]]
    public let positions: [(classIndex: Int, index: Int)]

    public init(items: [Item]) {
        self.items = items
        var names: [String] = [], lists: [[String]] = [], where_: [String: Int] = [:], pos: [(Int, Int)] = []
        for it in items {
            let key = it.dataset + "\u{0}" + it.className
            let c = where_[key] ?? { names.append(it.className); lists.append([]); where_[key] = names.count - 1; return names.count - 1 }()
            pos.append((c, lists[c].count))
            lists[c].append(it.description)
        }
        classNames = names; descriptions = lists; positions = pos
    }

    public static func load(_ url: URL) throws -> LabelledSet {
        let path = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw JudgeError.descriptions(path: path, message: "cannot be read (\(error.localizedDescription))")
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let raw = obj["items"] as? [Any] else {
            throw JudgeError.descriptions(path: path, message: "is not a labelled set: expected a JSON object with an \"items\" list")
        }
        var items: [Item] = []
        for (i, r) in raw.enumerated() {
            guard let o = r as? [String: Any], let cls = o["class_name"] as? String, let d = o["description"] as? String,
                  let label = o["label"] as? String, ["yes", "no"].contains(label.lowercased()) else {
                throw JudgeError.descriptions(path: path, message: "item \(i) needs class_name, description and label (Yes or No)")
            }
            items.append(Item(dataset: o["dataset"] as? String ?? "", className: cls, description: d, informative: label.lowercased() == "yes"))
        }
        guard !items.isEmpty else { throw JudgeError.descriptions(path: path, message: "has no items") }
        return LabelledSet(items: items)
    }

    public func request(output: URL, name: String) -> InspectRequest {
        var r = InspectRequest(classNames: classNames, descriptions: descriptions, dataset: "labelled:" + name, output: output)
        r.descriptionsPath = name
        return r
    }

    /// The judge's answers set against the labels (`entry` looks up the knowledge question of each
    /// item; missing or unparsed answers count as disagreements).
    public func agreement(_ entry: (JournalEntry.Key) -> JournalEntry?) -> Agreement {
        Agreement(items: items, answers: zip(items, positions).map { it, p in
            entry(JournalEntry.Key(kind: .knowledge, classIndex: p.classIndex, index: p.index, description: it.description))
        })
    }
}

public struct Agreement: Sendable {
    public struct Counts: Sendable, Equatable {
        public var yesYes = 0, yesNo = 0, noYes = 0, noNo = 0, missing = 0  // label-verdict
        public var total: Int { yesYes + yesNo + noYes + noNo + missing }
        public var agreeing: Int { yesYes + noNo }
        public var share: Double { total == 0 ? 0 : Double(agreeing) / Double(total) }
        mutating func add(label: Bool, verdict: Bool?) {
            switch (label, verdict) {
            case (_, nil): missing += 1
            case (true, true?): yesYes += 1
            case (true, false?): yesNo += 1
            case (false, true?): noYes += 1
            case (false, false?): noNo += 1
            }
        }
    }
    public let items: [LabelledSet.Item]
    public let answers: [JournalEntry?]

    func verdict(_ e: JournalEntry?, threshold: Double?) -> Bool? {
        guard let e, e.status == .answered else { return nil }
        if let threshold, let p = e.pYes { return p >= threshold }
        return e.verdict == "yes"
    }

    /// The verdict the judge wrote in its answer's text, whatever its log-probabilities said.
    static func writtenVerdict(_ e: JournalEntry?) -> Bool? {
        guard let e, e.status == .answered,
              let a = JudgeAnswer.parse(Data(e.response.utf8), kind: .knowledge, attributes: [], yesThreshold: 0.5, useLogprobs: false)
        else { return nil }
        return a.verdict == "yes"
    }

    /// Counts at a threshold on P(Yes) (nil: the verdicts as journaled).
    public func counts(threshold: Double? = nil, dataset: String? = nil) -> Counts {
        var c = Counts()
        for (it, e) in zip(items, answers) where dataset == nil || it.dataset == dataset {
            c.add(label: it.informative, verdict: verdict(e, threshold: threshold))
        }
        return c
    }

    /// Counts of the verdicts as written in the answers' text (for local mode: without the log-probabilities).
    public var writtenCounts: Counts {
        var c = Counts()
        for (it, e) in zip(items, answers) { c.add(label: it.informative, verdict: Self.writtenVerdict(e)) }
        return c
    }

    public var hasProbabilities: Bool { answers.contains { $0?.pYes != nil } }

    /// Agreement at thresholds 0.05, 0.10, ..., 0.95 (answers without P(Yes) keep their verdict).
    public var sweep: [(threshold: Double, counts: Counts)] {
        (1...19).map { Double($0) / 20 }.map { ($0, counts(threshold: $0)) }
    }

    public var disagreements: [(item: LabelledSet.Item, answer: JournalEntry?)] {
        zip(items, answers).filter { verdict($1, threshold: nil) != $0.informative }.map { ($0, $1) }
    }

    public func report() -> String {
        func pct(_ c: Counts) -> String { String(format: "%5.1f%% (%d/%d)", 100 * c.share, c.agreeing, c.total) }
        let all = counts()
        var out = "agreement with the labels: \(pct(all))\n"
        out += "  labelled Yes: judged yes \(all.yesYes), no \(all.yesNo); labelled No: judged yes \(all.noYes), no \(all.noNo)"
        out += all.missing > 0 ? "; \(all.missing) without a usable answer\n" : "\n"
        var datasets: [String] = []
        for it in items where !datasets.contains(it.dataset) { datasets.append(it.dataset) }
        if datasets.count > 1 {
            for d in datasets { out += "  \(d.isEmpty ? "(no dataset)" : d): \(pct(counts(dataset: d)))\n" }
        }
        if hasProbabilities {
            out += "  the verdicts as written in the answers (not read from P(Yes)): \(pct(writtenCounts))\n"
            out += "agreement by P(Yes) threshold:\n"
            let best = sweep.max { $0.counts.agreeing < $1.counts.agreeing }!
            for (t, c) in sweep {
                out += String(format: "  %.2f  %@%@\n", t, pct(c), c.agreeing == best.counts.agreeing ? "  <- best" : "")
            }
        }
        let wrong = disagreements
        if !wrong.isEmpty {
            out += "disagreements (label, judge, P(Yes)):\n"
            for (it, e) in wrong {
                let v = e.map { $0.status == .answered ? ($0.verdict ?? "-") : "unparsed" } ?? "missing"
                let p = e?.pYes.map { String(format: " %.2f", $0) } ?? ""
                out += "  \(it.informative ? "Yes" : "No ") \(v)\(p)  [\(it.className)] \(it.description)\n"
            }
        }
        return out
    }
}
