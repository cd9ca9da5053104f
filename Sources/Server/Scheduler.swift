// The serving loop: one thread owns the model's key/value cache (`parallel` slots) and advances every
// running sequence by one token per step, in one forward call per adapter (continuous batching: a new
// request's prompt joins the running batch at the next step, as llama.cpp's server and vLLM do).
// Prompts that share a prefix with an earlier one (every judge request repeats the same system message
// and examples) copy that prefix's keys and values from the prefix cache instead of recomputing them.
import Foundation
import Llama
import Tensors
import Tokenizers

/// What a sequence may emit next (JSON constrained decoding implements it).
public protocol TokenConstraint: Sendable {
    /// Sets the logits of tokens that may not come next to -infinity. `stopTokens` may end the output
    /// only when the constraint is satisfied.
    mutating func mask(_ logits: UnsafeMutablePointer<Float>, vocab: Int, stopTokens: Set<Int>)
    mutating func accept(_ token: Int)
    /// The output is complete: the sequence ends here.
    var isComplete: Bool { get }
    /// Tokens that complete the output from here (used when the token budget is about to run out).
    func completion(budget: Int) -> [Int]?
    /// Bytes still needed to complete the output (an upper bound on the tokens they take).
    var completionLength: Int { get }
    /// Whether, after `token`, the output could still be completed within `budget` tokens.
    func fits(_ token: Int, budget: Int) -> Bool
}

public struct GenerationJob: Sendable {
    public var prompt: [Int]
    public var adapter: String?
    public var params: SamplingParameters
    public var seed: UInt64
    public var stop: [String] = []
    /// nil: no log-probabilities; k: the chosen token's and the k most likely.
    public var topLogprobs: Int?
    public var constraint: (any TokenConstraint)?
    public var presencePenalty: Float = 0
    public var frequencyPenalty: Float = 0
    public init(prompt: [Int], adapter: String?, params: SamplingParameters, seed: UInt64) {
        self.prompt = prompt; self.adapter = adapter; self.params = params; self.seed = seed
    }
}

public struct TokenLogprob: Sendable {
    public var token: Int
    public var logprob: Float
    public var top: [(token: Int, logprob: Float)]
}

public enum GenerationEvent: Sendable {
    /// New text (possibly empty while a multi-byte character or a possible stop string is held back).
    case text(String, TokenLogprob?)
    case finished(reason: String, promptTokens: Int, completionTokens: Int, cachedTokens: Int)
}

public final class Scheduler: @unchecked Sendable {  // reason: mutable state touched only by the loop thread or under `lock`
    public let model: DecoderModel
    public let tokenizer: any Tokenizer
    public let adapters: [String: LoRAState]
    public let parallel: Int
    public let capacity: Int
    public let stopTokens: Set<Int>
    /// Most prompt tokens one step prefills (longer prompts take several steps, so decoding keeps going).
    public var prefillBudget = 512
    /// See `mustWaitForSharedPrefix`.
    public var sharedPrefixWait = 64
    public let prefixCache: PrefixCache

    private let cache: KVCache
    private let workspace = Workspace()
    private let lock = NSCondition()
    private var pending: [Running] = []
    private var active: [Running] = []
    private var freeSlots: [Int]
    private var nextID = 0
    private var cancelled: Set<Int> = []
    /// Requests waiting for a slot beyond which new ones are refused (503).
    public var maxQueue = 256

    public struct Stats: Sendable { public var steps = 0, promptTokens = 0, cachedTokens = 0, generated = 0 }
    public private(set) var stats = Stats()

    public init(model: DecoderModel, tokenizer: any Tokenizer, stopTokens: Set<Int>, adapters: [String: LoRAState],
                parallel: Int, capacity: Int, prefixCacheBytes: Int) {
        self.model = model; self.tokenizer = tokenizer; self.stopTokens = stopTokens; self.adapters = adapters
        self.parallel = parallel; self.capacity = capacity
        cache = model.makeCache(slots: parallel, capacity: capacity)
        freeSlots = Array((0..<parallel).reversed())
        prefixCache = PrefixCache(layers: model.config.layers, width: model.config.kvHeads * model.config.headDim, budgetBytes: prefixCacheBytes)
        // The decoding thread holds its scheduler for the life of the process: it waits on `lock` and
        // owns `cache`, so neither may go away under it.
        let t = Thread { self.loop() }
        t.name = "ex2-serve-decoder"
        t.stackSize = 8 << 20
        t.start()
    }

