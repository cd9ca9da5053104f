// `ex2 report`: a run's findings as one self-contained HTML page (and a Markdown summary on standard
// output), or the numbers behind it as JSON.
import ArgumentParser
import EX2
import Foundation
import Report

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the report of a run: informative vs spurious shares, spurious patterns, attribute kinds, reward by verdict, training curves, comparisons.",
        discussion: """
            Reads RUN/descriptions.json and, when present, RUN/rewards.json and RUN/descriptions.jsonl (ex2 score \
            --run), RUN/inspection.json.jsonl (ex2 inspect --run) and RUN/metrics.jsonl (ex2 train). --compare adds \
            other runs side by side, with the difference in each attribute kind's share and its bootstrap interval.
            """)

    enum Format: String, ExpressibleByArgument { case html, json }

    @Option(name: .customLong("run"), help: ArgumentHelp("The run directory.", valueName: "RUN"))
    var runDirectory: String
    @Option(help: ArgumentHelp("Another run to compare with (repeatable).", valueName: "RUN2"))
    var compare: [String] = []
    @Option(help: "html (the page, and a Markdown summary on standard output) or json (the numbers).")
    var format: Format = .html
    @Option(help: "Where to write it (default: RUN/report.html; for json, standard output).")
    var output: String?
    @Option(help: "Bootstrap resamples for the comparison intervals.") var resamples: Int = 2000
    @Option(help: "Bootstrap seed.") var seed: UInt64 = 0

    func validate() throws {
        guard resamples >= 100 else { throw ValidationError("--resamples must be at least 100") }
    }

    func run() throws {
        let dirs = try ([runDirectory] + compare).map(RunDirectory.init)
        var analyses = try dirs.map { try Analysis.analyse($0) }
        // Runs with the same folder name (out/clip/run, out/align/run) are told apart by their parent.
        if Set(dirs.map(\.name)).count < dirs.count {
            for (i, d) in dirs.enumerated() { analyses[i].run = d.url.deletingLastPathComponent().lastPathComponent + "/" + d.name }
        }
        let base = dirs[0], analysis = analyses[0], others = Array(analyses.dropFirst())
        let comparisons = others.map { Bootstrap.compare(analysis, $0, resamples: resamples, seed: seed) }
        switch format {
        case .json:
            struct Out: Encodable { var run: RunAnalysis; var compared: [RunAnalysis]; var comparisons: [RunComparison] }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try enc.encode(Out(run: analysis, compared: others, comparisons: comparisons))
            if let output { try data.write(to: URL(fileURLWithPath: output), options: .atomic) } else {
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            }
        case .html:
            let url = output.map { URL(fileURLWithPath: $0) } ?? base.report
            try Data(HTMLReport.render(analysis, others: others, comparisons: comparisons).utf8).write(to: url, options: .atomic)
            print(HTMLReport.markdown(analysis, comparisons: comparisons))
            print("wrote the report to \(url.path)")
        }
    }
}
