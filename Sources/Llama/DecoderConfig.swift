// The configuration of a decoder-only language model of the Llama or Gemma 3 families, decoded from an HF
// config.json (both the transformers 4 keys such as `rope_theta` and the transformers 5 `rope_parameters`)
// or from GGUF metadata. Unsupported combinations are rejected here, before any weight is read, so a model
// the engine cannot run fails with a message instead of producing wrong numbers.
import Foundation
import ModelFiles
import Tensors

public enum DecoderArchitecture: String, Sendable, Codable {
    case llama, mistral, qwen2, gemma3
}

public struct DecoderConfig: Sendable, Equatable {
    public var architecture: DecoderArchitecture
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var rmsEps: Float
    public var ropeTheta: Float
    /// RoPE base of sliding-window layers (Gemma 3); nil = same as `ropeTheta`.
    public var ropeLocalTheta: Float?
    public var ropeLinearScaling: Float = 1
    public var maxPositions: Int
    public var tieEmbeddings: Bool
    public var attentionBias: Bool
    public var activation: Activation
    /// Keys each query of a sliding layer sees (itself included); nil = no sliding window.
    public var slidingWindow: Int?
    /// Per layer: true when the layer uses the sliding window.
    public var slidingLayers: [Bool]
    /// Attention logits scale (1/sqrt(head_dim) unless the model says otherwise).
    public var attentionScale: Float
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]

    public var isGemma: Bool { architecture == .gemma3 }
    /// Gemma scales embeddings by sqrt(hidden) and normalises q/k per head, and around attention and MLP.
    public var embeddingScale: Float { isGemma ? Float(Double(hiddenSize).squareRoot()) : 1 }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}

// MARK: - HF config.json

private struct HFConfig: Decodable {
    var model_type: String?
    var architectures: [String]?
    var hidden_size: Int?
    var intermediate_size: Int?
    var num_hidden_layers: Int?
    var num_attention_heads: Int?
    var num_key_value_heads: Int?
    var head_dim: Int?
    var vocab_size: Int?
    var rms_norm_eps: Double?
    var rope_theta: Double?
    var rope_local_base_freq: Double?
    var rope_scaling: RopeParams?
    var rope_parameters: RopeParameters?
    var max_position_embeddings: Int?
    var tie_word_embeddings: Bool?
    var attention_bias: Bool?
    var mlp_bias: Bool?
    var hidden_act: String?
    var hidden_activation: String?
    var sliding_window: Int?
    var sliding_window_pattern: Int?
    var _sliding_window_pattern: Int?
    var layer_types: [String]?
    var use_sliding_window: Bool?
    var query_pre_attn_scalar: Double?
    var final_logit_softcapping: Double?
    var attn_logit_softcapping: Double?
    var bos_token_id: IntOrList?
    var eos_token_id: IntOrList?
    var text_config: TextConfigMarker?

    struct TextConfigMarker: Decodable {}
    struct RopeParams: Decodable {
        var rope_theta: Double?
        var rope_type: String?
        var type: String?
        var factor: Double?
    }
    enum RopeParameters: Decodable {
        case single(RopeParams)
        case perLayerType([String: RopeParams])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let m = try? c.decode([String: RopeParams].self), m.keys.contains(where: { $0.hasSuffix("attention") }) {
                self = .perLayerType(m)
            } else {
                self = .single(try c.decode(RopeParams.self))
            }
        }
    }
    enum IntOrList: Decodable {
        case one(Int), many([Int])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { self = .one(i) } else { self = .many(try c.decode([Int].self)) }
        }
        var values: [Int] { switch self { case .one(let i): [i]; case .many(let l): l } }
    }
}

extension DecoderConfig {
    /// Reads `config.json` in an HF model directory.
    public init(configJSON url: URL) throws {
        let file = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ConfigError(file: file, message: "cannot read the model configuration (\(error.localizedDescription))")
        }
        let c: HFConfig
        do { c = try JSONDecoder().decode(HFConfig.self, from: data) } catch {
            throw ConfigError(file: file, message: "not a valid config.json: \(error)")
        }
        func need<T>(_ v: T?, _ key: String) throws -> T {
            guard let v else { throw ConfigError(file: file, message: "missing key \"\(key)\"") }
            return v
        }
        let type = c.model_type ?? ""
        let arch: DecoderArchitecture
        switch type {
        case "llama": arch = .llama
        case "mistral": arch = .mistral
        case "qwen2": arch = .qwen2
        case "gemma3_text": arch = .gemma3
        case "gemma3":
            throw ConfigError(file: file, message: "multimodal Gemma 3 checkpoints are not supported; use a text-only (gemma3_text) checkpoint")
        default:
            throw ConfigError(file: file, message: "model_type \"\(type)\" is not supported (supported: llama, mistral, qwen2, gemma3_text)")
        }
        let hidden = try need(c.hidden_size, "hidden_size")
        let heads = try need(c.num_attention_heads, "num_attention_heads")
        let layers = try need(c.num_hidden_layers, "num_hidden_layers")
        let headDim = c.head_dim ?? hidden / max(heads, 1)

