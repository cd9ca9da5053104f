// PEFT LoRA adapter directories in and out (adapter_config.json + adapter_model.safetensors), and TRL's
// value head beside them (value_head.safetensors: summary.weight [1, hidden], summary.bias [1]). Tensor
// names are PEFT's for Llama-family and Gemma 3 causal LMs, and live here only. Rows are always in HF
// order: the GGUF loader already undoes llama.cpp's q/k row permutation of the base, so the engine's own
// rows are HF's and lora_B needs no reordering either way.
//
// Reading is strict: a config the engine cannot honour (DoRA, per-module rank or alpha patterns, layer
// subsets, fan_in_fan_out, trained biases), a missing, misshapen, unused or non-finite tensor is an error
// naming the file and the tensor. Unknown config keys are ignored, as PEFT's own loader does.
import Foundation
import ModelFiles
import Tensors

public struct AdapterError: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}

/// The fields of adapter_config.json the engine reads (others are ignored).
struct PEFTConfigFile: Codable {
    var peft_type: String?
    var task_type: String?
    var base_model_name_or_path: String?
    var r: Int?
    var lora_alpha: Double?
    var lora_dropout: Double?
    var target_modules: TargetModules?
    var bias: String?
    var fan_in_fan_out: Bool?
    var use_rslora: Bool?
    var use_dora: Bool?
    var modules_to_save: [String]?
    var layers_to_transform: IntOrList?
    var rank_pattern: [String: Double]?
    var alpha_pattern: [String: Double]?

    enum TargetModules: Codable {
        case list([String]), pattern(String)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let l = try? c.decode([String].self) { self = .list(l) } else { self = .pattern(try c.decode(String.self)) }
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self { case .list(let l): try c.encode(l); case .pattern(let p): try c.encode(p) }
        }
    }
    enum IntOrList: Codable {
        case one(Int), many([Int])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { self = .one(i) } else { self = .many(try c.decode([Int].self)) }
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self { case .one(let i): try c.encode(i); case .many(let l): try c.encode(l) }
        }
    }
}

