// Model configurations: transformers' CLIPConfig (config.json) and OpenCLIP's model_cfg
// (open_clip_config.json, or the built-in table in OpenCLIPRegistry), decoded as Codable structs and
// lowered to one `CLIPArchitecture` that the towers run. OpenCLIP configs carry many switches; a key
// that would change the computation and is not implemented here is rejected by name rather than ignored,
// so a SigLIP, CoCa or ResNet checkpoint fails at load instead of producing wrong embeddings.
import Foundation
import Tensors

// MARK: - the architecture the engine runs

/// The hyper-parameters of one pre-LN transformer stack.
public struct CLIPTransformerConfig: Sendable, Equatable {
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var mlpWidth: Int
    public var activation: Activation
    public var layerNormEps: Float
    /// LayerScale gammas on both residual branches of every block.
    public var layerScale: Bool = false
    /// timm's GeGluMlp (ViTamin): LayerNorm (eps 1e-6) inside the MLP, then act(w0 x) * (w1 x), then w2; the MLP
    /// width is w0's and w1's.
    public var gatedMLP: Bool = false

    public var headDim: Int { width / heads }
}

/// Which position of the final hidden states becomes the text embedding.
public enum CLIPTextPooling: Sendable, Equatable {
    /// The first occurrence of this token id (transformers with a real eos_token_id, OpenCLIP "eos").
    case firstToken(Int)
    /// The position of the largest token id (OpenAI CLIP: EOS is the largest id; OpenCLIP "argmax",
    /// transformers' legacy configs with eos_token_id == 2).
    case argmax
    /// The last position of the padded context (OpenCLIP "last").
    case last
    /// Position 0 (OpenCLIP "first").
    case first
}

public struct CLIPTextConfig: Sendable, Equatable {
    public var transformer: CLIPTransformerConfig
    public var vocabSize: Int
    public var contextLength: Int
    public var causal: Bool
    public var pooling: CLIPTextPooling
    /// Fills the context when a tower needs the whole padded sequence (non-causal, or "last" pooling).
    public var padTokenId: Int
    public var projectionBias: Bool
    /// False for OpenCLIP's proj_type "none": the normed pooled state is the embedding.
    public var projected: Bool = true
    /// CoCa's embed_cls: a learned token appended after the padded context is the pooled position; keys at
    /// padding are hidden, with open_clip's legacy mask offset (key j > 0 is hidden when token j - 1 is padding).
    public var appendedClassToken: Bool = false
}

public struct CLIPVisionConfig: Sendable, Equatable {
    public enum Pooling: Sendable, Equatable {
        case classToken, average
        /// CoCa: learned queries attend over all tokens (LayerNorm'd keys and queries); the first query's output,
        /// LayerNorm'd, is the pooled vector (width embed_dim), then the projection.
        case attentional(heads: Int, queries: Int)
    }
    public var transformer: CLIPTransformerConfig
    public var imageSize: Int
    public var patchSize: Int
    public var preNorm: Bool
    public var pooling: Pooling
    /// OpenCLIP `final_ln_after_pool`: LayerNorm the pooled vector instead of every token before pooling.
    public var normAfterPool: Bool
    /// A class token before the patches (timm's class_token=False towers have none: "avg" pools all tokens).
    public var classToken: Bool = true

    public var gridSize: Int { imageSize / patchSize }
    public var tokens: Int { gridSize * gridSize + (classToken ? 1 : 0) }
}

/// timm VisionTransformer trunks (open_clip's TimmModel) that run on the CLIP ViT tower: what differs from
/// OpenCLIP's own ViT is naming, the patch embedding bias, qkv bias and where the projection lives.
public struct TimmViTConfig: Sendable, Equatable {
    public enum Projection: Sendable, Equatable {
        /// timm_proj null / "": timm's own head, Linear(W, embed_dim) with bias (visual.trunk.head).
        case trunkHead
        /// timm_proj "linear": open_clip's visual.head.proj.
        case linear(bias: Bool)
        /// timm_proj "none": the pooled, normed trunk output is the embedding.
        case none
    }
    public var timmName: String
    public var patchBias: Bool
    public var qkvBias: Bool
    public var projection: Projection
    /// ViTamin: the convolutional backbone that replaces the patch convolution (the vision config's patch size is
    /// then its total stride, 16).
    public var hybridStem: ViTaminStemConfig? = nil
    /// False for timm's pos_embed='none' (ViTamin-XL).
    public var positionEmbedding: Bool = true

    /// One timm registration (timm 1.0): the CLIP ViT config it lowers to and what differs in its weights.
    struct Variant {
        var vision: CLIPVisionConfig
        var patchBias: Bool
        var qkvBias: Bool
        var hybridStem: ViTaminStemConfig? = nil
        var positionEmbedding = true
    }

