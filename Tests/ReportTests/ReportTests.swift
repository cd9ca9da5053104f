// The report on a hand-made run whose verdicts, rewards and attribute answers are known: the shares,
// patterns, attribute counts and reward by verdict come out exactly; the page's numbers equal the JSON
// analysis; the page renders in headless Chromium without console errors (screenshot kept); pattern
// grouping and the bootstrap interval on fixed inputs.
import EX2
import EX2TestSupport
import Foundation
@testable import Judge
import XCTest
@testable import Report

final class ReportTests: XCTestCase {
    func testPatternGrouping() {
        XCTAssertEqual(Patterns.mask("Click to enlarge photo of Saint Bernard!", concept: "Saint_Bernard"), "click to enlarge photo of <concept>")
        XCTAssertEqual(Patterns.mask("2012 Audi A5 Coupe stock photo, image 3", concept: "2012 Audi A5 Coupe"), "<concept> stock photo image")
        let items: [(String, String)] = [
            ("Click to enlarge photo of a pug.", "pug"), ("click to enlarge photo of a beagle (2)", "beagle"),
            ("Click to enlarge photo of a Pug, taken in 2019 by", "pug"),
            ("pug wallpaper HD", "pug"), ("Beagle wallpaper HD 1920x1080", "beagle"),
            ("A nice picture.", "pug"),
        ]
        let g = Patterns.group(items)
        XCTAssertEqual(g.map(\.pattern), ["click to enlarge photo of a", "<concept> wallpaper hd"])
        XCTAssertEqual(g.map(\.count), [3, 2])
        XCTAssertEqual(g.map(\.concepts), [2, 2])
        XCTAssertEqual(g[0].examples.count, 3)
        XCTAssertTrue(Patterns.group(items, minimum: 4).isEmpty)
    }

    func testBootstrapInterval() throws {
        // Degenerate samples: the interval is the point.
        let d = try XCTUnwrap(Bootstrap.differenceInterval([false, false, false], [true, true]))
        XCTAssertEqual(d.difference, 1); XCTAssertEqual(d.low, 1); XCTAssertEqual(d.high, 1)
        XCTAssertNil(Bootstrap.differenceInterval([], [true]))
        // 60/200 vs 100/200: the percentile interval is close to the normal one, 0.2 +- 1.96 * 0.0477.
        let a = (0..<200).map { $0 < 60 }, b = (0..<200).map { $0 < 100 }
        let r = try XCTUnwrap(Bootstrap.differenceInterval(a, b, resamples: 4000, seed: 7))
        XCTAssertEqual(r.difference, 0.2, accuracy: 1e-12)
        let se = (0.3 * 0.7 / 200 + 0.5 * 0.5 / 200).squareRoot()
        XCTAssertEqual(r.low, 0.2 - 1.96 * se, accuracy: 0.015)
        XCTAssertEqual(r.high, 0.2 + 1.96 * se, accuracy: 0.015)
        // Seeded: the same interval again; another seed, a slightly different one.
        let again = try XCTUnwrap(Bootstrap.differenceInterval(a, b, resamples: 4000, seed: 7))
        XCTAssertEqual(again.low, r.low); XCTAssertEqual(again.high, r.high)
        let other = try XCTUnwrap(Bootstrap.differenceInterval(a, b, resamples: 4000, seed: 8))
        XCTAssertNotEqual(other.low, r.low)
        XCTAssertEqual(Bootstrap.quantile([0, 1, 2, 3], 0.5), 1.5)
    }

