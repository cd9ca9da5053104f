// open_clip's HFTextEncoder for RoBERTa-family text towers (roberta-ViT-B-32, xlm-roberta-base-ViT-B-32,
// xlm-roberta-large-ViT-H-14): the transformers encoder the config names (text_cfg.hf_model_name) run on the
// token ids open_clip's HFTokenizer gives, with attention mask ids != pad_token_id; open_clip's MeanPooler (the
// mean of the final states over the real tokens); then hf_proj_type "mlp" (Linear, GELU, Linear, no biases, the
// hidden width (W + E) / 2), "linear" (one Linear without bias), or nothing when W == E and no projection is
// named. RoBERTa's position ids count the real tokens from padding_idx + 1; padded positions are masked out, so
// the real tokens alone run here, which gives the same states. The encoder's shape comes from the model's
// config.json (beside the weights or in the Hugging Face cache), else from the table of the configs open_clip
// names, which are those of the hub models.
import Foundation
import Layers
import ModelFiles
import Tensors

public struct HFTextModelConfig: Sendable, Equatable {
    public var modelType: String
    public var encoder: ALIGNConfig.Text

    /// The hub configs of the RoBERTa-family models open_clip 3.3's configs name.
    static let known: [String: HFTextModelConfig] = {
        func roberta(_ type: String, vocab: Int, hidden: Int, layers: Int, heads: Int, inner: Int) -> HFTextModelConfig {
            HFTextModelConfig(modelType: type, encoder: ALIGNConfig.Text(
                vocabSize: vocab, hiddenSize: hidden, layers: layers, heads: heads, intermediateSize: inner,
                maxPositionEmbeddings: 514, typeVocabSize: 1, activation: .gelu, layerNormEps: 1e-5, padTokenId: 1,
                positionOffset: 2))
        }
        return [
            "roberta-base": roberta("roberta", vocab: 50265, hidden: 768, layers: 12, heads: 12, inner: 3072),
            "xlm-roberta-base": roberta("xlm-roberta", vocab: 250002, hidden: 768, layers: 12, heads: 12, inner: 3072),
            "xlm-roberta-large": roberta("xlm-roberta", vocab: 250002, hidden: 1024, layers: 24, heads: 16, inner: 4096),
        ]
    }()

    /// transformers' RobertaConfig / XLMRobertaConfig from config.json.
    public init(contentsOf url: URL) throws {
        struct Raw: Decodable {
            var model_type: String?
            var vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: Int?
            var max_position_embeddings, type_vocab_size, pad_token_id: Int?
            var layer_norm_eps: Double?
            var hidden_act: String?
            var position_embedding_type: String?
        }
        let raw: Raw
        do { raw = try JSONDecoder().decode(Raw.self, from: Data(contentsOf: url)) } catch {
            throw CLIPError.badConfig(file: url.path, detail: "not a readable transformers config.json: \(describe(error))")
        }
        let type = raw.model_type ?? ""
        guard ["roberta", "xlm-roberta"].contains(type) else {
            throw CLIPError.unsupportedArchitecture(model: url.path, detail: "text_cfg.hf_model_name of model_type '\(type)' (implemented: roberta, xlm-roberta)")
        }
        guard (raw.position_embedding_type ?? "absolute") == "absolute" else {
            throw CLIPError.unsupportedArchitecture(model: url.path, detail: "position_embedding_type '\(raw.position_embedding_type!)'")
        }
        let act = raw.hidden_act ?? "gelu"
        guard let activation = Activation(configName: act) else {
            throw CLIPError.unsupportedArchitecture(model: url.path, detail: "hidden_act '\(act)'")
        }
        let pad = raw.pad_token_id ?? 1
        modelType = type
        encoder = ALIGNConfig.Text(
            vocabSize: raw.vocab_size ?? 50265, hiddenSize: raw.hidden_size ?? 768, layers: raw.num_hidden_layers ?? 12,
            heads: raw.num_attention_heads ?? 12, intermediateSize: raw.intermediate_size ?? 3072,
            maxPositionEmbeddings: raw.max_position_embeddings ?? 514, typeVocabSize: raw.type_vocab_size ?? 1,
            activation: activation, layerNormEps: Float(raw.layer_norm_eps ?? 1e-5), padTokenId: pad, positionOffset: pad + 1)
        let e = encoder
        guard e.hiddenSize > 0, e.heads > 0, e.hiddenSize % e.heads == 0, e.layers > 0, e.vocabSize > 0, e.typeVocabSize > 0 else {
            throw CLIPError.unsupportedArchitecture(model: url.path, detail: "hidden_size \(e.hiddenSize), \(e.heads) heads, \(e.layers) layers, vocab \(e.vocabSize)")
        }
    }

