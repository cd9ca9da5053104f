// `ex2 inspect`: stage 3's judge (the reference's inspection.py) over any OpenAI-compatible endpoint,
// with the journal that makes a killed run resumable, then the attribute question, then the table.
import ArgumentParser
import EX2
import Foundation
import Judge

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask an LLM judge whether each description teaches anything about its concept (and, with --attributes, which attribute kinds it uses).",
        discussion: """
            The judge is any OpenAI-compatible chat-completions server: --base-url, else OPENAI_BASE_URL, else \
            OpenAI itself; the key comes from OPENAI_API_KEY or a .env file in the working directory and is never \
            printed. Every answer is appended to OUTPUT.jsonl as it arrives: a rerun of the same command asks only \
            what is missing. OUTPUT (the reference's format: per concept, the response objects as JSON strings) is \
            written once every description has an answer. --judge-mode reference (the default) is the reference's \
            exact conversation, for capable remote judges; --judge-mode local fixes the answer's shape with a JSON \
            schema, shows the judge both verdicts, and reads the verdict from the log-probabilities of Yes and No, \
            for small local judges (as served by `ex2 serve`).
            """)

    @Option(help: "The descriptions (JSON: a list per concept of strings, as `ex2 describe` writes).")
    var descriptions: String?
    @Option(help: "cub, flowers, pets, stanford_cars, stanford_dogs, fgvc_aircraft, or folder:PATH: gives the concept names.")
    var dataset: String?
    @Option(name: .customLong("run"), help: ArgumentHelp("A run directory: judge RUN/descriptions.json for the run's dataset, writing RUN/inspection.json and its journal.", valueName: "RUN"))
    var runDirectory: String?
    @Option(help: ArgumentHelp("Instead of --descriptions and --dataset: judge a labelled set (scripts/judge/labelled-set.json) and report the judge's agreement with its labels.", valueName: "FILE"))
    var labelled: String?
    @Option(help: "Data root for folder datasets given by a relative path.")
    var dataRoot: String?
    @Option(help: "Where to write the judge's responses (the journal goes to OUTPUT.jsonl; default RUN/inspection.json with --run).")
    var output: String?
    @Option(help: "The API's base URL, e.g. http://127.0.0.1:8000/v1 (default: OPENAI_BASE_URL, else OpenAI).")
    var baseURL: String?
    @Option(help: "The judge model.") var model: String = Conversations.referenceModel
    @Option(help: "reference (the reference's conversation) or local (for small local judges).")
    var judgeMode: JudgeMode = .reference
    @Option(help: "Requests in flight at once.") var concurrency: Int = 4
    @Option(help: "Retries of one request on 429, 5xx, timeouts and dropped connections.") var maxRetries: Int = 8
    @Option(help: "Seconds to wait for one answer.") var timeout: Double = 120
    @Flag(help: "Also ask, for each description judged informative, which attribute kinds it mentions.")
    var attributes = false
    @Option(help: "Comma-separated attribute kinds for --attributes.")
    var attributeList: String = Conversations.defaultAttributes.joined(separator: ",")
    @Option(help: "Local mode: the P(Yes) at or above which a description counts as informative.")
    var yesThreshold: Double = 0.5

    func validate() throws {
        guard concurrency >= 1, concurrency <= 256 else { throw ValidationError("--concurrency must be between 1 and 256") }
        guard maxRetries >= 0, timeout > 0 else { throw ValidationError("--max-retries must be >= 0 and --timeout > 0") }
        guard yesThreshold > 0, yesThreshold < 1 else { throw ValidationError("--yes-threshold must be in (0, 1)") }
        if labelled != nil {
            guard descriptions == nil, dataset == nil, runDirectory == nil, !attributes else {
                throw ValidationError("--labelled judges the labelled set's own descriptions: leave out --run, --descriptions, --dataset and --attributes")
            }
        } else if runDirectory == nil && (descriptions == nil || dataset == nil) {
            throw ValidationError("give --descriptions FILE and --dataset NAME, or --run RUN (or --labelled FILE to measure the judge)")
        }
        if runDirectory == nil && output == nil { throw ValidationError("give --output FILE (or --run RUN)") }
    }

    func run() async throws {
        var req: InspectRequest
        var labelledSet: LabelledSet? = nil
        let run = try runDirectory.map(RunDirectory.init)
        let output = output ?? run!.inspection.path
        if let labelled {
            let set = try LabelledSet.load(URL(fileURLWithPath: labelled))
            req = set.request(output: URL(fileURLWithPath: output), name: (labelled as NSString).lastPathComponent)
            labelledSet = set
        } else if let descriptions = try descriptions ?? run.map({ try $0.require($0.descriptions, writtenBy: "ex2 describe").path }),
                  let dataset = dataset ?? run?.dataset {
            let root = dataRoot.map { URL(fileURLWithPath: $0) } ?? run?.dataRoot
            let names = try Describing.classNames(dataset: dataset, dataRoot: root, split: nil)
            let descs = try Self.readDescriptions(descriptions)
            req = InspectRequest(classNames: names, descriptions: descs, dataset: dataset, output: URL(fileURLWithPath: output))
            req.descriptionsPath = descriptions
        } else { throw ValidationError("give --descriptions and --dataset") }
        req.model = model
        req.mode = judgeMode
        req.concurrency = concurrency
        req.yesThreshold = yesThreshold
        let list = attributeList.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if attributes { req.attributes = list }
        let base = ChatEndpoint.baseURL(flag: baseURL)
        let key = ChatEndpoint.apiKey()
        if key == nil && base == ChatEndpoint.openAI {
            throw ValidationError("no API key: set OPENAI_API_KEY (or put it in .env), or point --base-url at another server such as `ex2 serve`")
        }
        let inspector = try Inspector(req, endpoint: ChatEndpoint(baseURL: base, apiKey: key, timeout: timeout, maxRetries: maxRetries))
        let bar = LockedBar()
        let work = Task {
            try await inspector.run(inspector.knowledgeItems) { bar.update(label: "judging", unit: "answers", $0.done, of: $0.total) }
            bar.finish()
            if attributes {
                try await inspector.run(inspector.attributeItems) { bar.update(label: "attributes", unit: "answers", $0.done, of: $0.total) }
                bar.finish()
            }
        }
        // Ctrl-C or SIGTERM cancels the requests in flight; every answer so far is in the journal.
        let signals = [SIGINT, SIGTERM].map { sig -> any DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig)
            s.setEventHandler { work.cancel() }
            s.resume()
            return s
        }
        defer { signals.forEach { $0.cancel() } }
        do {
            try await work.value
        } catch {
            bar.finish()
            await inspector.shutdown()
            if work.isCancelled {
                FileHandle.standardError.write(Data("interrupted: \(inspector.journal.entries.count) answers are kept in \(req.journalURL.path); run the same command again to ask the rest\n".utf8))
                throw ExitCode(130)
            }
            throw error
        }
        await inspector.shutdown()
        let complete = try inspector.writeOutput()
        let summary = inspector.summary()
        if let labelledSet {
            let agreement = labelledSet.agreement(inspector.entry)
            print(agreement.report(), terminator: "")
            return
        }
        print(summary.table(), terminator: "")
        if complete {
            print("wrote the judge's \(summary.answered + summary.unparsed) responses to \(output) (journal: \(req.journalURL.path))")
        }
        if summary.unparsed > 0 {
            print("\(summary.unparsed) answers could not be read (not JSON, or no increases_knowledge); they are in the journal with status unparsed")
        }
    }

    static func readDescriptions(_ path: String) throws -> [[String]] {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw JudgeError.descriptions(path: path, message: "cannot be read (\(error.localizedDescription)); write it with `ex2 describe`")
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data), let lists = obj as? [Any] else {
            throw JudgeError.descriptions(path: path, message: "is not a JSON list (one list of descriptions per concept, as `ex2 describe` writes)")
        }
        return try lists.enumerated().map { c, l in
            guard let strings = l as? [String] else {
                throw JudgeError.descriptions(path: path, message: "entry \(c) is not a list of strings")
            }
            return strings
        }
    }
}

extension JudgeMode: ExpressibleByArgument {}
