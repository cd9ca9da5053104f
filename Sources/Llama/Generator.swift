// Text generation over a DecoderModel: batched prefill of the prompts, then one decoding step per new
// token for every unfinished sequence, with per-sequence seeds, EOS stopping and the log-probability of
// every sampled token (PPO needs them). Prompts of different lengths share a batch without padding.
import Foundation
import Tensors

public struct GenerationResult: Sendable, Equatable {
    public enum FinishReason: String, Sendable { case eos, length }
    public var tokens: [Int]
    public var logprobs: [Float]
    public var finishReason: FinishReason
    /// With `Generator.recordsPolicyOutputs`: per token, what a training forward (no dropout) of prompt ++
    /// tokens with the same adapters returns at the position that predicted it: log p(token) and the value
    /// head's output, computed with the training forward's own reductions on the same logits and final
    /// hidden state, so they have its bits (PPO's old log-probs and values without a second forward).
    public var policyLogProbs: [Float] = []
    public var values: [Float] = []
}

public struct Generator: Sendable {
    public let model: DecoderModel
    public let stopTokens: Set<Int>
    /// LoRA adapters applied as a side path of the adapted layers (nil: the base model).
    public let adapters: LoRAState?
    /// Fill each result's policyLogProbs and (when the adapters carry a value head) values.
    public let recordsPolicyOutputs: Bool

    public init(model: DecoderModel, stopTokens: Set<Int>, adapters: LoRAState? = nil, recordsPolicyOutputs: Bool = false) {
        self.model = model
        self.stopTokens = stopTokens
        self.adapters = adapters
        self.recordsPolicyOutputs = recordsPolicyOutputs
    }

    /// The seed of sequence `index` drawn under a run seed: a sequence's stream depends only on these two.
    public static func sequenceSeed(_ seed: UInt64, _ index: Int) -> UInt64 {
        var r = RandomStream(seed: seed ^ (0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1)))
        return r.next()
    }

    /// Generates a continuation for each prompt. `seeds[i]` seeds prompt i's sampling stream. A sequence
    /// stops when it fills the model's context (finish reason .length); prompts must leave room for one
    /// token (callers check: LanguageModel.generate throws otherwise).
    /// `batchSize` bounds how many sequences decode together; `progress(done, total)` is called after
    /// each finished batch and may return false to stop early (results so far are returned).
    public func generate(prompts: [[Int]], seeds: [UInt64], params: SamplingParameters, batchSize: Int = 32,
                         progress: ((Int, Int) -> Bool)? = nil) -> [GenerationResult] {
        precondition(prompts.count == seeds.count, "one seed per prompt")
        var results: [GenerationResult] = []
        let ws = Workspace()
        var start = 0
        while start < prompts.count {
            let end = min(prompts.count, start + max(1, batchSize))
            results += generateBatch(Array(prompts[start..<end]), Array(seeds[start..<end]), params, ws)
            start = end
            if let progress, !progress(results.count, prompts.count) { break }
        }
        return results
    }

    private func generateBatch(_ prompts: [[Int]], _ seeds: [UInt64], _ params: SamplingParameters, _ ws: Workspace) -> [GenerationResult] {
        let n = prompts.count, V = model.config.vocabSize
        let longest = prompts.map(\.count).max() ?? 0
        let cache = model.makeCache(slots: n, capacity: longest + params.maxNewTokens + 1)
        var rngs = seeds.map { RandomStream(seed: $0) }
        var results = [GenerationResult](repeating: GenerationResult(tokens: [], logprobs: [], finishReason: .length), count: n)
        var active = Array(0..<n).filter { !prompts[$0].isEmpty }
        var chunks = active.map { SequenceChunk(slot: $0, tokens: prompts[$0], startPosition: 0) }
        let H = model.config.hiddenSize
        nonisolated(unsafe) let vw = recordsPolicyOutputs ? adapters.flatMap { a in a.valueHeadOffset.map { UnsafePointer(a.parameters + $0) } } : nil
        var step = 0
        while !active.isEmpty && step < params.maxNewTokens {
            let logits = model.forward(chunks, cache: cache, logits: .lastOfEachChunk, workspace: ws, adapters: adapters)
            // Sequences sample in parallel: each owns its random stream and its output slot.
            var picked = [(Int, Float)](repeating: (0, 0), count: active.count)
            // Policy outputs as Training.swift reduces them: Softmax.logProbAndEntropy of the row, and the
            // value head's dot product on the final-normed hidden state (left in ws.h by the forward).
            var policy = [(Float, Float)](repeating: (0, 0), count: recordsPolicyOutputs ? active.count : 0)
            nonisolated(unsafe) let hidden = UnsafePointer(ws.h)
            logits.withUnsafeBufferPointer { lp in
                rngs.withUnsafeMutableBufferPointer { rp in
                    picked.withUnsafeMutableBufferPointer { pp in
                        policy.withUnsafeMutableBufferPointer { pop in
                            nonisolated(unsafe) let rngp = rp.baseAddress!, out = pp.baseAddress!, pout = pop.baseAddress
                            let act = active, record = recordsPolicyOutputs
                            parallelFor(act.count) { row in
                                let z = lp.baseAddress! + row * V
                                out[row] = Sampler.sample(z, vocab: V, params: params, rng: &rngp[act[row]])
                                if record {
                                    let lpv = Softmax.logProbAndEntropy(z, V, target: out[row].0).logProb
                                    let value = vw.map { Vec.dot(hidden + row * H, $0, H) + $0[H] } ?? 0
                                    pout![row] = (lpv, value)
                                }
                            }
                        }
                    }
                }
            }
            var next: [Int] = []
            for (row, s) in active.enumerated() {
                let (tok, lpv) = picked[row]
                results[s].tokens.append(tok)
                results[s].logprobs.append(lpv)
                if recordsPolicyOutputs {
                    results[s].policyLogProbs.append(policy[row].0)
                    if vw != nil { results[s].values.append(policy[row].1) }
                }
                if params.stopAtEOS && stopTokens.contains(tok) {
                    results[s].finishReason = .eos
                } else if prompts[s].count + results[s].tokens.count < model.config.maxPositions {
                    next.append(s)
                }  // else the context is full: the sequence ends with finish reason .length
            }
            step += 1
            active = next
            chunks = active.map { SequenceChunk(slot: $0, tokens: [results[$0].tokens.last!], startPosition: cache.lengths[$0]) }
        }
        return results
    }
}