        var theta = c.rope_theta
        var localTheta = c.rope_local_base_freq
        var ropeType: String? = c.rope_scaling?.rope_type ?? c.rope_scaling?.type
        var factor = c.rope_scaling?.factor
        switch c.rope_parameters {
        case .single(let p)?:
            theta = p.rope_theta ?? theta; ropeType = p.rope_type ?? p.type ?? ropeType; factor = p.factor ?? factor
        case .perLayerType(let m)?:
            if let full = m["full_attention"] {
                theta = full.rope_theta ?? theta
                ropeType = full.rope_type ?? full.type ?? ropeType; factor = full.factor ?? factor
            }
            if let local = m["sliding_attention"] {
                localTheta = local.rope_theta ?? localTheta
                if let t = local.rope_type ?? local.type, t != "default" {
                    throw ConfigError(file: file, message: "rope type \"\(t)\" on sliding layers is not supported")
                }
            }
        case nil: break
        }
        var linear: Float = 1
        switch ropeType {
        case nil, "default": break
        case "linear": linear = Float(factor ?? 1)
        case let t?: throw ConfigError(file: file, message: "rope scaling \"\(t)\" is not supported yet (supported: default, linear)")
        }
        if let s = c.final_logit_softcapping, arch == .gemma3 {
            throw ConfigError(file: file, message: "final_logit_softcapping \(s) is not supported")
        }
        if let s = c.attn_logit_softcapping, arch == .gemma3 {
            throw ConfigError(file: file, message: "attn_logit_softcapping \(s) is not supported")
        }
        if c.mlp_bias == true { throw ConfigError(file: file, message: "mlp_bias = true is not supported") }

