// Sampling properties that need no oracle beyond the engine's own unbatched run: batched generation of
// prompts of different lengths draws exactly what each prompt draws alone (every sequence owns its
// seeded stream), seeds change samples, EOS stops a sequence, and top-k / top-p only ever return
// tokens inside their candidate sets. Plus the LanguageModel wrapper on the real SmolLM2 with its tokenizer.
import EX2
import Foundation
import Llama
import ModelFiles
import Tensors
import XCTest

final class GenerationTests: XCTestCase {
    func tinyModel() throws -> DecoderModel {
        try DecoderModel.load(hfDirectory: TestPaths.fixtures.appendingPathComponent("tiny-llama"))
    }

    func testBatchedSamplingEqualsUnbatched() throws {
        let model = try tinyModel()
        let gen = Generator(model: model, stopTokens: [])
        let prompts = [[1, 5, 9], [1, 70, 3, 44, 12, 90, 7], [1], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]
        let seeds: [UInt64] = [11, 12, 13, 14]
        for params in [SamplingParameters(temperature: 1, maxNewTokens: 16, stopAtEOS: false),
                       SamplingParameters(temperature: 0.7, topK: 20, topP: 0.9, maxNewTokens: 16, stopAtEOS: false)] {
            let batched = gen.generate(prompts: prompts, seeds: seeds, params: params, batchSize: 4)
            let single = gen.generate(prompts: prompts, seeds: seeds, params: params, batchSize: 1)
            XCTAssertEqual(batched.map(\.tokens), single.map(\.tokens), "\(params)")
            for (b, s) in zip(batched, single) {
                for (x, y) in zip(b.logprobs, s.logprobs) { XCTAssertEqual(x, y, accuracy: 1e-4) }
            }
            let other = gen.generate(prompts: prompts, seeds: seeds.map { $0 + 100 }, params: params, batchSize: 4)
            XCTAssertNotEqual(other.map(\.tokens), batched.map(\.tokens), "different seeds should give different samples")
        }
    }

    /// A sequence that fills the model's context stops there (finish reason length), whatever max_new_tokens says.
    func testGenerationStopsAtTheEndOfTheContext() throws {
        let model = try tinyModel()
        let context = model.config.maxPositions
        let gen = Generator(model: model, stopTokens: [])
        let prompt = Array(repeating: 5, count: context - 3)
        let out = gen.generate(prompts: [prompt, [1, 2]], seeds: [1, 2], params: SamplingParameters(temperature: 1, maxNewTokens: 10, stopAtEOS: false))
        XCTAssertEqual(out[0].tokens.count, 3)
        XCTAssertEqual(out[0].finishReason, .length)
        XCTAssertEqual(out[1].tokens.count, 10)
    }

    /// What the sampler records for PPO (policyLogProbs, values) has the bits of a training forward over
    /// prompt ++ response with the same adapters and no dropout, so PPO's step may take them for its
    /// old-policy forward: on a dense and a quantized model, with adapters on several modules and a value
    /// head, batches of several sizes (long and short GEMMs), ragged prompts and EOS stops.
    func testRecordedPolicyOutputsHaveTheTrainingForwardsBits() throws {
        try checkRecordedPolicyOutputs("tiny-llama", try tinyModel())
    }

    func testRecordedPolicyOutputsHaveTheTrainingForwardsBitsOnSmolLM2() throws {
        let url = try TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf")
        try checkRecordedPolicyOutputs("SmolLM2 Q4_1", try DecoderModel.load(gguf: GGUFFile(url: url)))
    }

    func checkRecordedPolicyOutputs(_ name: String, _ model: DecoderModel) throws {
        do {
            var rng = RandomStream(seed: 17)
            let adapters = LoRAState(model: model.config, config: LoRAConfig(rank: 4, alpha: 8, dropout: 0.05, targets: [.q, .v, .up]),
                                     valueHead: true, seed: 4)
            for s in adapters.slots { for j in 0..<(4 * s.outFeatures) { adapters.parameters[s.b + j] = rng.nextGaussian() * 0.05 } }
            for j in 0..<model.config.hiddenSize { adapters.parameters[adapters.valueHeadOffset! + j] = rng.nextGaussian() * 0.1 }
            let vocab = min(model.config.vocabSize, 4000)
            let prompts = (0..<11).map { i in (0..<(1 + (i * 5) % 13)).map { _ in 3 + Int(rng.next() % UInt64(vocab - 3)) } }
            // A frequent token as EOS so that some sequences stop early.
            let probe = Generator(model: model, stopTokens: [])
                .generate(prompts: prompts, seeds: prompts.indices.map { UInt64($0) }, params: SamplingParameters(maxNewTokens: 6, stopAtEOS: false))
            let eos = probe.flatMap(\.tokens).reduce(into: [Int: Int]()) { $0[$1, default: 0] += 1 }.max { $0.value < $1.value }!.key
            let gen = Generator(model: model, stopTokens: [eos], adapters: adapters, recordsPolicyOutputs: true)
            let params = SamplingParameters(temperature: 1, topK: 0, topP: 1, maxNewTokens: 12)
            for batch in [11, 3] {
                let out = gen.generate(prompts: prompts, seeds: prompts.indices.map { UInt64(100 + $0) }, params: params, batchSize: batch)
                XCTAssertTrue(out.contains { $0.finishReason == .eos }, "\(name): no sequence stopped at EOS")
                let seqs = zip(prompts, out).map { TrainingSequence(tokens: $0 + $1.tokens, scoredFrom: $0.count - 1) }
                let train = try model.trainingForward(seqs, adapters: adapters, dropout: nil, arena: TrainingArena())
                XCTAssertEqual(out.flatMap(\.policyLogProbs), train.logProbs, "\(name), batch \(batch): log-probs")
                XCTAssertEqual(out.flatMap(\.values), train.values, "\(name), batch \(batch): values")
                for r in out {
                    XCTAssertEqual(r.policyLogProbs.count, r.tokens.count)
                    XCTAssertEqual(r.values.count, r.tokens.count)
                    for (a, b) in zip(r.policyLogProbs, r.logprobs) { XCTAssertEqual(a, b, accuracy: 1e-4, "\(name): the sampler's own log-prob") }
                }
            }
            // Without the flag nothing is recorded.
            let plain = Generator(model: model, stopTokens: [eos], adapters: adapters)
                .generate(prompts: Array(prompts.prefix(2)), seeds: [1, 2], params: params)
            XCTAssertTrue(plain.allSatisfy { $0.policyLogProbs.isEmpty && $0.values.isEmpty })
        }
    }

