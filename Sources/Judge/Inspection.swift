// Stage 3 of EX2: every description goes to the judge (the reference's inspection.py), with bounded
// concurrency, each answer journaled the moment it arrives; then, optionally, the attribute question
// for each description judged informative. The reference's output file (per class, in class order, the
// response objects as JSON strings) is written once every description has its answer.
import Foundation

public struct InspectRequest: Sendable {
    public var classNames: [String]
    /// descriptions[c][j]: description j of concept c (the format `ex2 describe` writes).
    public var descriptions: [[String]]
    public var dataset: String
    public var output: URL
    /// Where the descriptions came from, for error messages.
    public var descriptionsPath = "descriptions"
    public var model: String = Conversations.referenceModel
    public var mode: JudgeMode = .reference
    public var concurrency: Int = 4
    /// Answers that are not JSON or lack the verdict are asked again this many times, then recorded as unparsed.
    public var parseRetries: Int = 2
    public var attributes: [String]? = nil
    /// Local mode: verdict Yes when P(Yes) / (P(Yes) + P(No)) at the verdict token is at least this.
    public var yesThreshold: Double = 0.5

    public init(classNames: [String], descriptions: [[String]], dataset: String, output: URL) {
        self.classNames = classNames; self.descriptions = descriptions; self.dataset = dataset; self.output = output
    }

    public var journalURL: URL { URL(fileURLWithPath: output.path + ".jsonl") }
}

/// One question to the judge.
public struct JudgeItem: Sendable, Hashable {
    public var kind: JournalEntry.Kind
    public var classIndex: Int
    public var className: String
    public var index: Int
    public var description: String
    public var key: JournalEntry.Key { .init(kind: kind, classIndex: classIndex, index: index, description: description) }
    /// The same description, asked the other question.
    func asking(_ k: JournalEntry.Kind) -> JudgeItem { var i = self; i.kind = k; return i }
}

public struct InspectProgress: Sendable {
    public var kind: JournalEntry.Kind
    public var done: Int
    public var total: Int
    public var retries: Int
}

public final class Inspector: Sendable {
    public let request: InspectRequest
    public let client: ChatClient
    public let journal: Journal

    public init(_ request: InspectRequest, endpoint: ChatEndpoint) throws {
        guard request.classNames.count == request.descriptions.count else {
            throw JudgeError.descriptions(path: request.descriptionsPath, message: "has \(request.descriptions.count) lists but the dataset \(request.dataset) has \(request.classNames.count) concepts: were they written for another dataset?")
        }
        guard request.concurrency >= 1 else { throw JudgeError.badSettings("--concurrency must be at least 1") }
        self.request = request
        client = ChatClient(endpoint: endpoint)
        journal = try Journal(url: request.journalURL, header: JournalHeader(model: request.model, judgeMode: request.mode,
                                                                            dataset: request.dataset))
    }

    public func shutdown() async { await client.shutdown() }

    public var knowledgeItems: [JudgeItem] {
        request.descriptions.enumerated().flatMap { c, list in
            list.enumerated().map { j, d in
                JudgeItem(kind: .knowledge, classIndex: c, className: request.classNames[c], index: j, description: d)
            }
        }
    }

    /// The journaled answer to `key`, its verdict decided by this run's --yes-threshold when the answer
    /// carries P(Yes) (so a rerun with another threshold re-decides without asking again).
    public func entry(_ key: JournalEntry.Key) -> JournalEntry? {
        guard var e = journal.entry(key) else { return nil }
        if e.kind == .knowledge, e.status == .answered, let p = e.pYes { e.verdict = p >= request.yesThreshold ? "yes" : "no" }
        return e
    }

    /// Informative descriptions (knowledge verdict yes) to ask the attribute question about.
    public var attributeItems: [JudgeItem] {
        knowledgeItems.filter { entry($0.key)?.verdict == "yes" }.map { $0.asking(.attributes) }
    }

    public func missing(_ items: [JudgeItem]) -> [JudgeItem] { items.filter { journal.entry($0.key) == nil } }

    // MARK: requests

