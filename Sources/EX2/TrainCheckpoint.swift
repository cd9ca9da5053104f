// Checkpoints of a training run: RUN/step_N/ and RUN/final/, each a PEFT adapter directory
// (adapter_config.json, adapter_model.safetensors) with TRL's value_head.safetensors beside it, plus the
// trainer state: Adam's moments (optimizer.safetensors) and trainer_state.json (the step, Adam's step
// count, the KL coefficient, the score-scaling statistics, the mini-batch counter and the data position).
// The RNG streams are functions of (seed, step), so the step is their whole state.
//
// A checkpoint is written into a hidden sibling directory and renamed into place when complete, so a kill
// at any moment leaves either the previous checkpoint or the new one, never a half-written one under a
// checkpoint's name. Replacing a checkpoint of the same name moves the old one aside first; `latest`
// still finds it there if a kill falls between the two renames. Partial leftovers of a killed write are
// ignored (and cleared by the next save of that name).
import Foundation
import Llama
import ModelFiles
import PPO

public enum TrainCheckpoint {
    public static let stateFile = "trainer_state.json"
    public static let optimizerFile = "optimizer.safetensors"

    public struct Info: Sendable, Codable, Equatable {
        public var step: Int
        public var epoch: Int
        public var batchInEpoch: Int
        public var batchesPerEpoch: Int
        public var queries: Int
        public var seed: UInt64

        enum CodingKeys: String, CodingKey {
            case step, epoch, batchInEpoch = "batch_in_epoch", batchesPerEpoch = "batches_per_epoch", queries, seed
        }
    }

    struct StateFile: Codable {
        var format = "ex2-trainer-state"
        var version = 1
        var info: Info
        var adamStep: Int
        var learningRate: Double
        var klController: KLController
        var scoreScaling: ScoreScaling
        var miniBatchesSeen: Int
        var ppoSteps: Int
        var parameterCount: Int
        var rng: String

        enum CodingKeys: String, CodingKey {
            case format, version, info, adamStep = "adam_step", learningRate = "learning_rate", klController = "kl_controller"
            case scoreScaling = "score_scaling", miniBatchesSeen = "mini_batches_seen", ppoSteps = "ppo_steps"
            case parameterCount = "parameter_count", rng
        }
    }

    public struct CheckpointError: Error, CustomStringConvertible {
        public let path: String
        public let message: String
        public var description: String { "\(path): \(message)" }
    }

    /// Writes `state` as checkpoint `dir` atomically (replacing an older one of that name).
    /// `ordinal` counts this process's checkpoint writes (for the fault-injection hook of the tests).
    public static func save(_ state: PPOState, info: Info, to dir: URL, baseModel: String, ordinal: Int = 0) throws {
        let parent = dir.deletingLastPathComponent()
        let tmp = AtomicDirectory.sibling(of: dir, kind: "partial")
        clearLeftovers(of: dir.lastPathComponent, in: parent, kinds: ["partial", "tmp"])
        do {
            try PEFTAdapter.save(state.adapters, to: tmp, baseModel: baseModel)
            let n = state.adapters.count
            try writeSafetensors(to: tmp.appendingPathComponent(optimizerFile), tensors: [
                ("exp_avg", .f32, [n], Data(bytes: state.optimizer.m, count: n * 4)),
                ("exp_avg_sq", .f32, [n], Data(bytes: state.optimizer.v, count: n * 4)),
            ], metadata: ["format": "pt", "ex2": "torch.optim.Adam state of the flat LoRA + value-head parameter buffer"])
            // Test hook: die as a kill -9 would, with the checkpoint half written.
            if let k = ProcessInfo.processInfo.environment["EX2_FAULT_KILL_IN_CHECKPOINT"], Int(k) == ordinal {
                kill(getpid(), SIGKILL)
            }
            let file = StateFile(info: info, adamStep: state.optimizer.step, learningRate: state.optimizer.learningRate,
                                 klController: state.kl, scoreScaling: state.scores, miniBatchesSeen: state.miniBatchesSeen,
                                 ppoSteps: state.steps, parameterCount: n,
                                 rng: "sampling, data order and mini-batch order streams are derived from (seed, step)")
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(file).write(to: tmp.appendingPathComponent(stateFile), options: .atomic)
            try AtomicDirectory.install(tmp, at: dir)
            // Copies moved aside by earlier, killed replacements are stale now.
            clearLeftovers(of: dir.lastPathComponent, in: parent, kinds: ["old"])
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw CheckpointError(path: dir.path, message: "cannot write the checkpoint: \(error)")
        }
    }

    /// Removes the hidden siblings ".NAME.<kind>-*" of checkpoint `name` (AtomicDirectory's names) left by killed writes.
    static func clearLeftovers(of name: String, in parent: URL, kinds: [String]) {
        let fm = FileManager.default
        guard let items = try? fm.contentsOfDirectory(atPath: parent.path) else { return }
        for item in items where kinds.contains(where: { item.hasPrefix(".\(name).\($0)-") }) {
            try? fm.removeItem(at: parent.appendingPathComponent(item))
        }
    }

    /// The step a checkpoint holds.
    public static func step(of dir: URL) throws -> Int { try readState(dir).info.step }

