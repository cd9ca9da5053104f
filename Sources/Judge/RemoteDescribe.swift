// Stage 2 on an existing serving engine: the descriptions are sampled through an OpenAI-compatible
// completions endpoint (for example vLLM serving a 7B base with an `ex2 train` adapter as a LoRA
// module, or `ex2 serve`), one request per (concept, template) prompt, with the same retry policy as
// the judge. The result is the same list per concept that local describing writes.
import Foundation

public struct RemoteDescribeRequest: Sendable {
    /// prompts[k] = (concept index, template index, prompt text)
    public var prompts: [(classIndex: Int, templateIndex: Int, text: String)]
    public var classCount: Int
    public var templateCount: Int
    public var model: String
    public var temperature: Double = 1
    public var topP: Double = 1
    public var maxTokens: Int = 32
    public var seed: UInt64?
    public var concurrency: Int = 8

    public init(prompts: [(classIndex: Int, templateIndex: Int, text: String)], classCount: Int, templateCount: Int, model: String) {
        self.prompts = prompts; self.classCount = classCount; self.templateCount = templateCount; self.model = model
    }
}

public enum RemoteDescribing {
    /// Returns descriptions[c][t]. `progress(done, total)` once before asking and after each answer.
    public static func run(_ r: RemoteDescribeRequest, endpoint: ChatEndpoint,
                           progress: @escaping @Sendable (Int, Int) -> Void) async throws -> [[String]] {
        let client = ChatClient(endpoint: endpoint)
        defer { Task { await client.shutdown() } }
        let results = ResultBox(classes: r.classCount, templates: r.templateCount)
        let queue = WorkQueue(Array(r.prompts.indices))
        progress(0, r.prompts.count)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, min(r.concurrency, r.prompts.count)) {
                group.addTask {
                    while let k = queue.next() {
                        let p = r.prompts[k]
                        var body: [String: Any] = ["model": r.model, "prompt": p.text, "max_tokens": r.maxTokens,
                                                   "temperature": r.temperature, "top_p": r.topP, "n": 1]
                        if let s = r.seed { body["seed"] = Int(truncatingIfNeeded: s &+ UInt64(k)) & Int(Int32.max) }
                        let data = try await client.post(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]),
                                                         path: "/completions")
                        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                              let text = (obj["choices"] as? [[String: Any]])?.first?["text"] as? String else {
                            throw JudgeError.badSettings("the completions endpoint answered without choices[0].text: \(String(decoding: data.prefix(200), as: UTF8.self))")
                        }
                        progress(results.set(p.classIndex, p.templateIndex, text), r.prompts.count)
                    }
                }
            }
            try await group.waitForAll()
        }
        return results.values
    }
}

final class ResultBox: @unchecked Sendable {  // reason: guarded by lock
    private let lock = NSLock()
    private(set) var values: [[String]]
    private var done = 0
    init(classes: Int, templates: Int) { values = Array(repeating: Array(repeating: "", count: templates), count: classes) }
    func set(_ c: Int, _ t: Int, _ s: String) -> Int { lock.lock(); defer { lock.unlock() }; values[c][t] = s; done += 1; return done }
}