    func body(for item: JudgeItem) throws -> Data {
        var body: [String: Any] = [
            "model": request.model, "temperature": 0.1, "top_p": 0.1, "frequency_penalty": 0, "presence_penalty": 0,
            "max_tokens": 128,
        ]
        let messages: [ChatMessage]
        switch (item.kind, request.mode) {
        case (.knowledge, .reference):
            messages = Conversations.reference(className: item.className, description: item.description)
            body["response_format"] = ["type": "json_object"]
        case (.knowledge, .local):
            messages = Conversations.local(className: item.className, description: item.description)
            body["response_format"] = ["type": "json_schema",
                                       "json_schema": ["name": "verdict", "schema": Conversations.localSchema, "strict": true]]
            body["logprobs"] = true
            body["top_logprobs"] = 5
        case (.attributes, _):
            let list = request.attributes ?? Conversations.defaultAttributes
            messages = Conversations.attributes(className: item.className, description: item.description, attributes: list)
            if request.mode == .local {
                body["response_format"] = ["type": "json_schema",
                                           "json_schema": ["name": "attributes", "schema": Conversations.attributeSchema(list), "strict": true]]
            } else {
                body["response_format"] = ["type": "json_object"]
            }
        }
        body["messages"] = messages.map { ["role": $0.role, "content": $0.content] }
        return try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
    }

    /// Asks one question until it has a usable answer (or the parse retries run out), returning the entry.
    func ask(_ item: JudgeItem, retries: @escaping @Sendable () -> Void) async throws -> JournalEntry {
        let body = try body(for: item)
        var attempts = 0
        var last: (Data, JudgeAnswer?)? = nil
        for _ in 0...request.parseRetries {
            let data = try await client.post(body, onRetry: { _ in retries() })
            attempts += 1
            let answer = JudgeAnswer.parse(data, kind: item.kind, attributes: request.attributes ?? Conversations.defaultAttributes,
                                           yesThreshold: request.yesThreshold, useLogprobs: request.mode == .local)
            last = (data, answer)
            if answer != nil { break }
            retries()
        }
        let (data, answer) = last!
        return JournalEntry(kind: item.kind, classIndex: item.classIndex, className: item.className, index: item.index,
                            description: item.description, status: answer == nil ? .unparsed : .answered,
                            verdict: answer?.verdict, explanation: answer?.explanation, pYes: answer?.pYes,
                            attributes: answer?.attributes, attempts: attempts,
                            response: String(decoding: data, as: UTF8.self))
    }

    /// Asks every missing item of `items`, `concurrency` at a time, journaling each answer. Cancellation
    /// (Ctrl-C) stops asking; what was answered is already in the journal.
    public func run(_ items: [JudgeItem], progress: @escaping @Sendable (InspectProgress) -> Void) async throws {
        let todo = missing(items)
        guard let kind = items.first?.kind else { return }
        let counter = Counter(total: items.count, done: items.count - todo.count)
        progress(counter.snapshot(kind))
        let queue = WorkQueue(todo)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(request.concurrency, max(1, todo.count)) {
                group.addTask {
                    while let item = queue.next() {
                        let entry = try await self.ask(item, retries: { counter.retry(); progress(counter.snapshot(kind)) })
                        try self.journal.append(entry)
                        counter.finish()
                        progress(counter.snapshot(kind))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// The reference's output: per class, the response bodies in description order. Nil until complete.
    public func referenceOutput() -> [[String]]? {
        var out = request.descriptions.map { _ in [String]() }
        for item in knowledgeItems {
            guard let e = journal.entry(item.key) else { return nil }
            out[item.classIndex].append(e.response)
        }
        return out
    }

    public func writeOutput() throws -> Bool {
        guard let out = referenceOutput() else { return false }
        try FileManager.default.createDirectory(at: request.output.deletingLastPathComponent(), withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: out, options: [.withoutEscapingSlashes])
        try data.write(to: request.output, options: .atomic)
        return true
    }

    public func summary() -> InspectionSummary {
        let items = knowledgeItems
        return InspectionSummary(classNames: request.classNames, entries: items.compactMap { entry($0.key) },
                                 attributeEntries: items.compactMap { journal.entry($0.asking(.attributes).key) },
                                 attributeList: request.attributes ?? Conversations.defaultAttributes)
    }
}

/// Items handed out once each to concurrent workers (the judge's questions, remote describing's prompts).
final class WorkQueue<Item: Sendable>: @unchecked Sendable {  // reason: guarded by lock
    private let items: [Item]
    private var next_ = 0
    private let lock = NSLock()
    init(_ items: [Item]) { self.items = items }
    func next() -> Item? {
        lock.lock(); defer { lock.unlock() }
        guard next_ < items.count else { return nil }
        next_ += 1
        return items[next_ - 1]
    }
}

final class Counter: @unchecked Sendable {  // reason: guarded by lock
    private let lock = NSLock()
    private var done: Int, retries = 0
    let total: Int
    init(total: Int, done: Int) { self.total = total; self.done = done }
    func finish() { lock.lock(); done += 1; lock.unlock() }
    func retry() { lock.lock(); retries += 1; lock.unlock() }
    func snapshot(_ kind: JournalEntry.Kind) -> InspectProgress {
        lock.lock(); defer { lock.unlock() }
        return InspectProgress(kind: kind, done: done, total: total, retries: retries)
    }
}