    func testLogprobsAreLogSoftmaxOfTheModel() throws {
        let model = try tinyModel()
        let gen = Generator(model: model, stopTokens: [])
        let prompt = [1, 40, 41, 42]
        let r = gen.generate(prompts: [prompt], seeds: [5], params: SamplingParameters(temperature: 1, maxNewTokens: 4, stopAtEOS: false))[0]
        // Recompute the model's distribution for each sampled token with one forward pass.
        let cache = model.makeCache(slots: 1, capacity: 16)
        let all = prompt + r.tokens
        let logits = model.forward([SequenceChunk(slot: 0, tokens: all, startPosition: 0)], cache: cache, logits: .all)
        let V = model.config.vocabSize
        for (i, tok) in r.tokens.enumerated() {
            let row = Array(logits[(prompt.count - 1 + i) * V..<(prompt.count + i) * V]).map(Double.init)
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            XCTAssertEqual(Double(r.logprobs[i]), row[tok] - lse, accuracy: 1e-4)
        }
    }

    func testStopsAtEOSAndFiltersCandidates() throws {
        let model = try tinyModel()
        // Greedy continuation, then declare its third token a stop token: generation must end there.
        let free = Generator(model: model, stopTokens: []).generate(
            prompts: [[1, 9, 8]], seeds: [0], params: SamplingParameters(temperature: 0, maxNewTokens: 8, stopAtEOS: true))[0]
        let stop = free.tokens[2]
        let firstStop = free.tokens.firstIndex(of: stop)!
        let stopped = Generator(model: model, stopTokens: [stop]).generate(
            prompts: [[1, 9, 8]], seeds: [0], params: SamplingParameters(temperature: 0, maxNewTokens: 8, stopAtEOS: true))[0]
        XCTAssertEqual(stopped.tokens, Array(free.tokens.prefix(firstStop + 1)))
        XCTAssertEqual(stopped.finishReason, .eos)

        // top-k = 3: every sampled token must be among the 3 most likely of its step.
        let gen = Generator(model: model, stopTokens: [])
        let prompt = [1, 33, 66]
        let r = gen.generate(prompts: [prompt], seeds: [3], params: SamplingParameters(temperature: 1.5, topK: 3, maxNewTokens: 6, stopAtEOS: false))[0]
        let cache = model.makeCache(slots: 1, capacity: 16)
        let logits = model.forward([SequenceChunk(slot: 0, tokens: prompt + r.tokens, startPosition: 0)], cache: cache, logits: .all)
        let V = model.config.vocabSize
        for (i, tok) in r.tokens.enumerated() {
            let row = Array(logits[(prompt.count - 1 + i) * V..<(prompt.count + i) * V])
            let top3 = row.indices.sorted { row[$0] > row[$1] }.prefix(3)
            XCTAssertTrue(top3.contains(tok), "step \(i): token \(tok) is outside the top-3 \(Array(top3))")
        }
    }

    func testLanguageModelOnSmolLM2() throws {
        let url = try TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf")
        let lm = try LanguageModel(spec: url.path)
        // Fixture ids come from transformers' tokenizer for the same text.
        let fx = try loadJSON(TestPaths.fixtures.appendingPathComponent("smollm2.json"))
        let first = (fx["prompts"] as! [[String: Any]])[0]
        XCTAssertEqual(lm.encode(first["text"] as! String), ints(first["ids"]))
        let params = SamplingParameters(temperature: 1, maxNewTokens: 12)
        let prompts = ["Describe a photo of a beagle.\n\n", "What does a tulip look like?\n\n"]
        let a = try lm.generate(prompts: prompts, samplesPerPrompt: 3, params: params, seed: 9, batchSize: 6)
        let b = try lm.generate(prompts: prompts, samplesPerPrompt: 3, params: params, seed: 9, batchSize: 1)
        XCTAssertEqual(a.map(\.tokens), b.map(\.tokens))
        XCTAssertEqual(a.count, 6)
        XCTAssertTrue(a.allSatisfy { !$0.text.isEmpty && $0.tokens.count <= 12 })
        XCTAssertEqual(a[0].text, lm.tokenizer.decode(a[0].finishReason == .eos ? Array(a[0].tokens.dropLast()) : a[0].tokens, skipSpecialTokens: true))
    }
}