    /// A run folder with three concepts of four descriptions each, judged, scored and with attributes.
    static func handMadeRun(in dir: URL, name: String = "run", flip: Bool = false) throws -> RunDirectory {
        let run = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let config: [String: Any] = ["format": "ex2-train-run", "policy": "models/policy.gguf", "vlm": "clip_tiny",
                                     "dataset": "folder:concepts", "data_root": dir.path]
        try JSONSerialization.data(withJSONObject: config).write(to: run.appendingPathComponent("config.json"))
        let names = ["pug", "beagle", "barn owl"]
        let descriptions = [
            ["A pug with a flat black face and curled tail", "Click to enlarge photo of a pug", "pug wallpaper HD", "a small fawn pug <b>&</b>"],
            ["Click to enlarge photo of a beagle", "A beagle, tricolour with long ears", "beagle wallpaper HD", "A beagle sniffing in a field"],
            ["A barn owl with a heart-shaped white face", "Click to enlarge photo of a barn owl", "barn owl hunting at dusk over fields", "A nice picture."],
        ]
        try JSONSerialization.data(withJSONObject: descriptions).write(to: run.appendingPathComponent("descriptions.json"))
        let rewards = descriptions.enumerated().map { c, l in l.indices.map { j in Double(10 * c + j) / 4 } }
        try JSONSerialization.data(withJSONObject: rewards).write(to: run.appendingPathComponent("rewards.json"))
        // Verdicts: pug yes,no,no,yes; beagle no,yes,no,yes; owl yes,no,yes,unparsed. Attributes for the yes ones.
        let verdicts: [[String?]] = [["yes", "no", "no", "yes"], ["no", "yes", "no", "yes"], ["yes", "no", "yes", nil]]
        let attributes: [[[String]]] = [[["colour", "shape"], [], [], ["colour", "size"]], [[], ["colour", "parts"], [], ["behaviour", "habitat/location"]],
                                        [["colour", "shape"], [], ["behaviour", "habitat/location"], []]]
        let journal = try Journal(url: run.appendingPathComponent("inspection.json.jsonl"),
                                  header: JournalHeader(model: "judge", judgeMode: .local, dataset: "folder:concepts"))
        for c in 0..<3 {
            for j in 0..<4 {
                var v = verdicts[c][j]
                if flip, c == 0, j == 1 { v = "yes" }
                try journal.append(JournalEntry(kind: .knowledge, classIndex: c, className: names[c], index: j, description: descriptions[c][j],
                                                status: v == nil ? .unparsed : .answered, verdict: v, explanation: v.map { "because \($0)" },
                                                pYes: v == "yes" ? 0.9 : 0.1, attributes: nil, attempts: 1, response: "{}"))
                if v == "yes" {
                    try journal.append(JournalEntry(kind: .attributes, classIndex: c, className: names[c], index: j, description: descriptions[c][j],
                                                    status: .answered, verdict: nil, explanation: nil, pYes: nil,
                                                    attributes: flip && c == 0 && j == 1 ? ["habitat/location"] : attributes[c][j],
                                                    attempts: 1, response: "{}"))
                }
            }
        }
        try TestSupport.conceptFolders(names, in: dir)
        let metrics = (1...3).map { "{\"step\":\($0),\"stats\":{\"env/reward_mean\":\(Double($0) * 0.5),\"objective/kl\":\(Double($0) * 0.1),\"objective/kl_coef\":0.2},\"warnings\":[]}" }
        try Data((metrics.joined(separator: "\n") + "\n{\"step\":4,\"sta").utf8).write(to: run.appendingPathComponent("metrics.jsonl"))
        return try RunDirectory(run.path)
    }