    static let variants: [String: Variant] = {
        var v: [String: Variant] = [
            // OpenAI-CLIP-style ViT-L/14 (MobileCLIP2-L-14): class token, pre-norm, no patch bias, LayerNorm eps 1e-5.
            "vit_large_patch14_clip_224": Variant(vision: CLIPVisionConfig(
                transformer: CLIPTransformerConfig(width: 1024, layers: 24, heads: 16, mlpWidth: 4096, activation: .gelu, layerNormEps: 1e-5),
                imageSize: 224, patchSize: 14, preNorm: true, pooling: .classToken, normAfterPool: false, classToken: true),
                patchBias: false, qkvBias: true),
            // No class token, global average pool after the final norm, LayerScale, no qkv bias (eps 1e-6).
            "vit_medium_patch16_gap_256": Variant(vision: CLIPVisionConfig(
                transformer: CLIPTransformerConfig(width: 512, layers: 12, heads: 8, mlpWidth: 2048, activation: .gelu, layerNormEps: 1e-6,
                                                   layerScale: true),
                imageSize: 256, patchSize: 16, preNorm: false, pooling: .average, normAfterPool: false, classToken: false),
                patchBias: true, qkvBias: false),
        ]
        // ViTamin (timm vitamin.py): the MBConv backbone, then GeGLU blocks (mlp_ratio 2), no class token, the
        // average pool with fc_norm (LayerNorm after the pool), eps 1e-6; the XL variants have no position embedding.
        let vitamin: [(name: String, stem: Int, widths: [Int], vit: Int, depth: Int, heads: Int, sizes: [Int], pos: Bool)] = [
            ("small", 64, [64, 128], 384, 14, 6, [224], true),
            ("base", 128, [128, 256], 768, 14, 12, [224], true),
            ("large", 160, [160, 320], 1024, 31, 16, [224, 256, 336, 384], true),
            ("large2", 160, [160, 320], 1024, 31, 16, [224, 256, 336, 384], true),
            ("xlarge", 192, [192, 384], 1152, 32, 16, [256, 336, 384], false),
        ]
        for m in vitamin {
            for size in m.sizes {
                v["vitamin_\(m.name)_\(size)"] = Variant(
                    vision: CLIPVisionConfig(
                        transformer: CLIPTransformerConfig(width: m.vit, layers: m.depth, heads: m.heads, mlpWidth: 2 * m.vit,
                                                           activation: .gelu, layerNormEps: 1e-6, gatedMLP: true),
                        imageSize: size, patchSize: 16, preNorm: false, pooling: .average, normAfterPool: true, classToken: false),
                    patchBias: false, qkvBias: true,
                    hybridStem: ViTaminStemConfig(stemWidth: m.stem, stageWidths: m.widths, stageDepths: [2, 4], outWidth: m.vit),
                    positionEmbedding: m.pos)
            }
        }
        return v
    }()
}

/// Where the weights come from decides their names (see CLIPWeights).
public enum CLIPNaming: String, Sendable, Equatable {
    case huggingFace
    case openCLIP
    /// OpenCLIP with `custom_text`: the text tower lives under "text.".
    case openCLIPCustomText
}

public struct CLIPArchitecture: Sendable, Equatable {
    public var text: CLIPTextConfig
    /// The ViT image tower; with `resnet` set only its image size is meaningful.
    public var vision: CLIPVisionConfig
    public var embedDim: Int
    public var naming: CLIPNaming
    /// OpenAI's ModifiedResNet image tower instead of the ViT (open_clip RN50, RN101, ...).
    public var resnet: ModifiedResNetConfig? = nil
    /// timm's ConvNeXt image tower instead of the ViT (open_clip convnext_*).
    public var convnext: ConvNeXtConfig? = nil
    /// timm's SigLIP ViT (attention-pooled, no class token) instead of the CLIP ViT (open_clip *-SigLIP*).
    public var mapViT: MAPViTConfig? = nil
    /// Set when `vision` is a timm VisionTransformer trunk (timm names, projection options).
    public var timmViT: TimmViTConfig? = nil
    /// Checkpoint tensors the embeddings never use (CoCa's captioning decoder, text_decoder.*).
    public var unusedPrefixes: [String] = []
    /// A transformers text encoder (open_clip's HFTextEncoder) instead of the CLIP text tower.
    public var hfText: HFTextTowerConfig? = nil
}

// MARK: - transformers

/// transformers' CLIPConfig. Missing keys take transformers' defaults (openai/clip-vit-base-patch32 shapes).
public struct HFCLIPConfig: Codable, Sendable, Equatable {
    public struct TextConfig: Codable, Sendable, Equatable {
        public var vocabSize = 49408, hiddenSize = 512, intermediateSize = 2048, numHiddenLayers = 12
        public var numAttentionHeads = 8, maxPositionEmbeddings = 77
        public var hiddenAct = "quick_gelu"
        public var layerNormEps: Double = 1e-5
        public var padTokenId = 1, bosTokenId = 49406, eosTokenId = 49407

