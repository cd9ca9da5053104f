// The judge client: the reference's conversation against Python's own rendering of it, the answer
// parsing, and `ex2 inspect` as a subprocess against the fault-injecting loopback stub
// (scripts/test-support/openai_stub.py): every description ends with exactly one stored verdict, and a
// SIGKILL mid-run followed by a rerun asks nothing again that was already answered.
import Foundation
import EX2TestSupport
import XCTest
@testable import Judge

final class JudgeTests: XCTestCase {
    static let root = TestSupport.repositoryRoot

    func fixture(_ name: String) throws -> Any {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil))
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    }

    func testReferenceConversationMatchesPython() throws {
        let fx = try fixture("reference_messages.json") as! [String: Any]
        let cases = fx["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 5)
        for c in cases {
            let expected = (c["messages"] as! [[String: String]]).map { ChatMessage(role: $0["role"]!, content: $0["content"]!) }
            XCTAssertEqual(Conversations.reference(className: c["class_name"] as! String, description: c["description"] as! String), expected)
        }
        for (s, json) in fx["json_strings"] as! [String: String] {
            XCTAssertEqual(Conversations.pythonJSONString(s), json, "json.dumps(\(s.debugDescription))")
        }
    }

    func completion(content: String, logprobs: Any? = nil) -> Data {
        var choice: [String: Any] = ["index": 0, "message": ["role": "assistant", "content": content], "finish_reason": "stop"]
        if let logprobs { choice["logprobs"] = logprobs }
        return try! JSONSerialization.data(withJSONObject: ["id": "x", "object": "chat.completion", "choices": [choice]])
    }

    func testAnswerParsing() {
        let list = Conversations.defaultAttributes
        func parse(_ d: Data, _ kind: JournalEntry.Kind = .knowledge, logprobs: Bool = false) -> JudgeAnswer? {
            JudgeAnswer.parse(d, kind: kind, attributes: list, yesThreshold: 0.5, useLogprobs: logprobs)
        }
        XCTAssertEqual(parse(completion(content: "{\"explanation\": \"e\", \"increases_knowledge\": \"Yes\"}"))?.verdict, "yes")
        XCTAssertEqual(parse(completion(content: "{\"increases_knowledge\": \" no.\"}"))?.verdict, "no")
        XCTAssertEqual(parse(completion(content: "{\"increases_knowledge\": true}"))?.verdict, "yes")
        XCTAssertNil(parse(completion(content: "Yes, it does.")))
        XCTAssertNil(parse(completion(content: "{\"explanation\": \"e\"}")))
        XCTAssertNil(parse(completion(content: "{\"increases_knowledge\": \"maybe\"}")))
        XCTAssertNil(parse(Data("{\"choices\": [".utf8)))
        // Attributes: known kinds kept (lower-cased, once), unknown ones become "other".
        let a = parse(completion(content: "{\"explanation\": \"e\", \"attributes\": [\"Colour\", \"wings\", \"colour\", \"habitat/location\"]}"), .attributes)
        XCTAssertEqual(a?.attributes, ["colour", "other", "habitat/location"])
        // Local mode: the verdict comes from P(Yes) vs P(No) at the token after "increases_knowledge": ".
        func tok(_ t: String, _ lp: Double, _ top: [(String, Double)] = []) -> [String: Any] {
            ["token": t, "logprob": lp, "top_logprobs": top.map { ["token": $0.0, "logprob": $0.1] }]
        }
        let lp: [String: Any] = ["content": [tok("{\n", 0), tok("\"increases", 0), tok("_knowledge", 0), tok("\":", 0), tok(" \"", 0),
                                             tok("Yes", log(0.4), [("Yes", log(0.4)), ("No", log(0.35)), ("Y", log(0.05)), ("maybe", log(0.1))]),
                                             tok("\",", 0)]]
        let local = parse(completion(content: "{\n\"increases_knowledge\": \"No\",\n\"explanation\": \"e\"\n}", logprobs: lp), logprobs: true)
        XCTAssertEqual(local?.pYes ?? 0, 0.45 / 0.8, accuracy: 1e-9)
        XCTAssertEqual(local?.verdict, "yes", "P(Yes) 0.5625 >= 0.5 overrides the sampled No")
        let strict = JudgeAnswer.parse(completion(content: "{\"increases_knowledge\": \"Yes\"}", logprobs: lp), kind: .knowledge,
                                       attributes: list, yesThreshold: 0.6, useLogprobs: true)
        XCTAssertEqual(strict?.verdict, "no")
    }

    func testDotEnvAndRetryAfter() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-dotenv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "# comment\nexport OPENAI_API_KEY=\"sk-test 1\"\nOPENAI_BASE_URL=http://127.0.0.1:9/v1 # local\nBROKEN\n"
            .write(to: dir.appendingPathComponent(".env"), atomically: true, encoding: .utf8)
        XCTAssertEqual(ChatEndpoint.apiKey(environment: [:], directory: dir), "sk-test 1")
        XCTAssertEqual(ChatEndpoint.apiKey(environment: ["OPENAI_API_KEY": "env"], directory: dir), "env")
        XCTAssertEqual(ChatEndpoint.baseURL(flag: nil, environment: [:], directory: dir), "http://127.0.0.1:9/v1")
        XCTAssertEqual(ChatEndpoint.baseURL(flag: "http://x/v1", environment: [:], directory: dir), "http://x/v1")
        XCTAssertEqual(ChatClient.parseRetryAfter("3"), 3)
        XCTAssertEqual(ChatClient.parseRetryAfter("100000"), 600)
        let soon = Date().addingTimeInterval(30)
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = TimeZone(identifier: "GMT"); f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        XCTAssertEqual(ChatClient.parseRetryAfter(f.string(from: soon)) ?? -1, 30, accuracy: 2)
        XCTAssertNil(ChatClient.parseRetryAfter("soon"))
    }

    func testLabelledSetAgreementAndThresholds() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-labelled-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        // Two datasets, a concept name shared by both (kept apart), labels Yes/No/yes.
        let items: [[String: Any]] = [
            ["dataset": "pets", "class_name": "pug", "description": "a pug, flat face", "label": "Yes"],
            ["dataset": "pets", "class_name": "pug", "description": "A photo of a pug.", "label": "No"],
            ["dataset": "dogs", "class_name": "pug", "description": "pug wallpaper", "label": "No"],
            ["dataset": "dogs", "class_name": "beagle", "description": "a beagle, long ears", "label": "yes"],
        ]
        try JSONSerialization.data(withJSONObject: ["items": items]).write(to: url)
        let set = try LabelledSet.load(url)
        XCTAssertEqual(set.classNames, ["pug", "pug", "beagle"])
        XCTAssertEqual(set.descriptions, [["a pug, flat face", "A photo of a pug."], ["pug wallpaper"], ["a beagle, long ears"]])
        // Answers: P(Yes) 0.9, 0.6, 0.3 and an unparsed one; the written verdicts say yes, no, no.
        func entry(_ c: Int, _ j: Int, p: Double?, written: String, status: JournalEntry.Status = .answered) -> JournalEntry {
            let body = String(decoding: completion(content: "{\"increases_knowledge\": \"\(written)\"}"), as: UTF8.self)
            return JournalEntry(kind: .knowledge, classIndex: c, className: set.classNames[c], index: j, description: set.descriptions[c][j],
                                status: status, verdict: status == .answered ? (p.map { $0 >= 0.5 ? "yes" : "no" } ?? written.lowercased()) : nil,
                                explanation: nil, pYes: p, attributes: nil, attempts: 1, response: body)
        }
        let answers = [entry(0, 0, p: 0.9, written: "Yes"), entry(0, 1, p: 0.6, written: "No"), entry(1, 0, p: 0.3, written: "No"),
                       entry(2, 0, p: nil, written: "Yes", status: .unparsed)]
        let a = set.agreement { key in answers.first { $0.key == key } }
        let c = a.counts()
        XCTAssertEqual(c, Agreement.Counts(yesYes: 1, yesNo: 0, noYes: 1, noNo: 1, missing: 1))
        XCTAssertEqual(c.share, 0.5)
        XCTAssertEqual(a.counts(dataset: "dogs").agreeing, 1)
        XCTAssertEqual(a.counts(threshold: 0.7).agreeing, 3, "at 0.7 the 0.6 answer turns No and agrees")
        XCTAssertEqual(a.writtenCounts.agreeing, 3, "the written verdicts agree on the first three")
        XCTAssertEqual(a.sweep.count, 19)
        XCTAssertEqual(a.disagreements.map(\.item.description), ["A photo of a pug.", "a beagle, long ears"])
        XCTAssertTrue(a.report().contains("<- best"))
        // Bad files name the file and what is wrong.
        try Data("{\"items\": [{\"class_name\": \"pug\"}]}".utf8).write(to: url)
        XCTAssertThrowsError(try LabelledSet.load(url)) { XCTAssertTrue("\($0)".contains("item 0 needs"), "\($0)") }
    }

    func testARerunWithAnotherThresholdRedecidesFromTheJournal() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-thresh-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var req = InspectRequest(classNames: ["pug"], descriptions: [["a", "b"]], dataset: "pets", output: dir.appendingPathComponent("o.json"))
        req.mode = .local
        let endpoint = ChatEndpoint(baseURL: "http://127.0.0.1:9/v1", apiKey: nil, timeout: 1, maxRetries: 0)
        do {
            let first = try Inspector(req, endpoint: endpoint)
            for (j, p) in [0.55, 0.8].enumerated() {
                try first.journal.append(JournalEntry(kind: .knowledge, classIndex: 0, className: "pug", index: j, description: ["a", "b"][j],
                                                      status: .answered, verdict: "yes", explanation: nil, pYes: p, attributes: nil,
                                                      attempts: 1, response: "{}"))
            }
            await first.shutdown()
        }
        req.yesThreshold = 0.7
        let second = try Inspector(req, endpoint: endpoint)
        XCTAssertEqual(second.missing(second.knowledgeItems).count, 0, "nothing is asked again")
        XCTAssertEqual(second.knowledgeItems.map { second.entry($0.key)?.verdict }, ["no", "yes"])
        XCTAssertEqual(second.summary().informative, 1)
        XCTAssertEqual(second.attributeItems.map(\.description), ["b"])
        await second.shutdown()
    }

    func testJournalDropsATornLastLineAndRefusesAnotherJudge() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-journal-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        let header = JournalHeader(model: "m", judgeMode: .reference, dataset: "pets")
        let e = JournalEntry(kind: .knowledge, classIndex: 0, className: "pug", index: 3, description: "d", status: .answered,
                             verdict: "yes", explanation: "x", pYes: nil, attributes: nil, attempts: 1, response: "{}")
        do {
            let j = try Journal(url: url, header: header)
            try j.append(e)
        }
        // A kill mid-write leaves a partial line.
        let h = try FileHandle(forWritingTo: url)
        h.seekToEndOfFile(); h.write(Data("{\"kind\":\"knowl".utf8)); try h.close()
        let j2 = try Journal(url: url, header: header)
        XCTAssertEqual(j2.entries.count, 1)
        XCTAssertEqual(j2.entry(e.key), e)
        var e2 = e; e2.index = 4
        try j2.append(e2)
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3, "header + two entries, the torn line gone")
        XCTAssertThrowsError(try Journal(url: url, header: JournalHeader(model: "other", judgeMode: .reference, dataset: "pets"))) {
            XCTAssertTrue("\($0)".contains("model m (now other)"), "\($0)")
        }
    }

    // MARK: ex2 inspect against the fault-injecting stub

    final class Stub {
        let process = Process()
        let port: Int
        let log: URL
        init(dir: URL, faults: String, delay: Double = 0, seed: Int = 0) throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
                throw XCTSkip("SKIPPED: python3 is needed for the OpenAI stub (apt-get install python3)")
            }
            log = dir.appendingPathComponent("stub.log")
            let portFile = dir.appendingPathComponent("port")
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [JudgeTests.root.appendingPathComponent("scripts/test-support/openai_stub.py").path,
                                 "--port", "0", "--port-file", portFile.path, "--log", log.path, "--faults", faults,
                                 "--seed", String(seed), "--delay-s", String(delay), "--timeout-sleep-s", "4"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            guard let p = TestSupport.waitForPort(file: portFile, process: process, timeout: 20) else {
                process.terminate()
                throw XCTSkip("SKIPPED: the OpenAI stub did not start")
            }
            port = p
        }
        deinit { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        var baseURL: String { "http://127.0.0.1:\(port)/v1" }
        func requests() throws -> [[String: Any]] {
            try String(contentsOf: log, encoding: .utf8).split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
        }
    }

    /// A folder dataset of `concepts` (empty image folders are enough for class names) and descriptions.
    func workspace(_ name: String, concepts: [String], perConcept: Int) throws -> (URL, [[String]]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-\(name)-\(UUID().uuidString)")
        try TestSupport.conceptFolders(concepts, in: dir)
        let snippets = ["A photo of a %@.", "A %@ with a long tail and brown fur.", "Click to enlarge this %@ image",
                        "The %@ lives in wet meadows and eats insects.", "%@ stock photo", "A beautiful %@",
                        "A small %@ with a short, curled tail", "Download the %@ wallpaper now"]
        let descs = concepts.map { c in (0..<perConcept).map { String(format: snippets[$0 % snippets.count], c) + ($0 >= snippets.count ? " (\($0))" : "") } }
        try JSONSerialization.data(withJSONObject: descs).write(to: dir.appendingPathComponent("descriptions.json"))
        return (dir, descs)
    }

    func inspect(_ dir: URL, _ stub: Stub, extra: [String] = []) throws -> Process {
        let p = Process()
        p.executableURL = try TestSupport.ex2Executable()
        p.arguments = ["inspect", "--descriptions", dir.appendingPathComponent("descriptions.json").path,
                       "--dataset", "folder:" + dir.appendingPathComponent("concepts").path,
                       "--output", dir.appendingPathComponent("out/responses.json").path,
                       "--base-url", stub.baseURL, "--timeout", "1.5", "--concurrency", "4"] + extra
        var env = ProcessInfo.processInfo.environment
        env["OPENAI_API_KEY"] = "sk-never-printed-1234"
        p.environment = env
        p.currentDirectoryURL = dir
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        return p
    }

    func journal(_ dir: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: dir.appendingPathComponent("out/responses.json.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").dropFirst().map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    func testEveryDescriptionGetsExactlyOneVerdictThroughFaults() throws {
        let (dir, descs) = try workspace("faults", concepts: ["beagle", "pug", "tench"], perConcept: 10)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stub = try Stub(dir: dir, faults: "429:0.15,500:0.1,503:0.1,timeout:0.05,malformed:0.1,truncated:0.05,drop:0.05,nokey:0.05", seed: 3)
        let p = try inspect(dir, stub)
        let output = (p.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertFalse(text.contains("sk-never-printed"), "the API key must never be printed")
        let entries = try journal(dir)
        XCTAssertEqual(entries.count, 30, "one journal line per description")
        let keys = Set(entries.map { "\($0["class_index"]!)/\($0["index"]!)" })
        XCTAssertEqual(keys.count, 30)
        // Every fault kind was met, and each verdict is the one the stub sent in its valid answer.
        let log = try stub.requests()
        let faults = Set(log.compactMap { $0["fault"] as? String })
        for f in ["429", "500", "503", "timeout", "malformed", "truncated", "drop", "nokey"] {
            XCTAssertTrue(faults.contains(f), "fault \(f) never happened: the test would not cover it")
        }
        var sent: [String: String] = [:]  // snippet -> verdict
        for r in log where (r["fault"] as? String) == "ok" { sent[r["snippet"] as! String] = (r["verdict"] as! String).lowercased() }
        for e in entries {
            XCTAssertEqual(e["status"] as? String, "answered")
            XCTAssertEqual(e["verdict"] as? String, sent[e["description"] as! String], "\(e["description"]!)")
        }
        // The reference's output: per class, in order, the response objects as JSON strings.
        let out = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("out/responses.json"))) as! [[String]]
        XCTAssertEqual(out.map(\.count), descs.map(\.count))
        let first = try JSONSerialization.jsonObject(with: Data(out[0][1].utf8)) as! [String: Any]
        XCTAssertEqual(first["object"] as? String, "chat.completion")
        XCTAssertTrue(text.contains("overall"), text)
        // A rerun has nothing to ask.
        let before = log.count
        let again = try inspect(dir, stub)
        _ = (again.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile()
        again.waitUntilExit()
        XCTAssertEqual(again.terminationStatus, 0)
        XCTAssertEqual(try stub.requests().count, before, "a complete run asks nothing again")
    }

    func testKilledRunResumesWithoutAskingAgain() throws {
        let (dir, _) = try workspace("kill", concepts: ["beagle", "pug", "tench", "zebra"], perConcept: 10)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stub = try Stub(dir: dir, faults: "none", delay: 0.15)
        let p = try inspect(dir, stub)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, ((try? journal(dir).count) ?? 0) < 12 { usleep(20_000) }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        let answered = try journal(dir)
        XCTAssertGreaterThanOrEqual(answered.count, 12)
        XCTAssertLessThan(answered.count, 40, "the run was killed before the end")
        usleep(300_000)  // requests in flight at the kill reach the log
        let killedAt = try stub.requests().count
        let again = try inspect(dir, stub)
        _ = (again.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile()
        again.waitUntilExit()
        XCTAssertEqual(again.terminationStatus, 0)
        let entries = try journal(dir)
        XCTAssertEqual(entries.count, 40)
        XCTAssertEqual(Set(entries.map { "\($0["class_index"]!)/\($0["index"]!)" }).count, 40, "no description answered twice")
        let askedAfter = try stub.requests().dropFirst(killedAt).compactMap { $0["snippet"] as? String }
        let done = Set(answered.map { $0["description"] as! String })
        XCTAssertEqual(askedAfter.filter(done.contains), [], "the rerun asked again what was already answered")
        XCTAssertEqual(askedAfter.count, 40 - answered.count)
    }
}
