// One folder per experiment. `ex2 train --output-dir RUN` starts it (config.json, metrics.jsonl,
// rollouts.jsonl, checkpoints, final/); `--run RUN` on describe, score, inspect and report reads the
// run's settings and earlier outputs from it and writes each stage's outputs into it, so that no stage
// needs paths spelt out twice:
//   descriptions.json     stage 2 (ex2 describe): a list per concept, one description per template
//   rewards.json          ex2 score: each description's VLM reward, in the same shape
//   descriptions.jsonl    ex2 score: one record per description (class, template, text, reward)
//   inspection.json(.jsonl) stage 3 (ex2 inspect): the judge's responses and their journal
//   report.html           ex2 report
import Foundation

public struct RunDirectory: Sendable {
    public let url: URL
    public let policy: String
    public let vlm: String
    public let dataset: String
    public let dataRoot: URL?
    public let split: String?
    public let templates: URL?
    public let maxNewTokens: Int?
    /// Free-form notes for the report (demo.json: {"vlm_is_random": true, "judge": "..."}), when present.
    public let notes: [String: String]

    public var config: URL { url.appendingPathComponent("config.json") }
    public var finalAdapter: URL { url.appendingPathComponent("final") }
    public var descriptions: URL { url.appendingPathComponent("descriptions.json") }
    public var rewards: URL { url.appendingPathComponent("rewards.json") }
    public var descriptionRecords: URL { url.appendingPathComponent("descriptions.jsonl") }
    public var inspection: URL { url.appendingPathComponent("inspection.json") }
    public var inspectionJournal: URL { url.appendingPathComponent("inspection.json.jsonl") }
    public var metrics: URL { url.appendingPathComponent("metrics.jsonl") }
    public var report: URL { url.appendingPathComponent("report.html") }
    public var notesFile: URL { url.appendingPathComponent("notes.json") }
    public var name: String { url.lastPathComponent }

    public init(_ path: String) throws {
        url = URL(fileURLWithPath: path).standardizedFileURL
        let configURL = url.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw RunDirectoryError(path: configURL.path, message: "is missing: \(path) is not a run directory; start one with `ex2 train --output-dir \(path)`")
        }
        guard let data = try? Data(contentsOf: configURL),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw RunDirectoryError(path: configURL.path, message: "is not a JSON object (a run's settings, as `ex2 train` writes them)")
        }
        guard let policy = obj["policy"] as? String, let vlm = obj["vlm"] as? String, let dataset = obj["dataset"] as? String else {
            throw RunDirectoryError(path: configURL.path, message: "lacks policy, vlm or dataset: was it written by `ex2 train`?")
        }
        self.policy = policy; self.vlm = vlm; self.dataset = dataset
        dataRoot = (obj["data_root"] as? String).map { URL(fileURLWithPath: $0) }
        split = obj["split"] as? String
        templates = (obj["templates"] as? String).map { URL(fileURLWithPath: $0) }
        maxNewTokens = (obj["generation"] as? [String: Any])?["max_new_tokens"] as? Int
        let notesURL = url.appendingPathComponent("notes.json")
        if let d = try? Data(contentsOf: notesURL), let n = try? JSONSerialization.jsonObject(with: d) as? [String: Any] {
            notes = n.compactMapValues { v in (v as? String) ?? (v as? Bool).map { $0 ? "true" : "false" } }
        } else {
            notes = [:]
        }
    }

    /// The adapter stage 2 describes with: the run's final one, which must exist.
    public func requireFinalAdapter() throws -> URL {
        let f = finalAdapter
        guard FileManager.default.fileExists(atPath: f.appendingPathComponent("adapter_config.json").path) else {
            throw RunDirectoryError(path: f.path, message: "has no adapter: the training has not finished; run `ex2 train --output-dir \(url.path) --resume`, or pass --adapter \(url.path)/step_N")
        }
        return f
    }

    /// A stage's input file from an earlier stage, which must exist.
    public func require(_ file: URL, writtenBy stage: String) throws -> URL {
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw RunDirectoryError(path: file.path, message: "is missing: run `\(stage) --run \(url.path)` first")
        }
        return file
    }

    /// Records notes for the report (merged into notes.json).
    public func addNotes(_ new: [String: String]) throws {
        var all = notes
        for (k, v) in new { all[k] = v }
        let data = try JSONSerialization.data(withJSONObject: all, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: notesFile, options: .atomic)
    }
}

public struct RunDirectoryError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path) \(message)" }
}

/// RUN/descriptions.jsonl: one record per description, {"class", "class_name", "template",
/// "template_text", "text", "reward"}, in class order then template order.
public enum DescriptionRecords {
    public struct Record: Sendable, Equatable {
        public var classIndex: Int, className: String, template: Int, templateText: String?, text: String, reward: Double?
    }

    /// Records of the per-class-list format: description j of a class came from template j.
    public static func write(classNames: [String], entries: [DescriptionSet.Entry], rewards: [Float], templates: [String], to url: URL) throws {
        var counters = [Int](repeating: 0, count: classNames.count)
        var out = Data()
        for (e, r) in zip(entries, rewards) {
            let j = counters[e.classIndex]
            counters[e.classIndex] += 1
            var obj: [String: Any] = ["class": e.classIndex, "class_name": classNames[e.classIndex], "template": j, "text": e.text,
                                      "reward": Double(r)]
            if j < templates.count { obj["template_text"] = templates[j] }
            out += try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
            out += Data("\n".utf8)
        }
        try out.write(to: url, options: .atomic)
    }

    public static func read(_ url: URL) throws -> [Record] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw RunDirectoryError(path: url.path, message: "cannot be read (\(error.localizedDescription)); write it with `ex2 score --run`")
        }
        var out: [Record] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let c = o["class"] as? Int, let name = o["class_name"] as? String, let t = o["template"] as? Int,
                  let s = o["text"] as? String else {
                throw RunDirectoryError(path: url.path, message: "line \(n + 1) is not a description record (class, class_name, template, text)")
            }
            out.append(Record(classIndex: c, className: name, template: t, templateText: o["template_text"] as? String, text: s,
                              reward: o["reward"] as? Double))
        }
        return out
    }
}