        enum CodingKeys: String, CodingKey {
            case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
            case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
            case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act"
            case layerNormEps = "layer_norm_eps", padTokenId = "pad_token_id", bosTokenId = "bos_token_id"
            case eosTokenId = "eos_token_id"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = TextConfig()
            vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
            hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
            intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
            numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
            numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
            maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
            hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
            layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
            padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId) ?? d.padTokenId
            bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId) ?? d.bosTokenId
            eosTokenId = try c.decodeIfPresent(Int.self, forKey: .eosTokenId) ?? d.eosTokenId
        }
    }

    public struct VisionConfig: Codable, Sendable, Equatable {
        public var hiddenSize = 768, intermediateSize = 3072, numHiddenLayers = 12, numAttentionHeads = 12
        public var numChannels = 3, imageSize = 224, patchSize = 32
        public var hiddenAct = "quick_gelu"
        public var layerNormEps: Double = 1e-5

        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
            case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
            case numChannels = "num_channels", imageSize = "image_size", patchSize = "patch_size"
            case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = VisionConfig()
            hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
            intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
            numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
            numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
            numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? d.numChannels
            imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? d.imageSize
            patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
            hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
            layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
        }
    }

    public var modelType: String?
    public var projectionDim = 512
    public var logitScaleInitValue: Double = 2.6592
    public var textConfig = TextConfig()
    public var visionConfig = VisionConfig()

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", projectionDim = "projection_dim"
        case logitScaleInitValue = "logit_scale_init_value", textConfig = "text_config", visionConfig = "vision_config"
    }

    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? 512
        logitScaleInitValue = try c.decodeIfPresent(Double.self, forKey: .logitScaleInitValue) ?? 2.6592
        textConfig = try c.decodeIfPresent(TextConfig.self, forKey: .textConfig) ?? TextConfig()
        visionConfig = try c.decodeIfPresent(VisionConfig.self, forKey: .visionConfig) ?? VisionConfig()
    }

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CLIPError.badConfig(file: url.path, detail: "cannot read the file (\(error.localizedDescription))")
        }
        do { self = try JSONDecoder().decode(HFCLIPConfig.self, from: data) } catch {
            throw CLIPError.badConfig(file: url.path, detail: "not a valid CLIP config.json: \(describe(error))")
        }
    }

    /// Lowers to the engine's architecture; `name` is used in error messages.
    public func architecture(name: String) throws -> CLIPArchitecture {
        if let t = modelType, t != "clip" {
            throw CLIPError.unsupportedArchitecture(model: name, detail: "model_type '\(t)' (only 'clip' is implemented)")
        }
        let t = textConfig, v = visionConfig
        guard let tAct = Activation(configName: t.hiddenAct) else {
            throw CLIPError.unsupportedArchitecture(model: name, detail: "text_config.hidden_act '\(t.hiddenAct)'")
        }
        guard let vAct = Activation(configName: v.hiddenAct) else {
            throw CLIPError.unsupportedArchitecture(model: name, detail: "vision_config.hidden_act '\(v.hiddenAct)'")
        }
        guard v.numChannels == 3 else {
            throw CLIPError.unsupportedArchitecture(model: name, detail: "vision_config.num_channels \(v.numChannels) (RGB only)")
        }
        // transformers keeps argmax pooling for configs written before eos_token_id was meaningful (== 2).
        let pooling: CLIPTextPooling = t.eosTokenId == 2 ? .argmax : .firstToken(t.eosTokenId)
        let arch = CLIPArchitecture(
            text: CLIPTextConfig(
                transformer: CLIPTransformerConfig(width: t.hiddenSize, layers: t.numHiddenLayers, heads: t.numAttentionHeads,
                                                   mlpWidth: t.intermediateSize, activation: tAct, layerNormEps: Float(t.layerNormEps)),
                vocabSize: t.vocabSize, contextLength: t.maxPositionEmbeddings, causal: true, pooling: pooling,
                padTokenId: t.padTokenId, projectionBias: false),
            vision: CLIPVisionConfig(
                transformer: CLIPTransformerConfig(width: v.hiddenSize, layers: v.numHiddenLayers, heads: v.numAttentionHeads,
                                                   mlpWidth: v.intermediateSize, activation: vAct, layerNormEps: Float(v.layerNormEps)),
                imageSize: v.imageSize, patchSize: v.patchSize, preNorm: true, pooling: .classToken, normAfterPool: false),
            embedDim: projectionDim, naming: .huggingFace)
        try arch.validate(name: name)
        return arch
    }
}

// MARK: - OpenCLIP

/// OpenCLIP's model_cfg: the built-in model_configs/*.json or the "model_cfg" of open_clip_config.json.
public struct OpenCLIPModelConfig: Codable, Sendable, Equatable {
    public struct VisionCfg: Codable, Sendable, Equatable {
        public var imageSize = 224, layers = 12, width = 768, headWidth = 64, patchSize = 16
        public var mlpRatio: Double = 4
        public var noLnPre = false, finalLnAfterPool = false
        public var poolType = "tok"
        public var layerNormEps: Double = 1e-5
        /// Set when `layers` is a list: OpenAI's ModifiedResNet with these blocks per stage.
        public var resnetLayers: [Int]?
        /// Set for a timm ConvNeXt tower (timm_model_name convnext_*); its embed width is filled in later.
        public var convnext: ConvNeXtConfig?
        /// Set for a timm SigLIP ViT (timm_model_name vit_*_siglip_*).
        public var mapViT: MAPViTConfig?
        /// Set for a timm ViT that runs on the CLIP ViT tower, with the CLIP vision config it lowers to.
        public var timmViT: TimmViTConfig?
        public var timmVision: CLIPVisionConfig?
        /// ls_init_value: LayerScale in every block.
        public var layerScale = false
        /// CoCa's attentional pooler (attentional_pool true): its heads and learned queries.
        public struct AttentionalPoolCfg: Codable, Sendable, Equatable { public var heads: Int, queries: Int }
        public var attentionalPool: AttentionalPoolCfg?