    func testHandMadeRunComesOutExactly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try Analysis.analyse(Self.handMadeRun(in: dir))
        XCTAssertEqual(a.classNames, ["pug", "beagle", "barn owl"])
        XCTAssertEqual(a.overall, Share(informative: 6, spurious: 5, unjudged: 1))
        XCTAssertEqual(a.overall.informativeShare!, 6.0 / 11.0, accuracy: 1e-15)
        XCTAssertEqual(a.concepts.map(\.share.informative), [2, 2, 2])
        XCTAssertEqual(a.concepts.map(\.share.spurious), [2, 2, 1])
        XCTAssertEqual(a.concepts[2].share.unjudged, 1)
        // Rewards are (10c + j) / 4: informative ones are pug 0,3; beagle 1,3; owl 0,2.
        XCTAssertEqual(a.rewardByVerdict.informativeMean!, (0.0 + 3 + 11 + 13 + 20 + 22) / 4 / 6, accuracy: 1e-12)
        XCTAssertEqual(a.rewardByVerdict.spuriousMean!, (1.0 + 2 + 10 + 12 + 21) / 4 / 5, accuracy: 1e-12)
        XCTAssertEqual(a.concepts[0].topRewarded, [3, 2, 1])
        XCTAssertEqual(a.concepts[1].meanReward!, (10.0 + 11 + 12 + 13) / 16, accuracy: 1e-12)
        // Attributes: colour in 4 of 6, shape 2, behaviour 2, habitat 2, size 1, parts 1.
        XCTAssertEqual(a.attributeAnswered, 6)
        let counts = Dictionary(uniqueKeysWithValues: a.attributes.map { ($0.kind, $0.count) })
        XCTAssertEqual(counts["colour"], 4); XCTAssertEqual(counts["shape"], 2); XCTAssertEqual(counts["behaviour"], 2)
        XCTAssertEqual(counts["habitat/location"], 2); XCTAssertEqual(counts["size"], 1); XCTAssertEqual(counts["diet"], 0)
        XCTAssertEqual(a.attributes.first { $0.kind == "colour" }?.share, 4.0 / 6.0)
        XCTAssertEqual(a.concepts[2].attributeCounts["behaviour"], 1)
        // Patterns among the five spurious: "click to enlarge photo of a" x3 (3 concepts), "<concept> wallpaper hd" x2.
        XCTAssertEqual(a.patterns.map(\.pattern), ["click to enlarge photo of a", "<concept> wallpaper hd"])
        XCTAssertEqual(a.patterns.map(\.count), [3, 2])
        // The torn last metrics line is skipped.
        XCTAssertEqual(a.training.map(\.step), [1, 2, 3])
        XCTAssertEqual(a.training.last?.kl ?? 0, 0.3, accuracy: 1e-12)
        XCTAssertEqual(a.judge, "judge")
    }

    /// data-key -> data-value of every figure in a page.
    static func figures(_ html: String) -> [String: String] {
        var out: [String: String] = [:]
        let re = try! NSRegularExpression(pattern: "data-key=\"([^\"]*)\" data-value=\"([^\"]*)\"")
        for m in re.matches(in: html, range: NSRange(html.startIndex..., in: html)) {
            out[String(html[Range(m.range(at: 1), in: html)!])] = String(html[Range(m.range(at: 2), in: html)!])
        }
        return out
    }

    /// The value at a dotted path ("concepts.2.share.informative") of a JSON object.
    static func lookup(_ json: Any, _ path: String) -> Any? {
        var cur: Any? = json
        for part in path.split(separator: ".") {
            if let i = Int(part), let a = cur as? [Any] { cur = i < a.count ? a[i] : nil }
            else if let o = cur as? [String: Any] { cur = o[String(part)] } else { return nil }
        }
        return cur
    }

    func testPageNumbersEqualTheJSONAndChromiumRendersIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try Self.handMadeRun(in: dir.appendingPathComponent("a"))
        let other = try Self.handMadeRun(in: dir.appendingPathComponent("b"), flip: true)
        let ex2 = try TestSupport.ex2Executable()
        func run(_ args: [String]) throws -> (Int32, String) { try TestSupport.run(ex2, args) }
        let jsonURL = dir.appendingPathComponent("report.json")
        let (s1, o1) = try run(["report", "--run", base.url.path, "--compare", other.url.path, "--format", "json", "--output", jsonURL.path])
        XCTAssertEqual(s1, 0, o1)
        let (s2, o2) = try run(["report", "--run", base.url.path, "--compare", other.url.path])
        XCTAssertEqual(s2, 0, o2)
        XCTAssertTrue(o2.contains("| pug | 2 | 2 | 0 | 50.0% |"), o2)
        let html = try String(contentsOf: base.report, encoding: .utf8)
        XCTAssertTrue(html.contains("a small fawn pug &lt;b&gt;&amp;&lt;/b&gt;"), "descriptions are escaped")
        XCTAssertFalse(html.contains("<link") || html.contains("src=\"http"), "self-contained")
        // Every figure in the page equals the JSON analysis.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: jsonURL)) as! [String: Any]
        let figs = Self.figures(html)
        XCTAssertGreaterThan(figs.count, 30)
        for (key, value) in figs {
            let path = key.hasPrefix("comparisons.") ? key : "run." + key
            let expected = Self.lookup(json, path)
            if value.isEmpty {
                XCTAssertTrue(expected == nil || expected is NSNull, "\(key): page empty, JSON \(String(describing: expected))")
            } else {
                let e = try XCTUnwrap((expected as? NSNumber)?.doubleValue, "\(key) missing from the JSON")
                XCTAssertEqual(Double(value)!, e, accuracy: 1e-12 * max(1, abs(e)), key)
            }
        }
        XCTAssertEqual(figs["overall.informative"], "6")
        // The comparison: the flipped run has one more informative pug description.
        let cmp = try XCTUnwrap(Self.lookup(json, "comparisons.0.informative_difference") as? Double)
        XCTAssertEqual(cmp, 7.0 / 11 - 6.0 / 11, accuracy: 1e-12)
        XCTAssertTrue(html.contains("<td>share informative: pug</td><td class=\"n\">50.0%</td><td class=\"n\">75.0%</td>"), "per-concept figures side by side")

        // Headless Chromium: no console errors, a screenshot.
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let chromium else { throw XCTSkip("SKIPPED: no chromium (scripts/test.sh installs Debian's chromium)") }
        let shot = TestSupport.repositoryRoot.appendingPathComponent(".build/report-screenshot.png")
        try? FileManager.default.removeItem(at: shot)
        let (status, log) = try TestSupport.run(URL(fileURLWithPath: chromium), [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
            "--user-data-dir=\(dir.appendingPathComponent("chromium").path)", "--window-size=1200,2400",
            "--screenshot=\(shot.path)", base.report.absoluteString])
        XCTAssertEqual(status, 0, log)
        let consoleErrors = log.split(separator: "\n").filter { $0.contains("CONSOLE") && ($0.contains("Uncaught") || $0.contains("Error")) }
        XCTAssertTrue(consoleErrors.isEmpty, consoleErrors.joined(separator: "\n"))
        let png = try Data(contentsOf: shot)
        XCTAssertGreaterThan(png.count, 10_000, "a screenshot with content")
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        // The DOM after scripts ran: the filter box is shown, all rows are there.
        let dom = try TestSupport.run(URL(fileURLWithPath: chromium), [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--user-data-dir=\(dir.appendingPathComponent("chromium2").path)", "--dump-dom", base.report.absoluteString],
            mergeStderr: false).output
        XCTAssertTrue(dom.contains("id=\"filter\""), "the DOM was dumped")
        XCTAssertFalse(dom.contains("id=\"filter\" type=\"search\" placeholder=\"Filter by concept, text, verdict or attribute…\" aria-label=\"filter descriptions\" hidden"),
                       "the script ran and showed the filter")
        XCTAssertEqual(Self.figures(dom).count, figs.count, "the rendered page keeps every figure")
    }

    /// `ex2 demo` end to end at reduced sizes (1 PPO step of batch 4 on four stamps concepts, one
    /// template, the tiny random CLIP, SmolLM2 itself as the judge so that it fits CI): every stage runs
    /// and the run ends with a report that says the VLM is random and the judge small.
    func testDemoRunsEndToEndAndLeavesAReport() throws {
        let root = TestSupport.repositoryRoot
        let smol = root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        let stamps = root.appendingPathComponent("data/stamps")
        guard FileManager.default.fileExists(atPath: smol.path), FileManager.default.fileExists(atPath: stamps.path) else {
            throw XCTSkip("SKIPPED: models/SmolLM2-135M-Instruct.Q4_1.gguf or data/stamps is missing; run scripts/setup.sh")
        }
        let ex2 = try TestSupport.ex2Executable()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-demo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Four concepts of the stamps (symbolic links), one template.
        let concepts = dir.appendingPathComponent("concepts")
        try FileManager.default.createDirectory(at: concepts, withIntermediateDirectories: true)
        for c in ["birds", "fish", "fruit", "trees"] {
            try FileManager.default.createSymbolicLink(at: concepts.appendingPathComponent(c), withDestinationURL: stamps.appendingPathComponent(c))
        }
        let templates = dir.appendingPathComponent("templates.json")
        try Data("[\"Describe a photo of a {}.\"]".utf8).write(to: templates)
        let runDir = dir.appendingPathComponent("run")
        let (status, log) = try TestSupport.run(ex2, [
            "demo", "--vlm", root.appendingPathComponent("Tests/EX2Tests/Fixtures/clip_tiny").path, "--vlm-is-random",
            "--policy", smol.path, "--judge", smol.path, "--dataset", "folder:" + concepts.path, "--templates", templates.path,
            "--output-dir", runDir.path, "--steps", "1", "--batch-size", "4", "--num-images-for-reward", "4",
            "--judge-parallel", "4"], cwd: root)
        XCTAssertEqual(status, 0, log)
        for stage in ["stage 1", "stage 2", "reward of every description", "stage 3: the judge reads", "the report", "RANDOM CLIP"] {
            XCTAssertTrue(log.contains(stage), "\(stage) missing from:\n\(log)")
        }
        let run = try RunDirectory(runDir.path)
        let a = try Analysis.analyse(run)
        XCTAssertEqual(a.descriptions.count, 4)
        XCTAssertEqual(a.overall.total, 4)
        XCTAssertEqual(a.overall.informative + a.overall.spurious + a.overall.unjudged, 4)
        XCTAssertLessThan(a.overall.unjudged, 4, "the judge answered")
        XCTAssertTrue(a.descriptions.allSatisfy { $0.reward != nil }, "every description was scored")
        XCTAssertEqual(a.training.map(\.step), [1])
        let html = try String(contentsOf: run.report, encoding: .utf8)
        XCTAssertTrue(html.contains("randomly initialised CLIP"))
        XCTAssertTrue(html.contains("small local model") && html.contains("ex2 inspect --labelled"), "the unmeasured judge is flagged")
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDir.appendingPathComponent(".judge-port").path), "the judge server was stopped")
    }

    func testRunDirectoryErrorsNameTheFix() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try RunDirectory(dir.path)) { XCTAssertTrue("\($0)".contains("ex2 train --output-dir"), "\($0)") }
        let run = try Self.handMadeRun(in: dir)
        XCTAssertThrowsError(try run.requireFinalAdapter()) { XCTAssertTrue("\($0)".contains("--resume"), "\($0)") }
        try Data("[[1, 2]]".utf8).write(to: run.rewards)
        XCTAssertThrowsError(try Analysis.analyse(run)) { XCTAssertTrue("\($0)".contains("ex2 score --run"), "\($0)") }
    }
}