public enum PEFTAdapter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"
    public static let valueHeadFile = "value_head.safetensors"
    /// What PEFT writes with save_pretrained(safe_serialization=False); read when there is no safetensors file.
    public static let weightsBinFile = "adapter_model.bin"

    /// PEFT's state-dict key of `target`'s A (or B) in layer l.
    public static func tensorName(layer l: Int, _ target: LoRATarget, b: Bool) -> String {
        let block: String
        switch target {
        case .q, .k, .v, .o: block = "self_attn"
        case .gate, .up, .down: block = "mlp"
        }
        return "base_model.model.model.layers.\(l).\(block).\(target.rawValue).lora_\(b ? "B" : "A").weight"
    }

    /// Reads adapter_config.json of `dir` into a LoRAConfig for model c.
    public static func readConfig(_ dir: URL) throws -> LoRAConfig {
        let url = dir.appendingPathComponent(configFile)
        let file = url.path
        guard FileManager.default.fileExists(atPath: file) else {
            throw AdapterError(file: dir.path, message: "no \(configFile): not a PEFT adapter directory (expected \(configFile) and \(weightsFile))")
        }
        let cfg: PEFTConfigFile
        do {
            cfg = try JSONDecoder().decode(PEFTConfigFile.self, from: try Data(contentsOf: url))
        } catch let e as DecodingError {
            throw AdapterError(file: file, message: "is not a valid adapter config: \(describe(e))")
        } catch {
            throw AdapterError(file: file, message: "cannot be read: \(error.localizedDescription)")
        }
        func refuse(_ m: String) -> AdapterError { AdapterError(file: file, message: m) }
        if let t = cfg.peft_type, t.uppercased() != "LORA" { throw refuse("peft_type \(t) is not supported (only LORA)") }
        guard let r = cfg.r, r > 0, r <= 4096 else { throw refuse("r must be a positive rank, got \(cfg.r.map(String.init) ?? "none")") }
        let alpha = cfg.lora_alpha ?? 8
        guard alpha.isFinite, alpha > 0 else { throw refuse("lora_alpha must be positive, got \(alpha)") }
        let dropout = cfg.lora_dropout ?? 0
        guard dropout >= 0, dropout < 1 else { throw refuse("lora_dropout must be in [0, 1), got \(dropout)") }
        if cfg.use_dora == true { throw refuse("use_dora (DoRA) adapters are not supported") }
        if cfg.fan_in_fan_out == true { throw refuse("fan_in_fan_out adapters (Conv1D bases such as GPT-2) are not supported") }
        if let b = cfg.bias, b != "none" { throw refuse("bias \"\(b)\" is not supported (only \"none\")") }
        if let m = cfg.modules_to_save, !m.isEmpty { throw refuse("modules_to_save \(m) is not supported") }
        if cfg.layers_to_transform != nil { throw refuse("layers_to_transform is not supported: adapters must cover every layer") }
        if let p = cfg.rank_pattern, !p.isEmpty { throw refuse("rank_pattern is not supported") }
        if let p = cfg.alpha_pattern, !p.isEmpty { throw refuse("alpha_pattern is not supported") }
        var targets: [LoRATarget] = []
        switch cfg.target_modules {
        case .list(let names)?:
            for n in names {
                // PEFT matches a name as the last component(s) of a module path.
                let last = n.split(separator: ".").last.map(String.init) ?? n
                guard let t = LoRATarget(rawValue: last) else {
                    throw refuse("target module '\(n)' is not a decoder projection (expected some of \(LoRATarget.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                if !targets.contains(t) { targets.append(t) }
            }
        case .pattern(let p)?:
            guard let t = LoRATarget(rawValue: p) else { throw refuse("target_modules pattern '\(p)' is not supported; list the module names instead") }
            targets = [t]
        case nil:
            throw refuse("target_modules is missing")
        }
        guard !targets.isEmpty else { throw refuse("target_modules is empty") }
        targets.sort { $0.index < $1.index }
        return LoRAConfig(rank: r, alpha: Float(alpha), dropout: Float(dropout), targets: targets, useRSLoRA: cfg.use_rslora ?? false)
    }

    /// Loads the adapter in `dir` for a model of configuration c, with the value head from
    /// value_head.safetensors when present (or `valueHead` is forced).
    public static func load(_ dir: URL, model c: DecoderConfig, valueHead: URL? = nil) throws -> LoRAState {
        let config = try readConfig(dir)
        // safetensors is preferred; PEFT's save_pretrained(safe_serialization=False) writes adapter_model.bin.
        var weightsURL = dir.appendingPathComponent(weightsFile)
        if !FileManager.default.fileExists(atPath: weightsURL.path) {
            let bin = dir.appendingPathComponent(weightsBinFile)
            guard FileManager.default.fileExists(atPath: bin.path) else {
                throw AdapterError(file: dir.path, message: "no \(weightsFile) (or \(weightsBinFile))")
            }
            weightsURL = bin
        }
        let headURL = valueHead ?? dir.appendingPathComponent(valueHeadFile)
        let hasHead = FileManager.default.fileExists(atPath: headURL.path)
        if valueHead != nil && !hasHead { throw AdapterError(file: headURL.path, message: "value head file not found") }
        let state = LoRAState(model: c, config: config, valueHead: hasHead, seed: 0)
        let weights = try openWeights(weightsURL)
        var used = Set<String>()
        func read(_ f: any WeightSource, _ file: String, _ name: String, _ shape: [Int], into dst: UnsafeMutablePointer<Float>) throws {
            guard let have = f.shape(of: name) else { throw AdapterError(file: file, message: "tensor '\(name)' is missing") }
            guard have == shape else {
                throw AdapterError(file: file, message: "tensor '\(name)' has shape \(have), the model needs \(shape); the adapter was made for another model")
            }
            let v: [Float]
            do { v = try f.floats(name) } catch { throw AdapterError(file: file, message: "tensor '\(name)': \(error)") }
            if let bad = v.firstIndex(where: { !$0.isFinite }) {
                throw AdapterError(file: file, message: "tensor '\(name)' holds a non-finite value (\(v[bad])) at element \(bad)")
            }
            dst.update(from: v, count: v.count)
            used.insert(name)
        }
        let r = config.rank
        for s in state.slots {
            try read(weights, weightsURL.path, tensorName(layer: s.layer, s.target, b: false), [r, s.inFeatures], into: state.parameters + s.a)
            try read(weights, weightsURL.path, tensorName(layer: s.layer, s.target, b: true), [s.outFeatures, r], into: state.parameters + s.b)
        }
        if let extra = weights.tensorNames.first(where: { !used.contains($0) }) {
            throw AdapterError(file: weightsURL.path, message: "tensor '\(extra)' is not used by a LoRA adapter on \(c.layers) layers with targets \(config.targets.map(\.rawValue)) (the adapter does not fit this model or its config)")
        }
        if hasHead, let vo = state.valueHeadOffset {
            let head = try openWeights(headURL)
            used = []
            let H = c.hiddenSize
            try read(head, headURL.path, "summary.weight", [1, H], into: state.parameters + vo)
            try read(head, headURL.path, "summary.bias", [1], into: state.parameters + vo + H)
            if let extra = head.tensorNames.first(where: { !used.contains($0) }) {
                throw AdapterError(file: headURL.path, message: "tensor '\(extra)' is not part of a value head (expected summary.weight and summary.bias)")
            }
        }
        return state
    }

    /// Writes `state` as a PEFT adapter directory (and value_head.safetensors when it has a value head).
    /// Files are written to a temporary sibling directory that then takes the place of `dir` (the old one
    /// is renamed aside first and deleted after), so a crash leaves the old directory or the new one
    /// (possibly under its temporary sibling name), never a mix.
    public static func save(_ state: LoRAState, to dir: URL, baseModel: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: dir.deletingLastPathComponent(), withIntermediateDirectories: true)
        let tmp = AtomicDirectory.sibling(of: dir, kind: "tmp")
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        do {
            try writeFiles(state, to: tmp, baseModel: baseModel)
            try AtomicDirectory.install(tmp, at: dir)
        } catch {
            try? fm.removeItem(at: tmp)
            throw AdapterError(file: dir.path, message: "cannot write the adapter: \(error)")
        }
    }

    static func writeFiles(_ state: LoRAState, to dir: URL, baseModel: String) throws {
        let c = state.config, r = c.rank
        func data(_ p: UnsafePointer<Float>, _ n: Int) -> Data { Data(bytes: p, count: n * 4) }
        var tensors: [(name: String, dtype: DType, shape: [Int], data: Data)] = []
        for s in state.slots {
            tensors.append((tensorName(layer: s.layer, s.target, b: false), .f32, [r, s.inFeatures], data(state.parameters + s.a, r * s.inFeatures)))
            tensors.append((tensorName(layer: s.layer, s.target, b: true), .f32, [s.outFeatures, r], data(state.parameters + s.b, r * s.outFeatures)))
        }
        try writeSafetensors(to: dir.appendingPathComponent(weightsFile), tensors: tensors, metadata: ["format": "pt"])
        if let vo = state.valueHeadOffset {
            let H = state.model.hiddenSize
            try writeSafetensors(to: dir.appendingPathComponent(valueHeadFile), tensors: [
                ("summary.weight", .f32, [1, H], data(state.parameters + vo, H)),
                ("summary.bias", .f32, [1], data(state.parameters + vo + H, 1)),
            ], metadata: ["format": "pt"])
        }
        let config = PEFTConfigFile(
            peft_type: "LORA", task_type: "CAUSAL_LM", base_model_name_or_path: baseModel, r: r,
            lora_alpha: Double(c.alpha), lora_dropout: Double(c.dropout), target_modules: .list(c.targets.map(\.rawValue)),
            bias: "none", fan_in_fan_out: false, use_rslora: c.useRSLoRA, use_dora: false, modules_to_save: nil,
            layers_to_transform: nil, rank_pattern: [:], alpha_pattern: [:])
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as! [String: Any]
        // Fields PEFT writes that the engine does not read, with PEFT's values, so Python sees a complete config.
        json["inference_mode"] = true
        json["init_lora_weights"] = true
        json["layers_pattern"] = NSNull()
        json["layers_to_transform"] = NSNull()
        json["modules_to_save"] = NSNull()
        json["revision"] = NSNull()
        let bytes = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try bytes.write(to: dir.appendingPathComponent(configFile), options: .atomic)
    }

    /// Opens a safetensors file (or a torch.save .bin), reporting a damaged, unreadable or unsafe one as an
    /// AdapterError like every other failure of `load`.
    private static func openWeights(_ url: URL) throws -> any WeightSource {
        do {
            if url.pathExtension == "bin" { return try TorchCheckpointFile(url: url) }
            return try SafetensorsFile(url: url)
        } catch {
            var m = "\(error)"
            if m.hasPrefix(url.path + ": ") { m.removeFirst(url.path.count + 2) }
            throw AdapterError(file: url.path, message: m)
        }
    }

    private static func describe(_ e: DecodingError) -> String {
        switch e {
        case let .typeMismatch(_, ctx), let .valueNotFound(_, ctx), let .keyNotFound(_, ctx), let .dataCorrupted(ctx):
            let path = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? ctx.debugDescription : "field '\(path)': \(ctx.debugDescription)"
        @unknown default:
            return "\(e)"
        }
    }
}