        enum CodingKeys: String, CodingKey {
            case imageSize = "image_size", layers, width, headWidth = "head_width", patchSize = "patch_size"
            case mlpRatio = "mlp_ratio", noLnPre = "no_ln_pre", finalLnAfterPool = "final_ln_after_pool"
            case poolType = "pool_type"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            let raw = try decoder.container(keyedBy: AnyKey.self)
            if let timm = try? raw.decode(String.self, forKey: AnyKey("timm_model_name")), !timm.isEmpty {
                self = try Self.timmTower(timm, raw)
                return
            }
            try rejectUnsupported(raw, harmless: ["output_tokens", "patch_dropout", "ls_init_value", "attentional_pool",
                                                  "attn_pooler_heads", "attn_pooler_queries"], falsy: [
                "qk_norm", "scaled_cosine_attn", "scale_heads",
                "scale_attn_inner", "scale_attn", "scale_fc", "timm_model_name", "act_kwargs",
            ], where: "vision_cfg", special: ["pos_embed_type": "learnable", "block_type": "default"])
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = VisionCfg()
            imageSize = try decodeSize(raw, "image_size") ?? d.imageSize
            if let list = try? raw.decode([Int].self, forKey: AnyKey("layers")) {
                guard list.count == 4, list.allSatisfy({ $0 > 0 && $0 < 1000 }) else {
                    throw unsupported("vision_cfg.layers \(list): a ModifiedResNet needs four positive block counts")
                }
                resnetLayers = list
                width = try c.decodeIfPresent(Int.self, forKey: .width) ?? 64
                headWidth = try c.decodeIfPresent(Int.self, forKey: .headWidth) ?? 64
                return
            }
            patchSize = try decodeSize(raw, "patch_size") ?? d.patchSize
            layers = try c.decodeIfPresent(Int.self, forKey: .layers) ?? d.layers
            width = try c.decodeIfPresent(Int.self, forKey: .width) ?? d.width
            headWidth = try c.decodeIfPresent(Int.self, forKey: .headWidth) ?? d.headWidth
            mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio) ?? d.mlpRatio
            noLnPre = try c.decodeIfPresent(Bool.self, forKey: .noLnPre) ?? false
            finalLnAfterPool = try c.decodeIfPresent(Bool.self, forKey: .finalLnAfterPool) ?? false
            poolType = try c.decodeIfPresent(String.self, forKey: .poolType) ?? "tok"
            layerNormEps = try decodeNormEps(raw) ?? 1e-5
            layerScale = try decodeLayerScale(raw)
            if raw.contains(AnyKey("attentional_pool")), !(try raw.decodeNil(forKey: AnyKey("attentional_pool"))) {
                guard let on = try? raw.decode(Bool.self, forKey: AnyKey("attentional_pool")) else {
                    throw unsupported("vision_cfg.attentional_pool other than true/false (the 'parallel' and 'cascade' poolers are not implemented)")
                }
                if on {
                    attentionalPool = AttentionalPoolCfg(heads: (try? raw.decode(Int.self, forKey: AnyKey("attn_pooler_heads"))) ?? 8,
                                                         queries: (try? raw.decode(Int.self, forKey: AnyKey("attn_pooler_queries"))) ?? 256)
                }
            }
        }

    }

    public struct TextCfg: Codable, Sendable, Equatable {
        public var contextLength = 77, vocabSize = 49408, width = 512, heads = 8, layers = 12
        public var mlpRatio: Double = 4
        public var padId = 0, eosId = 2
        public var noCausalMask = false, projBias = false
        public var poolType = "argmax", projType = "linear"
        public var hfTokenizerName: String?
        public var layerNormEps: Double = 1e-5
        /// act_kwargs {"approximate": "tanh"}: nn.GELU(approximate='tanh') (SigLIP 2's text towers).
        public var tanhGelu = false
        /// ls_init_value: LayerScale in every block.
        public var layerScale = false
        /// CoCa's appended class token (embed_cls), the pooled position whatever pool_type says.
        public var embedCls = false
        /// A transformers text encoder (open_clip's HFTextEncoder) instead of open_clip's own text tower.
        public var hfModelName: String?
        public var hfProjType = "mlp", hfPoolerType = "mean_pooler"
        /// The encoder's config.json when the loader found it; else the built-in table of hub configs.
        public var hfModelConfig: HFTextModelConfig?
        /// open_clip's HFTokenizer options (tokenizer_kwargs): the text cleaning and strip_sep_token.
        public var tokenizerClean: String?
        public var stripSepToken = false

        enum CodingKeys: String, CodingKey {
            case contextLength = "context_length", vocabSize = "vocab_size", width, heads, layers
            case mlpRatio = "mlp_ratio", padId = "pad_id", eosId = "eos_id", noCausalMask = "no_causal_mask"
            case projBias = "proj_bias", poolType = "pool_type", projType = "proj_type"
            case hfTokenizerName = "hf_tokenizer_name"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            let raw = try decoder.container(keyedBy: AnyKey.self)
            try rejectUnsupported(raw, harmless: ["output_tokens", "tokenizer_kwargs",
                                                  "final_ln_after_pool", "act_kwargs", "ls_init_value", "embed_cls",
                                                  "hf_model_name", "hf_proj_type", "hf_pooler_type", "hf_model_pretrained"], falsy: [
                "tokenizer_mode", "qk_norm", "scaled_cosine_attn", "scale_heads",
                "scale_attn_inner", "scale_attn", "scale_fc", "use_pad_mask", "correct_cls_mask",
            ], where: "text_cfg", special: ["block_type": "default"])
            if raw.contains(AnyKey("act_kwargs")), !(try raw.decodeNil(forKey: AnyKey("act_kwargs"))) {
                let kw = try raw.decode([String: String].self, forKey: AnyKey("act_kwargs"))
                guard kw == ["approximate": "tanh"] || kw.isEmpty else {
                    throw unsupported("text_cfg.act_kwargs \(kw) (only {\"approximate\": \"tanh\"} is implemented)")
                }
                tanhGelu = !kw.isEmpty
            }
            if raw.contains(AnyKey("tokenizer_kwargs")), !(try raw.decodeNil(forKey: AnyKey("tokenizer_kwargs"))) {
                let kw = try raw.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("tokenizer_kwargs"))
                for key in kw.allKeys where !["clean", "strip_sep_token"].contains(key.stringValue) {
                    throw unsupported("text_cfg.tokenizer_kwargs.\(key.stringValue) (not implemented)")
                }
                tokenizerClean = try kw.decodeIfPresent(String.self, forKey: AnyKey("clean"))
                stripSepToken = try kw.decodeIfPresent(Bool.self, forKey: AnyKey("strip_sep_token")) ?? false
            }
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = TextCfg()
            contextLength = try c.decodeIfPresent(Int.self, forKey: .contextLength) ?? d.contextLength
            vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
            width = try c.decodeIfPresent(Int.self, forKey: .width) ?? d.width
            heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? d.heads
            layers = try c.decodeIfPresent(Int.self, forKey: .layers) ?? d.layers
            mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio) ?? d.mlpRatio
            padId = try c.decodeIfPresent(Int.self, forKey: .padId) ?? 0
            eosId = try c.decodeIfPresent(Int.self, forKey: .eosId) ?? 2
            noCausalMask = try c.decodeIfPresent(Bool.self, forKey: .noCausalMask) ?? false
            projBias = try c.decodeIfPresent(Bool.self, forKey: .projBias) ?? false
            poolType = try c.decodeIfPresent(String.self, forKey: .poolType) ?? "argmax"
            projType = try c.decodeIfPresent(String.self, forKey: .projType) ?? "linear"
            hfTokenizerName = try c.decodeIfPresent(String.self, forKey: .hfTokenizerName)
            layerNormEps = try decodeNormEps(raw) ?? 1e-5
            layerScale = try decodeLayerScale(raw)
            embedCls = (try? raw.decode(Bool.self, forKey: AnyKey("embed_cls"))) ?? false
            hfModelName = try raw.decodeIfPresent(String.self, forKey: AnyKey("hf_model_name"))
            hfProjType = try raw.decodeIfPresent(String.self, forKey: AnyKey("hf_proj_type")) ?? "mlp"
            hfPoolerType = try raw.decodeIfPresent(String.self, forKey: AnyKey("hf_pooler_type")) ?? "mean_pooler"
        }
    }

    public var embedDim: Int
    /// CoCa: a multimodal text decoder whose weights (text_decoder.*) the checkpoint carries.
    public var hasDecoder = false
    public var quickGelu = false
    public var customText = false
    public var visionCfg: VisionCfg
    public var textCfg: TextCfg

    enum CodingKeys: String, CodingKey {
        case embedDim = "embed_dim", quickGelu = "quick_gelu", customText = "custom_text"
        case visionCfg = "vision_cfg", textCfg = "text_cfg"
    }

    public init(from decoder: Decoder) throws {
        let raw = try decoder.container(keyedBy: AnyKey.self)
        // init_logit_bias only initialises training; a checkpoint with a logit_bias is read as a SigLIP-style model.
        // multimodal_cfg is CoCa's captioning decoder, which embeddings never run (its weights are skipped).
        try rejectUnsupported(raw, harmless: ["cast_dtype", "init_logit_scale", "nonscalar_logit_scale", "init_logit_bias",
                                              "multimodal_cfg"], falsy: [], where: "model_cfg", special: [:])
        hasDecoder = try raw.contains(AnyKey("multimodal_cfg")) && !raw.decodeNil(forKey: AnyKey("multimodal_cfg"))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        embedDim = try c.decode(Int.self, forKey: .embedDim)
        quickGelu = try c.decodeIfPresent(Bool.self, forKey: .quickGelu) ?? false
        customText = try c.decodeIfPresent(Bool.self, forKey: .customText) ?? false
        visionCfg = try c.decode(VisionCfg.self, forKey: .visionCfg)
        textCfg = try c.decode(TextCfg.self, forKey: .textCfg)
    }

    /// Lowers to the engine's architecture; `name` is used in error messages.
    public func architecture(name: String) throws -> CLIPArchitecture {
        let act: Activation = quickGelu ? .quickGelu : .gelu
        let v = visionCfg, t = textCfg
        if var cn = v.convnext {
            guard cn.imageSize >= 32, cn.imageSize % 32 == 0, cn.depths.count == 4, cn.dims.count == 4 else {
                throw CLIPError.unsupportedArchitecture(model: name, detail: "ConvNeXt image size \(cn.imageSize) (a multiple of 32 is needed)")
            }
            cn.embedDim = embedDim
            var arch = try textOnlyArchitecture(name: name, act: act)
            arch.convnext = cn
            arch.vision.imageSize = cn.imageSize
            arch.vision.patchSize = 32
            try arch.validate(name: name)
            return arch
        }
        if let m = v.mapViT {
            guard embedDim == m.transformer.width else {
                throw CLIPError.unsupportedArchitecture(model: name, detail: "embed_dim \(embedDim) differs from the width \(m.transformer.width) of \(m.timmName ?? "the SigLIP trunk") (timm_proj 'none' keeps the trunk width)")
            }
            var arch = try textOnlyArchitecture(name: name, act: act)
            arch.mapViT = m
            arch.vision.imageSize = m.imageSize
            arch.vision.patchSize = m.patchSize
            try arch.validate(name: name)
            return arch
        }
        if let hfName = t.hfModelName {
            // The vision side as configured; the text side is the transformers encoder.
            var copy = self
            copy.textCfg = TextCfg()
            copy.textCfg.contextLength = t.contextLength
            var arch = try copy.architecture(name: name)
            guard let model = t.hfModelConfig ?? HFTextModelConfig.known[hfName] else {
                throw CLIPError.unsupportedArchitecture(model: name, detail: "text_cfg.hf_model_name '\(hfName)': ex2 implements RoBERTa and XLM-R text encoders and knows the shapes of \(HFTextModelConfig.known.keys.sorted().joined(separator: ", ")); for another RoBERTa-family encoder its config.json must be beside the weights or in the Hugging Face cache (`huggingface-cli download \(hfName) config.json tokenizer.json`)")
            }
            guard t.hfPoolerType == "mean_pooler" else {
                throw CLIPError.unsupportedArchitecture(model: name, detail: "text_cfg.hf_pooler_type '\(t.hfPoolerType)' (implemented: mean_pooler)")
            }
            let projection: HFTextTowerConfig.Projection
            switch t.hfProjType {
            case "mlp": projection = .mlp
            case "linear": projection = .linear
            case "none" where model.encoder.hiddenSize == embedDim: projection = .none
            default: throw CLIPError.unsupportedArchitecture(model: name, detail: "text_cfg.hf_proj_type '\(t.hfProjType)' (implemented: mlp, linear, and none when the encoder width equals embed_dim)")
            }
            arch.hfText = HFTextTowerConfig(modelName: hfName, model: model, projection: projection)
            arch.text.vocabSize = model.encoder.vocabSize
            arch.text.padTokenId = model.encoder.padTokenId
            arch.naming = .openCLIPCustomText
            return arch
        }
        if let tv = v.timmViT, var vision = v.timmVision {
            var arch = try textOnlyArchitecture(name: name, act: act)
            if tv.projection == .none, vision.transformer.width != embedDim {
                throw CLIPError.unsupportedArchitecture(model: name, detail: "vision_cfg.timm_proj 'none' with trunk width \(vision.transformer.width) but embed_dim \(embedDim)")
            }
            vision.imageSize = v.imageSize
            arch.vision = vision
            arch.timmViT = tv
            try arch.validate(name: name)
            return arch
        }
        if let layers = v.resnetLayers {
            guard v.width > 0, v.width % 2 == 0, v.headWidth > 0, (v.width * 32) % v.headWidth == 0, v.imageSize >= 32, v.imageSize % 32 == 0 else {
                throw CLIPError.unsupportedArchitecture(model: name, detail: "ModifiedResNet width \(v.width), head_width \(v.headWidth), image size \(v.imageSize) (the width must be even, width x 32 a multiple of head_width, the image a multiple of 32)")
            }
            var arch = try textOnlyArchitecture(name: name, act: act)
            arch.resnet = ModifiedResNetConfig(layers: layers, width: v.width, heads: v.width * 32 / v.headWidth,
                                               imageSize: v.imageSize, outputDim: embedDim)
            arch.vision.imageSize = v.imageSize
            arch.vision.patchSize = 32
            try arch.validate(name: name)
            return arch
        }
        guard v.width % v.headWidth == 0 else {
            throw CLIPError.unsupportedArchitecture(model: name, detail: "vision width \(v.width) is not a multiple of head_width \(v.headWidth)")
        }
        let pooling: CLIPTextPooling
        switch t.poolType {
        case "argmax": pooling = .argmax
        case "eos": pooling = .firstToken(t.eosId)
        case "last": pooling = .last
        case "first": pooling = .first
        default: throw CLIPError.unsupportedArchitecture(model: name, detail: "text_cfg.pool_type '\(t.poolType)'")
        }
        switch t.projType {
        case "linear": break
        case "none":
            guard t.width == embedDim else {
                throw CLIPError.unsupportedArchitecture(model: name, detail: "text_cfg.proj_type 'none' with text width \(t.width) but embed_dim \(embedDim)")
            }
        default: throw CLIPError.unsupportedArchitecture(model: name, detail: "text_cfg.proj_type '\(t.projType)'")
        }
        let textAct: Activation = t.tanhGelu ? .geluTanh : act
        var vPool: CLIPVisionConfig.Pooling
        switch v.poolType {
        case "tok": vPool = .classToken
        case "avg": vPool = .average
        default: throw CLIPError.unsupportedArchitecture(model: name, detail: "vision_cfg.pool_type '\(v.poolType)'")
        }
        if let ap = v.attentionalPool {
            guard v.poolType == "tok", !v.finalLnAfterPool, ap.queries >= 1, ap.heads >= 1, embedDim % ap.heads == 0 else {
                throw CLIPError.unsupportedArchitecture(model: name, detail: "vision_cfg.attentional_pool with pool_type '\(v.poolType)', \(ap.heads) heads, \(ap.queries) queries (open_clip's CoCa pooler takes the first query, 'tok', with heads dividing embed_dim)")
            }
            vPool = .attentional(heads: ap.heads, queries: ap.queries)
        }
        // Python's int(width * mlp_ratio): truncation, in double precision as Python computes it.
        let arch = CLIPArchitecture(
            text: CLIPTextConfig(
                transformer: CLIPTransformerConfig(width: t.width, layers: t.layers, heads: t.heads,
                                                   mlpWidth: Int(Double(t.width) * t.mlpRatio), activation: textAct,
                                                   layerNormEps: Float(t.layerNormEps), layerScale: t.layerScale),
                vocabSize: t.vocabSize, contextLength: t.contextLength, causal: !t.noCausalMask, pooling: pooling,
                padTokenId: t.padId, projectionBias: t.projBias, projected: t.projType != "none", appendedClassToken: t.embedCls),
            vision: CLIPVisionConfig(
                transformer: CLIPTransformerConfig(width: v.width, layers: v.layers, heads: v.width / v.headWidth,
                                                   mlpWidth: Int(Double(v.width) * v.mlpRatio), activation: act,
                                                   layerNormEps: Float(v.layerNormEps), layerScale: v.layerScale),
                imageSize: v.imageSize, patchSize: v.patchSize, preNorm: !v.noLnPre, pooling: vPool,
                normAfterPool: v.finalLnAfterPool),
            embedDim: embedDim, naming: customText ? .openCLIPCustomText : .openCLIP,
            unusedPrefixes: hasDecoder ? ["text_decoder."] : [])
        try arch.validate(name: name)
        return arch
    }
}