    public enum SubmitError: Error { case overloaded }

    /// Queues a job; events arrive on the returned stream. Cancelling the stream's consumer (or `cancel`)
    /// ends the sequence at the next step.
    public func submit(_ job: GenerationJob) throws -> (id: Int, events: AsyncStream<GenerationEvent>) {
        let (stream, cont) = AsyncStream<GenerationEvent>.makeStream(bufferingPolicy: .unbounded)
        lock.lock()
        defer { lock.unlock() }
        if pending.count >= maxQueue { throw SubmitError.overloaded }
        let id = nextID
        nextID += 1
        pending.append(Running(id: id, job: job, sink: cont, tokenizer: tokenizer))
        cont.onTermination = { [weak self] reason in
            if case .cancelled = reason { self?.cancel(id) }
        }
        lock.signal()
        return (id, stream)
    }

    public func cancel(_ id: Int) {
        lock.lock()
        cancelled.insert(id)
        lock.signal()
        lock.unlock()
    }

    public var load: (active: Int, pending: Int) {
        lock.lock(); defer { lock.unlock() }
        return (active.count, pending.count)
    }

    // MARK: the loop

    private func loop() {
        while true {
            lock.lock()
            while active.isEmpty && pending.isEmpty { lock.wait() }
            // Drop cancelled sequences, then admit waiting ones into free slots.
            let gone = cancelled
            cancelled.removeAll()
            pending.removeAll { r in if gone.contains(r.id) { r.sink.finish(); return true }; return false }
            var admitted: [Running] = [], deferred: [Running] = []
            let prefilling = active.filter { $0.prefilled < $0.job.prompt.count }
            while !freeSlots.isEmpty && !pending.isEmpty {
                let r = pending.removeFirst()
                if mustWaitForSharedPrefix(r, prefilling: prefilling + admitted) { deferred.append(r); continue }
                r.slot = freeSlots.removeLast()
                admitted.append(r)
            }
            pending.insert(contentsOf: deferred, at: 0)
            lock.unlock()
            for r in active where gone.contains(r.id) { r.done = true; r.sink.finish() }
            for r in admitted { start(r) }
            active += admitted
            releaseFinished()
            if active.isEmpty { continue }
            step()
            releaseFinished()
        }
    }

    /// Requests arriving together (the judge's, all opening with the same long system message and
    /// examples) would each prefill the shared opening before any of them has cached it. A request whose
    /// prompt shares at least `sharedPrefixWait` more tokens with a sequence still prefilling (same
    /// adapter) than the prefix cache holds waits until that prefill is done and cached.
    private func mustWaitForSharedPrefix(_ r: Running, prefilling: [Running]) -> Bool {
        guard prefixCache.budgetBytes > 0, !prefilling.isEmpty else { return false }
        let adapter = r.job.adapter ?? ""
        let cached = prefixCache.matchLength(r.job.prompt, adapter: adapter, maxLength: r.job.prompt.count - 1)
        for s in prefilling where (s.job.adapter ?? "") == adapter {
            if PrefixCache.commonPrefix(s.job.prompt, r.job.prompt) >= cached + sharedPrefixWait { return true }
        }
        return false
    }

    private func releaseFinished() {
        let finished = active.filter(\.done)
        guard !finished.isEmpty else { return }
        active.removeAll(where: \.done)
        lock.lock()
        for r in finished { cache.reset(slot: r.slot); freeSlots.append(r.slot) }
        lock.unlock()
    }

    /// A new sequence: copy the longest cached prefix of its prompt, leave the rest to prefill.
    private func start(_ r: Running) {
        let prompt = r.job.prompt
        cache.reset(slot: r.slot)
        let reuse = prefixCache.restore(prompt, adapter: r.job.adapter ?? "", maxLength: prompt.count - 1, into: cache, slot: r.slot)
        r.cached = reuse
        r.prefilled = reuse
        stats.promptTokens += prompt.count
        stats.cachedTokens += reuse
    }

