// ex2-bench ppo MODEL.gguf [--batch 32] [--mini-batch 4] [--accumulation 2] [--epochs 4] [--recompute-old]: one PPO step of
// SmolLM2 with LoRA r16 on q, v and a value head, on 32 rollouts of 12 prompt + 32 sampled tokens, timed
// as generation (the batched sampler through the adapter, recording the old log-probs and values) and
// step (PPOStep.run: the reference forward, then the epochs); scripts/bench/trl_ppo.py times TRL's
// PPOTrainer on the same shapes.
import Foundation
import Llama
import ModelFiles
import PPO
import Tensors

func benchPPO(_ path: String) throws {
    let promptTokens = 12, newTokens = 32
    let batch = arg("--batch", 32), mini = arg("--mini-batch", 4), accum = arg("--accumulation", 2), epochs = arg("--epochs", 4)
    // As `ex2 train` does, the sampler's log-probs and values stand for the step's old-policy forward;
    // --recompute-old: TRL's way, a forward recomputes them.
    let recompute = CommandLine.arguments.contains("--recompute-old")
    let model = try DecoderModel.load(gguf: GGUFFile(url: URL(fileURLWithPath: path)))
    let adapters = LoRAState(model: model.config, config: LoRAConfig(rank: 16, alpha: 32, dropout: 0.05, targets: [.q, .v]),
                             valueHead: true, seed: 1)
    var rng = RandomStream(seed: 11)
    let prompts = (0..<batch).map { _ in (0..<promptTokens).map { _ in 100 + Int(rng.next() % 39_900) } }
    var c = PPOConfig()
    c.batchSize = batch; c.miniBatchSize = mini; c.gradientAccumulationSteps = accum; c.ppoEpochs = epochs
    c.learningRate = 1.41e-5; c.target = 10
    let state = PPOState(adapters: adapters, config: c)
    let gen = Generator(model: model, stopTokens: [], adapters: adapters, recordsPolicyOutputs: true)
    let params = SamplingParameters(temperature: 1, topK: 0, topP: 1, maxNewTokens: newTokens, stopAtEOS: false)
    var bestGen = Double.infinity, bestStep = Double.infinity
    var breakdown = ""
    for round in 0..<3 {  // round 0 warms up
        var t = now()
        let out = gen.generate(prompts: prompts, seeds: prompts.indices.map { UInt64(round * 1000 + $0) }, params: params, batchSize: batch)
        let g = now() - t
        let rollouts = zip(prompts, out).map {
            Rollout(query: $0, response: $1.tokens, score: rng.nextGaussian(), policyLogProbs: recompute ? nil : $1.policyLogProbs,
                    values: recompute ? nil : $1.values)
        }
        t = now()
        let stats = try PPOStep.run(model: model, state: state, rollouts: rollouts, config: c)
        let s = now() - t
        if round > 0 {
            bestGen = min(bestGen, g)
            if s < bestStep {
                bestStep = s
                breakdown = String(format: "forward passes %.2fs, optimisation %.2fs", stats["time/ppo/forward_pass"] ?? 0,
                                   stats["time/ppo/optimize_step"] ?? 0)
            }
        }
    }
    let genWork = DecoderWork.sampling(model.config, batch: batch, prompt: promptTokens, new: newTokens)
    let stepWork = DecoderWork.ppoStep(model.config, batch: batch, prompt: promptTokens, response: newTokens, epochs: epochs,
                                       oldForward: recompute)
    print(String(format: "ppo batch=%d mini_batch=%d accumulation=%d epochs=%d isa=%@ old_logprobs=%@ generate=%.2fs step=%.2fs (%@) peak_rss=%.0fMB",
                 batch, mini, accum, epochs, KernelISA.name, recompute ? "recomputed" : "sampler",
                 bestGen, bestStep, breakdown, peakRSSMegabytes()))
    print("  generate: " + workFields(genWork, seconds: bestGen) + "; step: " + workFields(stepWork, seconds: bestStep))
}