extension OpenCLIPModelConfig {
    /// The refusal for texts of a model whose config tokenizes with a Hugging Face tokenizer (open_clip's
    /// HFTokenizer: SigLIP's, CLIPA's bert-base-uncased, MetaCLIP 2's xlm-v-base and mt5-base) when its files
    /// cannot be found.
    public static func hfTokenizerGap(_ tokenizer: String, model: String) -> String {
        "\(model) tokenizes texts with the Hugging Face tokenizer '\(tokenizer)' (open_clip's HFTokenizer), whose tokenizer.json is neither beside the weights nor in the Hugging Face cache; image embeddings work, text embeddings and the reward need it: `huggingface-cli download \(tokenizer) tokenizer.json tokenizer_config.json special_tokens_map.json`"
    }

    /// The text side lowered as for a ViT model, with a placeholder ViT that a ModifiedResNet replaces.
    func textOnlyArchitecture(name: String, act: Activation) throws -> CLIPArchitecture {
        var copy = self
        copy.visionCfg = VisionCfg()
        copy.visionCfg.imageSize = 32
        copy.visionCfg.patchSize = 32
        copy.visionCfg.width = 64
        copy.visionCfg.headWidth = 64
        copy.visionCfg.layers = 1
        return try copy.architecture(name: name)
    }
}