    private func step() {
        stats.steps += 1
        var budget = prefillBudget
        // One forward per adapter group; chunks: the rest of the prompt (up to the budget) or the last token.
        let groups = Dictionary(grouping: active, by: { $0.job.adapter ?? "" })
        for (name, group) in groups.sorted(by: { $0.key < $1.key }) {
            var chunks: [SequenceChunk] = [], rows: [Running] = []
            for r in group {
                if r.prefilled < r.job.prompt.count {
                    let take = min(r.job.prompt.count - r.prefilled, max(1, budget))
                    budget -= take
                    chunks.append(SequenceChunk(slot: r.slot, tokens: Array(r.job.prompt[r.prefilled..<r.prefilled + take]),
                                                startPosition: r.prefilled))
                } else {
                    chunks.append(SequenceChunk(slot: r.slot, tokens: [r.generated.last!], startPosition: cache.lengths[r.slot]))
                }
                rows.append(r)
            }
            let logits = model.forward(chunks, cache: cache, logits: .lastOfEachChunk, workspace: workspace,
                                       adapters: name.isEmpty ? nil : adapters[name])
            let V = model.config.vocabSize
            var sampling: [(Running, Int)] = []
            for (i, r) in rows.enumerated() {
                if r.prefilled < r.job.prompt.count {
                    r.prefilled += chunks[i].tokens.count
                    if r.prefilled < r.job.prompt.count { continue }
                    // The whole prompt is in the cache now: keep it for later prompts that share a prefix.
                    prefixCache.store(r.job.prompt, adapter: r.job.adapter ?? "", from: cache, slot: r.slot)
                }
                sampling.append((r, i))
            }
            logits.withUnsafeBufferPointer { lp in
                nonisolated(unsafe) let base = lp.baseAddress!
                let items = sampling
                let stops = stopTokens
                parallelFor(items.count) { k in
                    let (r, row) = items[k]
                    r.pick(base + row * V, vocab: V, stopTokens: stops)
                }
            }
            for (r, _) in sampling { advance(r) }
        }
    }

    /// Records the picked token of `r`, emits text, and decides whether the sequence ends.
    private func advance(_ r: Running) {
        guard let token = r.picked else { return }
        r.picked = nil
        r.produced += 1
        stats.generated += 1
        let job = r.job
        if stopTokens.contains(token) && job.params.stopAtEOS {
            r.finish("stop")
            return
        }
        r.generated.append(token)
        r.counts[token, default: 0] += 1
        r.constraint?.accept(token)
        r.appendText(token)
        if r.hitStop { r.finish("stop"); return }
        if r.constraint?.isComplete == true { r.finish("stop"); return }
        let remaining = job.params.maxNewTokens - r.generated.count
        if remaining <= 0 || job.prompt.count + r.generated.count >= min(capacity, model.config.maxPositions) {
            r.finish("length")
            return
        }
        // A constrained output about to run out of tokens is completed now, so it still parses.
        if let c = r.constraint, let tail = c.completion(budget: remaining), tail.count >= remaining - 1 {
            for t in tail.prefix(remaining) {
                r.produced += 1
                r.generated.append(t)
                r.constraint?.accept(t)
                r.appendText(t, sampled: false)
            }
            r.finish(r.constraint?.isComplete == true ? "stop" : "length")
            return
        }
        r.emitPending()
    }
}

/// One sequence in flight (touched only by the loop thread; `pick` runs for distinct sequences in parallel).
final class Running: @unchecked Sendable {
    let id: Int
    let job: GenerationJob
    let sink: AsyncStream<GenerationEvent>.Continuation
    let tokenizer: any Tokenizer
    var slot = -1
    var prefilled = 0
    var cached = 0
    var generated: [Int] = []
    /// Tokens the model produced, the stop token included.
    var produced = 0
    var counts: [Int: Int] = [:]
    var rng: RandomStream
    var constraint: (any TokenConstraint)?
    var picked: Int?
    var pickedLogprob: TokenLogprob?
    var done = false
    /// Output bytes so far, how many were sent, and whether a stop string was found.
    var bytes: [UInt8] = []
    var sent = 0
    var hitStop = false
    var pendingLogprobs: [TokenLogprob] = []

    init(id: Int, job: GenerationJob, sink: AsyncStream<GenerationEvent>.Continuation, tokenizer: any Tokenizer) {
        self.id = id; self.job = job; self.sink = sink; self.tokenizer = tokenizer
        rng = RandomStream(seed: job.seed)
        constraint = job.constraint
    }