        var window: Int? = nil
        var sliding = [Bool](repeating: false, count: layers)
        switch arch {
        case .gemma3:
            window = c.sliding_window
            if let types = c.layer_types {
                guard types.count == layers else {
                    throw ConfigError(file: file, message: "layer_types has \(types.count) entries for \(layers) layers")
                }
                sliding = types.map { $0 == "sliding_attention" }
            } else {
                let pattern = c.sliding_window_pattern ?? c._sliding_window_pattern ?? 6
                sliding = (0..<layers).map { ($0 + 1) % pattern != 0 }
            }
        case .mistral, .qwen2:
            if let w = c.sliding_window, c.use_sliding_window ?? (arch == .mistral) {
                window = w
                sliding = [Bool](repeating: true, count: layers)
            }
        case .llama: break
        }
        let act = c.hidden_activation ?? c.hidden_act ?? (arch == .gemma3 ? "gelu_pytorch_tanh" : "silu")
        guard let activation = Activation(configName: act) else {
            throw ConfigError(file: file, message: "activation \"\(act)\" is not supported")
        }
        self.init(
            architecture: arch, hiddenSize: hidden,
            intermediateSize: try need(c.intermediate_size, "intermediate_size"),
            layers: layers, heads: heads, kvHeads: c.num_key_value_heads ?? heads, headDim: headDim,
            vocabSize: try need(c.vocab_size, "vocab_size"),
            rmsEps: Float(c.rms_norm_eps ?? 1e-6),
            ropeTheta: Float(theta ?? 10000), ropeLocalTheta: arch == .gemma3 ? Float(localTheta ?? 10000) : nil,
            ropeLinearScaling: linear,
            maxPositions: c.max_position_embeddings ?? 4096,
            tieEmbeddings: c.tie_word_embeddings ?? (arch == .gemma3),
            attentionBias: arch == .qwen2 || (c.attention_bias ?? false),
            activation: activation, slidingWindow: window, slidingLayers: sliding,
            attentionScale: Float(1 / (c.query_pre_attn_scalar ?? Double(headDim)).squareRoot()),
            bosTokenId: c.bos_token_id?.values.first, eosTokenIds: c.eos_token_id?.values ?? [])
        try validate(file: file)
    }

    /// Reads the model hyper-parameters of a GGUF file (llama, qwen2 and gemma3 architectures).
    public init(gguf: GGUFFile) throws {
        let file = gguf.url.path
        guard let archName = gguf.string("general.architecture") else {
            throw ConfigError(file: file, message: "missing general.architecture")
        }
        let arch: DecoderArchitecture
        switch archName {
        case "llama": arch = .llama
        case "qwen2": arch = .qwen2
        case "gemma3": arch = .gemma3
        default:
            throw ConfigError(file: file, message: "GGUF architecture \"\(archName)\" is not supported (supported: llama, qwen2, gemma3)")
        }
        func need(_ key: String) throws -> Int {
            guard let v = gguf.int("\(archName).\(key)") else { throw ConfigError(file: file, message: "missing \(archName).\(key)") }
            return v
        }
        let hidden = try need("embedding_length"), heads = try need("attention.head_count")
        let layers = try need("block_count")
        let headDim = gguf.int("\(archName).attention.key_length") ?? gguf.int("\(archName).rope.dimension_count") ?? hidden / max(heads, 1)
        var vocab = gguf.int("\(archName).vocab_size")
        if vocab == nil, let t = gguf.tensor("token_embd.weight"), t.dims.count == 2 { vocab = t.dims[1] }
        if let scaling = gguf.string("\(archName).rope.scaling.type"), scaling != "none" {
            if scaling != "linear" {
                throw ConfigError(file: file, message: "rope scaling \"\(scaling)\" is not supported yet")
            }
        }
        let linear = Float(gguf.double("\(archName).rope.scaling.factor") ?? 1)
        var window: Int? = nil
        var sliding = [Bool](repeating: false, count: layers)
        if arch == .gemma3 {
            window = gguf.int("gemma3.attention.sliding_window")
            // llama.cpp's gemma3 rule: every sixth layer is global, the others use the sliding window.
            sliding = (0..<layers).map { ($0 + 1) % 6 != 0 }
        }
        let eos = gguf.int("tokenizer.ggml.eos_token_id")
        self.init(
            architecture: arch, hiddenSize: hidden, intermediateSize: try need("feed_forward_length"),
            layers: layers, heads: heads, kvHeads: gguf.int("\(archName).attention.head_count_kv") ?? heads,
            headDim: headDim, vocabSize: vocab ?? 0,
            rmsEps: Float(gguf.double("\(archName).attention.layer_norm_rms_epsilon") ?? 1e-6),
            ropeTheta: Float(gguf.double("\(archName).rope.freq_base") ?? 10000),
            ropeLocalTheta: arch == .gemma3 ? 10000 : nil, ropeLinearScaling: linear == 0 ? 1 : linear,
            maxPositions: gguf.int("\(archName).context_length") ?? 4096,
            tieEmbeddings: gguf.tensor("output.weight") == nil,
            attentionBias: gguf.tensor("blk.0.attn_q.bias") != nil,
            activation: arch == .gemma3 ? .geluTanh : .silu,
            slidingWindow: window, slidingLayers: sliding,
            attentionScale: 1 / Float(headDim).squareRoot(),
            bosTokenId: gguf.int("tokenizer.ggml.bos_token_id"), eosTokenIds: eos.map { [$0] } ?? [])
        try validate(file: file)
    }

    func validate(file: String) throws {
        func bad(_ m: String) -> ConfigError { ConfigError(file: file, message: m) }
        guard hiddenSize > 0, intermediateSize > 0, layers > 0, heads > 0, kvHeads > 0, headDim > 0, vocabSize > 0 else {
            throw bad("sizes must be positive (hidden \(hiddenSize), intermediate \(intermediateSize), layers \(layers), heads \(heads), kv heads \(kvHeads), head dim \(headDim), vocab \(vocabSize))")
        }
        guard heads % kvHeads == 0 else { throw bad("\(heads) attention heads are not a multiple of \(kvHeads) key/value heads") }
        guard headDim % 2 == 0 else { throw bad("head dimension \(headDim) must be even for rotary embeddings") }
        guard slidingLayers.count == layers else { throw bad("sliding layer pattern does not match the layer count") }
    }
}