extension OpenCLIPModelConfig.VisionCfg {
    /// A timm image tower (open_clip's TimmModel): ConvNeXt and SigLIP ViT variants; anything else is refused by name.
    static func timmTower(_ name: String, _ raw: KeyedDecodingContainer<AnyKey>) throws -> Self {
        var cfg = Self()
        let allowed: Set<String> = ["timm_model_name", "timm_model_pretrained", "timm_pool", "timm_proj", "timm_proj_bias",
                                    "timm_drop", "timm_drop_path", "image_size", "patch_dropout", "output_tokens"]
        for key in raw.allKeys where !allowed.contains(key.stringValue) {
            throw unsupported("vision_cfg.\(key.stringValue) with a timm tower (not implemented)")
        }
        if var m = MAPViTConfig.timmSigLIPVariants[name] {
            let pool = (try? raw.decode(String.self, forKey: AnyKey("timm_pool"))) ?? "avg"
            let proj = (try? raw.decode(String.self, forKey: AnyKey("timm_proj"))) ?? "linear"
            guard pool == "map", proj == "none" else {
                throw unsupported("vision_cfg.timm_pool '\(pool)' with timm_proj '\(proj)' for \(name) (only the attention pool 'map' without a projection, as open_clip's SigLIP configs use, is implemented)")
            }
            // The patch convolution drops a remainder (so400m patch 14 at 384 px: a 27 x 27 grid).
            m.imageSize = try decodeSize(raw, "image_size") ?? m.imageSize
            guard m.imageSize >= m.patchSize else {
                throw unsupported("vision_cfg.image_size \(m.imageSize) is smaller than \(name)'s patch size \(m.patchSize)")
            }
            cfg.imageSize = m.imageSize
            cfg.mapViT = m
            return cfg
        }
        if let tv = TimmViTConfig.variants[name] {
            let pool = (try? raw.decode(String.self, forKey: AnyKey("timm_pool"))) ?? ""
            var vision = tv.vision
            switch pool {
            case "": break
            case "token" where vision.classToken: vision.pooling = .classToken
            case "avg": vision.pooling = .average
            default:
                throw unsupported("vision_cfg.timm_pool '\(pool)' for \(name) (implemented: '' (the trunk's own), 'avg'\(vision.classToken ? ", 'token'" : ""))")
            }
            // timm_proj null or "" keeps timm's own head as the projection (open_clip passes num_classes=embed_dim).
            let projName = (try? raw.decode(String.self, forKey: AnyKey("timm_proj"))) ?? (raw.contains(AnyKey("timm_proj")) ? "" : "linear")
            let projection: TimmViTConfig.Projection
            switch projName {
            case "": projection = .trunkHead
            case "linear": projection = .linear(bias: (try? raw.decode(Bool.self, forKey: AnyKey("timm_proj_bias"))) ?? false)
            case "none": projection = .none
            default: throw unsupported("vision_cfg.timm_proj '\(projName)' for \(name) (implemented: null, 'linear', 'none')")
            }
            cfg.imageSize = try decodeSize(raw, "image_size") ?? vision.imageSize
            if tv.hybridStem != nil, cfg.imageSize % 16 != 0 {
                throw unsupported("vision_cfg.image_size \(cfg.imageSize) for \(name): ViTamin's backbone halves the map four times, so ex2 takes multiples of 16")
            }
            cfg.timmViT = TimmViTConfig(timmName: name, patchBias: tv.patchBias, qkvBias: tv.qkvBias, projection: projection,
                                        hybridStem: tv.hybridStem, positionEmbedding: tv.positionEmbedding)
            cfg.timmVision = vision
            return cfg
        }
        guard let v = ConvNeXtConfig.variants[name] else {
            let vitamin = TimmViTConfig.variants.keys.filter { $0.hasPrefix("vitamin_") }.count
            let plain = TimmViTConfig.variants.keys.filter { !$0.hasPrefix("vitamin_") }.sorted()
            throw unsupported("vision_cfg.timm_model_name '\(name)': this timm image tower is not implemented (timm towers supported: \(ConvNeXtConfig.variants.count) convnext_*, \(MAPViTConfig.timmSigLIPVariants.count) vit_*_siglip_* and \(vitamin) vitamin_* variants, \(plain.joined(separator: ", ")))")
        }
        let pool = (try? raw.decode(String.self, forKey: AnyKey("timm_pool"))) ?? "avg"
        guard pool == "" else {
            throw unsupported("vision_cfg.timm_pool '\(pool)' for \(name) (only '', which keeps the trunk's average pool and head norm, is implemented)")
        }
        let proj = (try? raw.decode(String.self, forKey: AnyKey("timm_proj"))) ?? "linear"
        guard proj == "linear" || proj == "mlp" else {
            throw unsupported("vision_cfg.timm_proj '\(proj)' for \(name) (only 'linear' and 'mlp' are implemented)")
        }
        cfg.imageSize = try decodeSize(raw, "image_size") ?? 224
        cfg.convnext = ConvNeXtConfig(timmName: name, depths: v.depths, dims: v.dims, normEps: v.eps, imageSize: cfg.imageSize,
                                      embedDim: 0, projection: proj,
                                      projectionBias: (try? raw.decode(Bool.self, forKey: AnyKey("timm_proj_bias"))) ?? false)
        return cfg
    }
}

