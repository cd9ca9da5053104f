// `ex2 ppo-step`: replay one PPO step on logged rollouts (no sampling, no VLM), writing the updated
// adapter, value head and TRL's stats. The PPO flags are PPOConfig's fields in kebab case, as TRL names
// them; `ex2 train` shares them.
import ArgumentParser
import EX2
import Foundation
import PPO

extension KLPenalty: ExpressibleByArgument {}

/// PPOConfig's fields as flags. Defaults are the EX2 reference train.py's where it sets one, TRL's otherwise.
struct PPOOptions: ParsableArguments {
    @Option(help: "Adam's learning rate.") var learningRate: Double = 1.41e-5
    @Option(help: "Rollouts per PPO step (ppo-step: default = the rollouts file's count).") var batchSize: Int?
    @Option(help: "Sequences per forward/backward.") var miniBatchSize: Int = 1
    @Option(help: "Mini-batches whose gradients add up before each optimizer step.") var gradientAccumulationSteps: Int = 8
    @Option(help: "Passes over the batch per step.") var ppoEpochs: Int = 4
    @Option(help: "Initial KL coefficient (beta).") var initKlCoef: Double = 0.2
    @Option(help: "Adapt the KL coefficient towards --target (true) or keep it fixed (false).") var adapKlCtrl: Bool = true
    @Option(help: "KL estimate per token: kl, abs, mse or full.") var klPenalty: KLPenalty = .kl
    @Option(help: "KL the adaptive controller aims at.") var target: Double = 10
    @Option(help: "Horizon of the adaptive KL controller.") var horizon: Double = 10000
    @Option(help: "Early-stopping threshold: an epoch whose last mini-batch has policy KL > 1.5 x this stops the step.") var targetKl: Double = 0.1
    @Option(help: "Stop the epochs early on --target-kl.") var earlyStopping: Bool = false
    @Option(help: "Discount.") var gamma: Float = 1
    @Option(help: "GAE lambda.") var lam: Float = 0.95
    @Option(help: "Policy ratio clip range.") var cliprange: Float = 0.2
    @Option(help: "Value clip range.") var cliprangeValue: Float = 0.2
    @Option(help: "Value loss coefficient.") var vfCoef: Float = 0.1
    @Option(help: "Skip a mini-batch whose mean ratio exceeds this.") var ratioThreshold: Float = 10
    @Option(help: "Whiten the per-token rewards.") var whitenRewards: Bool = false
    @Option(help: "Scale scores by their running standard deviation.") var useScoreScaling: Bool = false
    @Option(help: "With score scaling, also subtract the running mean.") var useScoreNorm: Bool = false
    @Option(help: "Clip scores to [-x, x].") var scoreClip: Float?
    @Option(help: "Clip the global gradient norm to this.") var maxGradNorm: Double?
    @Option(help: "Seed of the mini-batch order.") var seed: UInt64 = 0

    var config: PPOConfig {
        var c = PPOConfig()
        c.learningRate = learningRate; c.batchSize = batchSize ?? 0; c.miniBatchSize = miniBatchSize
        c.gradientAccumulationSteps = gradientAccumulationSteps; c.ppoEpochs = ppoEpochs; c.initKLCoef = initKlCoef
        c.adapKLCtrl = adapKlCtrl; c.klPenalty = klPenalty; c.target = target; c.horizon = horizon; c.targetKL = targetKl
        c.earlyStopping = earlyStopping; c.gamma = gamma; c.lam = lam; c.cliprange = cliprange; c.cliprangeValue = cliprangeValue
        c.vfCoef = vfCoef; c.ratioThreshold = ratioThreshold; c.whitenRewards = whitenRewards; c.useScoreScaling = useScoreScaling
        c.useScoreNorm = useScoreNorm; c.scoreClip = scoreClip; c.maxGradNorm = maxGradNorm; c.seed = seed
        return c
    }
}

struct PPOStepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppo-step",
        abstract: "Replay one PPO step (TRL's PPOTrainer.step) on logged rollouts: no sampling, no VLM.",
        discussion: """
            --rollouts is a JSON object with "queries" and "responses" (lists of token-id lists) and "scores" \
            (a list of numbers); other keys are ignored. --minibatch-order is a JSON list holding, for each PPO \
            epoch, one permutation of 0..<batch: the step visits the batch in exactly that order (TRL draws it \
            with np.random.permutation); without it the order comes from --seed. Writes DIR/adapter_config.json, \
            DIR/adapter_model.safetensors (PEFT), DIR/value_head.safetensors and DIR/stats.json (TRL's names). \
            As in TRL, every forward of the step runs in evaluation mode, so no dropout acts: the step is \
            deterministic whatever --lora-dropout says (it is only written to the adapter's config).
            """)

    @OptionGroup var model: PolicyOptions
    @Option(help: "The PEFT LoRA adapter to start from.") var adapter: String
    @Option(help: "The value head (value_head.safetensors: summary.weight [1, hidden], summary.bias [1]).") var valueHead: String
    @Option(help: "The rollouts JSON file.") var rollouts: String
    @Option(help: "The output directory.") var output: String
    @Option(help: "A JSON list of one permutation per PPO epoch.") var minibatchOrder: String?
    @Option(help: "LoRA dropout written to the saved adapter's config.") var loraDropout: Float?
    @Option(help: "Value-head dropout (TRL's forwards in a PPO step run in eval mode: it does not act).") var valueHeadDropout: Float = 0.1
    @OptionGroup var ppo: PPOOptions

    func validate() throws {
        if let p = loraDropout, !(p >= 0 && p < 1) { throw ValidationError("--lora-dropout must be in [0, 1)") }
        guard valueHeadDropout >= 0 && valueHeadDropout < 1 else { throw ValidationError("--value-head-dropout must be in [0, 1)") }
    }

    func run() throws {
        let url = { (p: String) in URL(fileURLWithPath: p) }
        let request = PPOReplayRequest(policy: model.policy, adapter: url(adapter), valueHead: url(valueHead), rollouts: url(rollouts),
                                       output: url(output), minibatchOrder: minibatchOrder.map(url), config: ppo.config,
                                       loraDropout: loraDropout)
        let stats = try PPOReplay.run(request)
        for k in ["objective/kl", "objective/kl_coef", "ppo/mean_scores", "ppo/loss/total", "ppo/policy/clipfrac", "ppo/val/error"] {
            if let v = stats[k] { print("\(k) = \(v)") }
        }
        print("wrote \(output)/adapter_model.safetensors, value_head.safetensors and stats.json")
    }
}