    /// The config.json of `name` from the Hugging Face cache, else from `dir` when it is a RoBERTa-family config
    /// (an open_clip repository's own files are not).
    static func find(_ name: String, near dir: URL?) throws -> HFTextModelConfig? {
        var candidates: [URL] = []
        if let snap = cachedSnapshot(name) { candidates.append(snap) }
        if let dir { candidates.append(dir) }
        for d in candidates {
            let url = d.appendingPathComponent("config.json")
            guard let data = try? Data(contentsOf: url),
                  let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let type = obj["model_type"] as? String, ["roberta", "xlm-roberta"].contains(type) else { continue }
            return try HFTextModelConfig(contentsOf: url)
        }
        return nil
    }

    init(modelType: String, encoder: ALIGNConfig.Text) {
        self.modelType = modelType
        self.encoder = encoder
    }
}

/// The HF text tower of an open_clip config: encoder shape, pooling and projection.
public struct HFTextTowerConfig: Sendable, Equatable {
    public enum Projection: Sendable, Equatable { case mlp, linear, none }
    public var modelName: String
    public var model: HFTextModelConfig
    public var projection: Projection
}

struct HFTextTowerWeights: Sendable {
    var encoder: BERTWeights
    var projection: [Linear]   // applied in order, GELU between (mlp), or one Linear, or none
}

struct HFTextTower: Sendable {
    let config: HFTextTowerConfig
    let encoder: BERTTower
    let projection: [Linear]

    init(config: HFTextTowerConfig, weights: HFTextTowerWeights) {
        self.config = config
        encoder = BERTTower(config: config.model.encoder, weights: weights.encoder)
        projection = weights.projection
    }

    /// Embeddings of padded id sequences: the real tokens (ids != pad) are encoded, mean-pooled and projected.
    func embed(_ batch: [[Int]]) throws -> [[Float]] {
        let pad = config.model.encoder.padTokenId
        let real = batch.map { ids in ids.filter { $0 != pad } }
        if let i = real.firstIndex(where: \.isEmpty) {
            throw CLIPError.badInput("text \(i) has no token other than padding (open_clip's mean over no tokens is undefined)")
        }
        let pooled = try encoder.meanStates(real)
        // One GEMM per projection layer over the whole batch.
        var x = pooled.flatMap { $0 }, width = config.model.encoder.hiddenSize
        for (k, layer) in projection.enumerated() {
            var y = [Float](repeating: 0, count: batch.count * layer.outFeatures)
            x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
                layer.forward(yb.baseAddress!, xb.baseAddress!, rows: batch.count)
                if k + 1 < projection.count { CLIPActivation.apply(.gelu, yb.baseAddress!, count: yb.count) }
            } }
            x = y
            width = layer.outFeatures
        }
        return (0..<batch.count).map { Array(x[($0 * width)..<(($0 + 1) * width)]) }
    }

    static func read(_ c: HFTextTowerConfig, embedDim e: Int, _ r: inout StrictWeightReader) throws -> HFTextTowerWeights {
        let w = c.model.encoder.hiddenSize
        let projection: [Linear]
        switch c.projection {
        case .mlp:
            let hidden = (w + e) / 2
            projection = [try r.linear("text.proj.0", out: hidden, in: w, bias: false), try r.linear("text.proj.2", out: e, in: hidden, bias: false)]
        case .linear: projection = [try r.linear("text.proj", out: e, in: w, bias: false)]
        case .none: projection = []
        }
        return HFTextTowerWeights(encoder: try BERTTower.read(c.model.encoder, &r, prefix: "text.transformer."), projection: projection)
    }
}