/// The parts of open_clip_config.json we read: model_cfg and preprocess_cfg.
public struct OpenCLIPConfigFile: Decodable, Sendable {
    public struct PreprocessCfg: Codable, Sendable, Equatable {
        public var size: Int?
        public var mean: [Float]?
        public var std: [Float]?
        public var interpolation: String?
        public var resizeMode: String?
        enum CodingKeys: String, CodingKey { case size, mean, std, interpolation, resizeMode = "resize_mode" }
        public init(size: Int? = nil, mean: [Float]? = nil, std: [Float]? = nil, interpolation: String? = nil,
                    resizeMode: String? = nil) {
            self.size = size; self.mean = mean; self.std = std; self.interpolation = interpolation; self.resizeMode = resizeMode
        }
        public init(from decoder: Decoder) throws {
            let raw = try decoder.container(keyedBy: AnyKey.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            size = try decodeSize(raw, "size")
            mean = try c.decodeIfPresent([Float].self, forKey: .mean)
            std = try c.decodeIfPresent([Float].self, forKey: .std)
            interpolation = try c.decodeIfPresent(String.self, forKey: .interpolation)
            resizeMode = try c.decodeIfPresent(String.self, forKey: .resizeMode)
        }
        /// Fields set in `other` win.
        public func merged(with other: PreprocessCfg) -> PreprocessCfg {
            PreprocessCfg(size: other.size ?? size, mean: other.mean ?? mean, std: other.std ?? std,
                          interpolation: other.interpolation ?? interpolation, resizeMode: other.resizeMode ?? resizeMode)
        }
    }
    public var modelCfg: OpenCLIPModelConfig
    public var preprocessCfg: PreprocessCfg?

