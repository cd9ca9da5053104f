// `ex2 train`: stage 1 of EX2, the reference's train.py (TRL's PPOTrainer with a LoRA policy and a
// value head, the reward from the VLM), mirroring train_runner.sh's arguments. The run's directory holds
// config.json, metrics.jsonl, rollouts.jsonl and checkpoints; --resume continues it.
import ArgumentParser
import EX2
import Foundation
import Llama
import PPO

extension LoRATarget: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Align the policy to the VLM with PPO (TRL's PPOTrainer, LoRA adapters and a value head).",
        discussion: """
            Queries are every (concept, query template) pair, shuffled each epoch from --seed. Each step samples one \
            response per query (temperature 1, no top-k/top-p, --max-new-tokens, stop at EOS), scores the decoded \
            responses with the VLM reward and runs one PPO step. The output directory gets config.json, \
            metrics.jsonl (TRL's stat names per step), rollouts.jsonl, checkpoints step_N/ every --save-freq steps \
            and final/ (PEFT adapter + value_head.safetensors + trainer state), and with --log-with tensorboard \
            TensorBoard event files under tensorboard/. Ctrl-C saves a checkpoint and exits with status 130; \
            --resume continues from the latest checkpoint with the same bits as an uninterrupted run.
            """)

    @OptionGroup var model: PolicyOptions
    @Option(help: "The VLM: an HF CLIP, ALIGN or SigLIP directory or hub id (downloaded into the HF cache when missing), a directory with open_clip_config.json, r-open-clip:MODEL:PRETRAINED or r-open-clip:hf-hub:ORG/NAME (`ex2 embed --list-vlms` lists what loads).")
    var vlm: String
    @OptionGroup var vlmRevision: VLMRevision
    @Option(help: "cub, flowers, pets, stanford_cars, stanford_dogs, fgvc_aircraft, or folder:PATH (one sub-folder of images per concept).")
    var dataset: String
    @Option(help: "The folder holding the dataset's usual folder; not needed for folder:PATH.") var dataRoot: String?
    @Option(help: "The split (default: the one the reference trains on).") var split: String?
    @Option(help: "A JSON list of query templates with {} for the concept (default: the reference's 25).") var templates: String?
    @Option(help: "The run directory.") var outputDir: String
    @Option(help: "PPO steps to run in all (a resumed run counts the steps already done).") var steps: Int = 1000
    @Option(help: "Write a checkpoint step_N every this many steps (0: only final/).") var saveFreq: Int = 20
    @Option(help: "LoRA rank.") var loraR: Int = 16
    @Option(help: "LoRA alpha (scale alpha / r).") var loraAlpha: Float = 32
    @Option(help: "Dropout on the LoRA branch input (recorded; TRL's PPO forwards run in eval mode).") var loraDropout: Float = 0.05
    @Option(parsing: .upToNextOption, help: "The modules LoRA adapts: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj (comma- or space-separated).")
    var loraTargetModules: [String] = ["q_proj", "v_proj"]
    @Flag(help: "Scale LoRA by alpha / sqrt(r) (rsLoRA).") var useRslora = false
    @Option(help: "Dropout before the value head (recorded; inactive in TRL's step).") var valueHeadDropout: Float = 0.1
    @Option(help: "Images per class the reward averages over: the first N by sorted path; 0 = all.") var numImagesForReward: Int = 256
    @Option(help: "Override the similarity scale (default: the VLM's own).") var rewardScale: Float?
    @Flag(help: "Skip images that cannot be read or decoded instead of failing.") var skipUnreadable = false
    @Option(help: "Most new tokens per response.") var maxNewTokens: Int = 32
    @Option(help: "Sequences sampled together.") var samplingBatchSize: Int = 32
    @Flag(help: "Continue the run in --output-dir from its latest checkpoint.") var resume = false
    @Option(help: "Also log to: tensorboard.") var logWith: String?
    @OptionGroup var ppo: PPOOptions

    func validate() throws {
        if let l = logWith, l != "tensorboard" { throw ValidationError("--log-with takes tensorboard") }
        _ = try targets()
    }

    func targets() throws -> [LoRATarget] {
        let names = loraTargetModules.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
        return try names.map { n in
            guard let t = LoRATarget(rawValue: n) else {
                throw ValidationError("--lora-target-modules: '\(n)' is not one of \(LoRATarget.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return t
        }
    }

    func run() throws {
        var config = ppo.config
        config.batchSize = ppo.batchSize ?? 32
        let request = TrainRequest(
            policy: model.policy, vlm: vlm, dataset: dataset, outputDir: URL(fileURLWithPath: outputDir),
            dataRoot: dataRoot.map { URL(fileURLWithPath: $0) }, split: split, templates: templates.map { URL(fileURLWithPath: $0) },
            ppo: config, lora: LoRAConfig(rank: loraR, alpha: loraAlpha, dropout: loraDropout, targets: try targets(), useRSLoRA: useRslora),
            valueHeadDropout: valueHeadDropout,
            reward: RewardOptions(imagesPerClass: numImagesForReward, scale: rewardScale, skipUnreadable: skipUnreadable),
            steps: steps, saveFreq: saveFreq, maxNewTokens: maxNewTokens, samplingBatchSize: samplingBatchSize,
            resume: resume, tensorboard: logWith == "tensorboard")
        Interrupt.install()
        let setupBar = ProgressBar(label: "embedding reward images", unit: "images")
        let trainer = try Trainer(request) { phase, done, total in
            if phase == .rewardImages { setupBar.update(done, of: total) }
        }
        setupBar.finish()
        for s in trainer.reward.skipped { FileHandle.standardError.write(Data("warning: skipped \(s.url.path): \(s.reason)\n".utf8)) }
        if let from = trainer.resumedFrom { say("resuming from \(from.path) (step \(trainer.step))") }
        say("training: \(trainer.prompts.count) queries, \(trainer.batchesPerEpoch) batches of \(config.batchSize) per epoch, steps \(trainer.step + 1)...\(steps)")
        let progress = TrainProgress(total: steps, startStep: trainer.step)
        let outcome: Trainer.Outcome
        do {
            outcome = try trainer.run(shouldStop: { Interrupt.requested }, phase: { phase, done, total in
                progress.phase(phase, done, total)
            }, onStep: { progress.step($0) })
        } catch {
            progress.end()
            throw error
        }
        progress.end()
        if outcome == .interrupted {
            let latest = (try? TrainCheckpoint.latest(in: request.outputDir))??.lastPathComponent ?? "none (no step finished)"
            say("interrupted after step \(trainer.step): checkpoint \(latest) in \(outputDir); continue with --resume")
            throw ExitCode(130)
        }
        say("wrote \(outputDir)/final (PEFT adapter + value head), metrics.jsonl and rollouts.jsonl")
    }

    func say(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
}

/// The training progress line: step, mean reward, KL, KL coefficient, seconds per step, ETA. On a terminal
/// it is redrawn in place (with the phase of the step in flight); otherwise one line per step.
final class TrainProgress {
    let total: Int
    let startStep: Int
    let start = Date()
    let isTerminal = isatty(STDERR_FILENO) != 0
    var last: StepRecord?
    var stepsDone = 0
    var lastDraw = Date.distantPast

    init(total: Int, startStep: Int) { self.total = total; self.startStep = startStep }

    func phase(_ p: TrainPhase, _ done: Int, _ of: Int) {
        guard isTerminal, Date().timeIntervalSince(lastDraw) >= 0.2 else { return }
        lastDraw = Date()
        let what = p == .sampling ? "sampling \(done)/\(of)" : p == .scoring ? "scoring" : "optimising"
        draw(status(step: (last?.step ?? startStep) + 1) + "  [\(what)]", newline: false)
    }

    func step(_ r: StepRecord) {
        last = r
        stepsDone += 1
        var line = status(step: r.step)
        for w in r.warnings { line += "  warning: " + w }
        draw(line, newline: !isTerminal || !r.warnings.isEmpty)
    }

    func status(step: Int) -> String {
        let elapsed = Date().timeIntervalSince(start)
        let perStep = stepsDone > 0 ? elapsed / Double(stepsDone) : 0
        var s = "step \(min(step, total))/\(total)"
        if let r = last {
            func f(_ k: String) -> String { r.stats[k].map { String(format: "%.4g", $0) } ?? "-" }
            s += "  reward \(f("env/reward_mean"))  kl \(f("objective/kl"))  kl_coef \(f("objective/kl_coef"))"
        }
        if stepsDone > 0 {
            s += String(format: "  %.1f s/step", perStep)
            s += "  ETA " + ProgressBar.clock(perStep * Double(total - (last?.step ?? startStep)))
        }
        return s
    }

    func draw(_ s: String, newline: Bool) {
        let text = isTerminal ? "\r" + s + "\u{1B}[K" + (newline ? "\n" : "") : s + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }

    func end() {
        if isTerminal, last != nil { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
