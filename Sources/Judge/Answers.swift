// Reading the judge's answers: the verdict and explanation from the message content (a JSON object), the
// local judge's P(Yes) from the log-probabilities at the verdict token, the attribute kinds named; and
// the summary table of an inspection (share informative per concept and overall, attribute counts).
import Foundation

public struct JudgeAnswer: Sendable, Equatable {
    public var verdict: String?
    public var explanation: String?
    public var pYes: Double?
    public var attributes: [String]?

    /// Nil when the body is not a chat completion whose content is a JSON object with the needed field.
    public static func parse(_ body: Data, kind: JournalEntry.Kind, attributes list: [String], yesThreshold: Double,
                             useLogprobs: Bool) -> JudgeAnswer? {
        guard let obj = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let choice = (obj["choices"] as? [[String: Any]])?.first,
              let message = choice["message"] as? [String: Any],
              let content = message["content"] as? String,
              let answer = try? JSONSerialization.jsonObject(with: Data(content.utf8)) as? [String: Any]
        else { return nil }
        let explanation = answer["explanation"] as? String
        switch kind {
        case .knowledge:
            var verdict: String?
            switch answer["increases_knowledge"] {
            case let s as String:
                let t = s.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
                if t.hasPrefix("yes") { verdict = "yes" } else if t.hasPrefix("no") { verdict = "no" }
            case let b as Bool: verdict = b ? "yes" : "no"
            default: break
            }
            guard var v = verdict else { return nil }
            var pYes: Double?
            if useLogprobs, let p = verdictProbability(choice) {
                pYes = p
                v = p >= yesThreshold ? "yes" : "no"
            }
            return JudgeAnswer(verdict: v, explanation: explanation, pYes: pYes)
        case .attributes:
            guard let named = answer["attributes"] as? [Any] else { return nil }
            let known = Set(list.map { $0.lowercased() })
            var kinds: [String] = []
            for case let s as String in named {
                let k = s.trimmingCharacters(in: .whitespaces).lowercased()
                let kind = known.contains(k) ? k : "other"
                if !kinds.contains(kind) { kinds.append(kind) }
            }
            return JudgeAnswer(explanation: explanation, attributes: kinds)
        }
    }

    /// P(Yes) / (P(Yes) + P(No)) at the token that starts the value of "increases_knowledge", from the
    /// top log-probabilities the server returned (OpenAI's choices[0].logprobs.content).
    static func verdictProbability(_ choice: [String: Any]) -> Double? {
        guard let lp = choice["logprobs"] as? [String: Any], let content = lp["content"] as? [[String: Any]] else { return nil }
        var text = ""
        for tok in content {
            guard let t = tok["token"] as? String else { return nil }
            // The verdict token is the first one after `"increases_knowledge"` `:` `"` (any spacing).
            if let r = text.range(of: "\"increases_knowledge\""),
               text[r.upperBound...].replacingOccurrences(of: " ", with: "").replacingOccurrences(of: "\n", with: "") == ":\"" {
                var yes = 0.0, no = 0.0
                let top = (tok["top_logprobs"] as? [[String: Any]]) ?? []
                for cand in top {
                    guard let ct = cand["token"] as? String, let l = cand["logprob"] as? Double else { continue }
                    let s = ct.trimmingCharacters(in: .whitespaces).lowercased()
                    if s.hasPrefix("y") { yes += exp(l) } else if s.hasPrefix("n") { no += exp(l) }
                }
                if top.isEmpty, let l = tok["logprob"] as? Double {
                    if t.lowercased().hasPrefix("y") { yes = exp(l) } else if t.lowercased().hasPrefix("n") { no = exp(l) }
                }
                return yes + no > 0 ? yes / (yes + no) : nil
            }
            text += t
        }
        return nil
    }
}

public struct InspectionSummary: Sendable {
    public struct Row: Sendable {
        public var className: String
        public var answered: Int
        public var informative: Int
        public var unparsed: Int
    }
    public var rows: [Row]
    public var attributeCounts: [(String, Int)]
    public var attributeAnswered: Int

    init(classNames: [String], entries: [JournalEntry], attributeEntries: [JournalEntry], attributeList: [String]) {
        rows = classNames.enumerated().map { c, name in
            let mine = entries.filter { $0.classIndex == c }
            return Row(className: name, answered: mine.filter { $0.status == .answered }.count,
                       informative: mine.filter { $0.verdict == "yes" }.count,
                       unparsed: mine.filter { $0.status == .unparsed }.count)
        }
        var counts: [String: Int] = [:]
        for e in attributeEntries { for a in e.attributes ?? [] { counts[a, default: 0] += 1 } }
        // The list's kinds in its order, then any other kind named (sorted).
        let known = attributeList.map { $0.lowercased() }
        attributeCounts = (known + counts.keys.filter { !known.contains($0) }.sorted()).map { ($0, counts[$0] ?? 0) }
        attributeAnswered = attributeEntries.filter { $0.status == .answered }.count
    }

    public var answered: Int { rows.reduce(0) { $0 + $1.answered } }
    public var informative: Int { rows.reduce(0) { $0 + $1.informative } }
    public var unparsed: Int { rows.reduce(0) { $0 + $1.unparsed } }

    /// The table printed at the end of `ex2 inspect`.
    public func table() -> String {
        let width = max(7, rows.map(\.className.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func share(_ a: Int, _ b: Int) -> String { b == 0 ? "   -  " : String(format: "%5.1f%%", 100 * Double(a) / Double(b)) }
        var out = "\(pad("concept", width))  judged  informative  unparsed\n"
        for r in rows {
            out += "\(pad(r.className, width))  \(String(format: "%6d", r.answered))  \(share(r.informative, r.answered))       \(String(format: "%8d", r.unparsed))\n"
        }
        out += "\(pad("overall", width))  \(String(format: "%6d", answered))  \(share(informative, answered))       \(String(format: "%8d", unparsed))\n"
        if attributeAnswered > 0 {
            out += "\nattribute kinds in the \(attributeAnswered) informative descriptions:\n"
            let w = max(9, attributeCounts.map(\.0.count).max() ?? 0)
            for (k, n) in attributeCounts {
                out += "  \(pad(k, w))  \(String(format: "%5d", n))  \(share(n, attributeAnswered))\n"
            }
        }
        return out
    }
}