    enum CodingKeys: String, CodingKey { case modelCfg = "model_cfg", preprocessCfg = "preprocess_cfg" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if c.contains(.modelCfg) {
            modelCfg = try c.decode(OpenCLIPModelConfig.self, forKey: .modelCfg)
        } else {
            // open_clip also accepts a bare model config in this file.
            modelCfg = try OpenCLIPModelConfig(from: decoder)
        }
        preprocessCfg = try c.decodeIfPresent(PreprocessCfg.self, forKey: .preprocessCfg)
    }

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CLIPError.badConfig(file: url.path, detail: "cannot read the file (\(error.localizedDescription))")
        }
        do { self = try JSONDecoder().decode(OpenCLIPConfigFile.self, from: data) } catch let e as CLIPError {
            throw CLIPError.badConfig(file: url.path, detail: e.description)
        } catch {
            throw CLIPError.badConfig(file: url.path, detail: "not a valid open_clip_config.json: \(describe(error))")
        }
    }
}

extension CLIPArchitecture {
    func validate(name: String) throws {
        for (tower, t) in [("text", text.transformer), ("vision", vision.transformer)] {
            guard t.width > 0, t.layers > 0, t.heads > 0, t.mlpWidth > 0, t.width % t.heads == 0 else {
                throw CLIPError.unsupportedArchitecture(model: name, detail: "\(tower) tower: width \(t.width), \(t.layers) layers, \(t.heads) heads, mlp \(t.mlpWidth) (width must be a positive multiple of heads)")
            }
        }
        // A timm SigLIP trunk checks its own grid (its patch convolution drops a remainder); the CLIP ViT needs an exact one.
        guard mapViT != nil || (vision.patchSize > 0 && vision.imageSize >= vision.patchSize && vision.imageSize % vision.patchSize == 0) else {
            throw CLIPError.unsupportedArchitecture(model: name, detail: "image size \(vision.imageSize) is not a multiple of patch size \(vision.patchSize)")
        }
        guard text.vocabSize > 0, text.contextLength > 0, embedDim > 0 else {
            throw CLIPError.unsupportedArchitecture(model: name, detail: "vocab \(text.vocabSize), context \(text.contextLength), embed dim \(embedDim)")
        }
    }
}

// MARK: - decoding helpers

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

func unsupported(_ detail: String) -> CLIPError {
    CLIPError.unsupportedArchitecture(model: "open_clip config", detail: detail)
}

/// Keys we know change nothing at inference pass; `falsy` keys are accepted only when false/null/empty;
/// `special` keys only with the given string value; any other unknown key is an error naming it.
private func rejectUnsupported(_ c: KeyedDecodingContainer<AnyKey>, harmless: Set<String>, falsy: Set<String>,
                               where section: String, special: [String: String]) throws {
    let known: Set<String> = [
        "image_size", "layers", "width", "head_width", "patch_size", "mlp_ratio", "no_ln_pre", "final_ln_after_pool",
        "pool_type", "norm_kwargs", "context_length", "vocab_size", "heads", "pad_id", "eos_id", "no_causal_mask",
        "proj_bias", "proj_type", "hf_tokenizer_name", "embed_dim", "quick_gelu", "custom_text", "vision_cfg", "text_cfg",
    ]
    for key in c.allKeys {
        let k = key.stringValue
        if known.contains(k) || harmless.contains(k) { continue }
        if falsy.contains(k) {
            if try c.decodeNil(forKey: key) { continue }
            if let b = try? c.decode(Bool.self, forKey: key), !b { continue }
            if let s = try? c.decode(String.self, forKey: key), s.isEmpty { continue }
            throw unsupported("\(section).\(k) is set (not implemented)")
        }
        if let want = special[k] {
            if try c.decodeNil(forKey: key) { continue }
            if let s = try? c.decode(String.self, forKey: key), s == want { continue }
            throw unsupported("\(section).\(k) other than '\(want)' (not implemented)")
        }
        throw unsupported("\(section).\(k) (unknown option)")
    }
}

/// Sizes are an int or a square [h, w] pair.
func decodeSize(_ c: KeyedDecodingContainer<AnyKey>, _ name: String) throws -> Int? {
    let k = AnyKey(name)
    guard c.contains(k), !(try c.decodeNil(forKey: k)) else { return nil }
    if let n = try? c.decode(Int.self, forKey: k) { return n }
    if let hw = try? c.decode([Int].self, forKey: k), hw.count == 2, hw[0] == hw[1] { return hw[0] }
    throw unsupported("\(name) must be an integer or a square [h, w] pair")
}

/// ls_init_value: any non-null value adds LayerScale gammas (their trained values are in the checkpoint).
private func decodeLayerScale(_ c: KeyedDecodingContainer<AnyKey>) throws -> Bool {
    let k = AnyKey("ls_init_value")
    guard c.contains(k), !(try c.decodeNil(forKey: k)) else { return false }
    guard (try? c.decode(Double.self, forKey: k)) != nil else { throw unsupported("ls_init_value must be a number") }
    return true
}

private func decodeNormEps(_ c: KeyedDecodingContainer<AnyKey>) throws -> Double? {
    let k = AnyKey("norm_kwargs")
    guard c.contains(k), !(try c.decodeNil(forKey: k)) else { return nil }
    let kw = try c.decode([String: Double].self, forKey: k)
    guard Set(kw.keys).isSubset(of: ["eps"]) else {
        throw unsupported("norm_kwargs \(kw.keys.sorted()) (only eps is implemented)")
    }
    return kw["eps"]
}

func describe(_ error: Error) -> String {
    switch error {
    case let DecodingError.keyNotFound(key, ctx):
        return "missing key '\((ctx.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
    case let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx), let DecodingError.dataCorrupted(ctx):
        return "'\(ctx.codingPath.map(\.stringValue).joined(separator: "."))': \(ctx.debugDescription)"
    case let e as CustomStringConvertible:
        return e.description
    default:
        return "\(error)"
    }
}