    static func readState(_ dir: URL) throws -> StateFile {
        let url = dir.appendingPathComponent(stateFile)
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CheckpointError(path: url.path, message: "cannot be read; this is not a complete ex2 checkpoint")
        }
        do {
            let s = try JSONDecoder().decode(StateFile.self, from: data)
            guard s.format == "ex2-trainer-state", s.version == 1 else {
                throw CheckpointError(path: url.path, message: "is format \(s.format) version \(s.version); this ex2 reads ex2-trainer-state version 1")
            }
            return s
        } catch let e as CheckpointError { throw e } catch {
            throw CheckpointError(path: url.path, message: "is not a valid trainer state: \(error)")
        }
    }

    /// The complete checkpoint (step_N or final) of the run in `dir` with the most steps, if any.
    public static func latest(in dir: URL) throws -> URL? {
        let fm = FileManager.default
        guard let items = try? fm.contentsOfDirectory(atPath: dir.path) else { return nil }
        var best: (Int, URL)?
        // A complete checkpoint moved aside while its replacement is renamed in (".NAME.old-*") counts too:
        // a kill between the two renames must not lose it.
        func base(_ item: String) -> String? {
            if item.hasPrefix("."), let r = item.range(of: ".old-") { return String(item[item.index(after: item.startIndex)..<r.lowerBound]) }
            return item.hasPrefix(".") ? nil : item
        }
        for item in items {
            guard let name = base(item), name == "final" || (name.hasPrefix("step_") && Int(name.dropFirst(5)) != nil) else { continue }
            let url = dir.appendingPathComponent(item)
            guard fm.fileExists(atPath: url.appendingPathComponent(stateFile).path) else { continue }
            let s = try step(of: url)
            let preferred = best.map { s > $0.0 || (s == $0.0 && item == "final") } ?? true
            if preferred { best = (s, url) }
        }
        return best?.1
    }

    /// Restores checkpoint `dir` into `state` (whose adapter layout must match). Returns the step.
    public static func load(_ dir: URL, into state: PPOState, model: DecoderConfig) throws -> Int {
        let s = try readState(dir)
        let loaded = try PEFTAdapter.load(dir, model: model, valueHead: dir.appendingPathComponent(PEFTAdapter.valueHeadFile))
        let a = loaded.config, b = state.adapters.config
        guard a.rank == b.rank, a.alpha == b.alpha, Set(a.targets) == Set(b.targets),
              a.useRSLoRA == b.useRSLoRA, loaded.count == state.adapters.count, s.parameterCount == loaded.count else {
            throw CheckpointError(path: dir.path, message: "holds a LoRA adapter (r \(a.rank), alpha \(a.alpha), \(a.targets.map(\.rawValue))) other than this run's (r \(b.rank), alpha \(b.alpha), \(b.targets.map(\.rawValue)))")
        }
        let opt = dir.appendingPathComponent(optimizerFile)
        let m: [Float], v: [Float]
        do {
            let f = try SafetensorsFile(url: opt)
            m = try f.floats("exp_avg"); v = try f.floats("exp_avg_sq")
        } catch {
            throw CheckpointError(path: opt.path, message: "cannot read the optimizer state: \(error)")
        }
        guard m.count == loaded.count, v.count == loaded.count else {
            throw CheckpointError(path: opt.path, message: "holds \(m.count) moments for \(loaded.count) parameters")
        }
        state.restore(PPOState.Snapshot(parameters: Array(UnsafeBufferPointer(start: loaded.parameters, count: loaded.count)),
                                        adamStep: s.adamStep, m: m, v: v, kl: s.klController, scores: s.scoreScaling,
                                        miniBatchesSeen: s.miniBatchesSeen, steps: s.ppoSteps))
        return s.info.step
    }

    // MARK: run settings (config.json)

    static func writeSettings(_ settings: [String: Any], to url: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: settings, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try data.write(to: url, options: .atomic)
    }

    static func readSettings(_ url: URL) throws -> [String: Any] {
        guard let data = try? Data(contentsOf: url),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CheckpointError(path: url.path, message: "is not a readable run configuration; fix or remove it to start afresh")
        }
        return obj
    }
}

/// An append-only JSON Lines log with one object per step ({"step": N, ...}), flushed line by line. On
/// opening, lines of steps after `keepThroughStep` (a resumed run redoes them) and a torn last line are dropped.
final class JSONLines {
    let url: URL
    let handle: FileHandle

    init(url: URL, keepThroughStep: Int) throws {
        self.url = url
        let fm = FileManager.default
        if let data = try? Data(contentsOf: url) {
            var kept = Data()
            for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                      let s = obj["step"] as? Int, s <= keepThroughStep else { continue }
                kept.append(contentsOf: line); kept.append(UInt8(ascii: "\n"))
            }
            if kept != data { try kept.write(to: url, options: .atomic) }
        } else {
            guard fm.createFile(atPath: url.path, contents: nil) else {
                throw TrainCheckpoint.CheckpointError(path: url.path, message: "cannot be created")
            }
        }
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }
    deinit { try? handle.close() }

    func append(step: Int, fields: [String: Any]) throws {
        var obj = fields.mapValues(Self.jsonSafe)
        obj["step"] = step
        var data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
        data.append(UInt8(ascii: "\n"))
        try handle.write(contentsOf: data)
    }

    /// JSON has no NaN or infinity: such numbers are written as null.
    static func jsonSafe(_ v: Any) -> Any {
        switch v {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let f as Float: return f.isFinite ? Double(f) : NSNull()
        case let dict as [String: Double]: return dict.mapValues { $0.isFinite ? $0 as Any : NSNull() }
        case let dict as [String: Any]: return dict.mapValues(jsonSafe)
        case let list as [Any]: return list.map(jsonSafe)
        default: return v
        }
    }
}