    /// Chooses the next token from one row of logits (penalties, constraint mask, then the sampler).
    func pick(_ raw: UnsafePointer<Float>, vocab V: Int, stopTokens: Set<Int>) {
        let needsCopy = constraint != nil || job.presencePenalty != 0 || job.frequencyPenalty != 0
        var token: Int
        if needsCopy {
            var row = [Float](UnsafeBufferPointer(start: raw, count: V))
            row.withUnsafeMutableBufferPointer { p in
                let l = p.baseAddress!
                for (t, n) in counts { l[t] -= job.presencePenalty + job.frequencyPenalty * Float(n) }
                if !job.params.stopAtEOS { for t in stopTokens where t < V { l[t] = -.infinity } }
                constraint?.mask(l, vocab: V, stopTokens: stopTokens)
            }
            token = row.withUnsafeBufferPointer { Sampler.sample($0.baseAddress!, vocab: V, params: job.params, rng: &rng).token }
            // Near the end of the budget, a token that opens more structure than the remaining tokens can
            // close is refused and another drawn, so the forced completion always fits.
            let after = job.params.maxNewTokens - generated.count - 1
            if let c = constraint, c.completionLength + 24 >= after {
                var tries = 0
                while !c.fits(token, budget: after) && tries < 64 {
                    row[token] = -.infinity
                    tries += 1
                    if !row.contains(where: { $0 > -.infinity }) { break }
                    token = row.withUnsafeBufferPointer { Sampler.sample($0.baseAddress!, vocab: V, params: job.params, rng: &rng).token }
                }
            }
        } else {
            token = Sampler.sample(raw, vocab: V, params: job.params, rng: &rng).token
        }
        picked = token
        if let k = job.topLogprobs {
            // Log-probabilities of the model's own distribution (before penalties and constraints), as vLLM reports.
            let m = Vec.max(raw, V)
            let lse = m + Float(log(Softmax.sumExpShifted(raw, V, shift: m)))
            let top = k > 0 ? Sampler.topK(raw, vocab: V, k: k).map { (token: $0, logprob: raw[$0] - lse) } : []
            pickedLogprob = TokenLogprob(token: token, logprob: raw[token] - lse, top: top)
        } else {
            pickedLogprob = nil
        }
    }

    /// `sampled`: the token came from `pick` (its log-probability, if asked for, goes out with it); forced
    /// completion tokens have none.
    func appendText(_ token: Int, sampled: Bool = true) {
        bytes += tokenizer.tokenBytes(token) ?? []
        if sampled, let l = pickedLogprob { pendingLogprobs.append(l) }
        // A stop string ends the text before it.
        for s in job.stop where !s.isEmpty {
            let sb = Array(s.utf8)
            if let r = Self.find(sb, in: bytes, from: max(0, sent - sb.count)) {
                bytes.removeSubrange(r...)
                hitStop = true
                return
            }
        }
    }

    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard needle.count <= hay.count else { return nil }
        var i = from
        while i + needle.count <= hay.count {
            if hay[i] == needle[0] && Array(hay[i..<i + needle.count]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// Sends the text that is safe to send: whole UTF-8 characters, and nothing that could still turn
    /// out to be the start of a stop string.
    func emitPending(final: Bool = false) {
        var end = bytes.count
        if !final {
            let hold = (job.stop.map(\.utf8.count).max() ?? 1) - 1
            end = max(sent, end - hold)
            // Back off to a character boundary.
            while end > sent && end < bytes.count && (bytes[end] & 0xC0) == 0x80 { end -= 1 }
            if end > sent, let lead = (sent..<end).last(where: { (bytes[$0] & 0xC0) != 0x80 }) {
                let need = bytes[lead] >= 0xF0 ? 4 : bytes[lead] >= 0xE0 ? 3 : bytes[lead] >= 0xC0 ? 2 : 1
                if lead + need > end { end = lead }
            }
        }
        if end <= sent && pendingLogprobs.isEmpty { return }
        let text = String(decoding: bytes[sent..<max(sent, end)], as: UTF8.self)
        sent = max(sent, end)
        if pendingLogprobs.isEmpty {
            sink.yield(.text(text, nil))
        } else {
            // One event per token carrying its log-probability; the text goes with the first.
            for (i, l) in pendingLogprobs.enumerated() { sink.yield(.text(i == 0 ? text : "", l)) }
            pendingLogprobs.removeAll()
        }
    }

    func finish(_ reason: String) {
        emitPending(final: true)
        sink.yield(.finished(reason: reason, promptTokens: job.prompt.count, completionTokens: produced,
                             cachedTokens: cached))
        sink.finish()
        done = true
    }
}
