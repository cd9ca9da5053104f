// What `r-open-clip:MODEL:PRETRAINED` means without Python: the built-in OpenCLIP model configs we ship (the
// ViT shapes of open_clip's model_configs/*.json, kept as JSON text so they decode through the same path as a
// downloaded open_clip_config.json) and, per pretrained tag, the Hugging Face hub repository holding its
// open_clip_model.safetensors plus the preprocessing the tag was trained with (facts from open_clip's
// pretrained.py). Tags whose weights exist only as URLs outside the hub are not listed.
import Foundation

public struct OpenCLIPPretrained: Sendable, Equatable {
    /// ORG/NAME on the Hugging Face hub.
    public var hubRepo: String
    public var mean: [Float]
    public var std: [Float]
    public var interpolation: String
    public var resizeMode: String
    /// The activation the tag was trained with; open_clip warns (and we report) when the model config differs.
    public var quickGelu: Bool
}

public enum OpenCLIPRegistry {
    static let openAIMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    static let openAIStd: [Float] = [0.26862954, 0.26130258, 0.27577711]
    static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    static let imagenetStd: [Float] = [0.229, 0.224, 0.225]
    static let inception: [Float] = [0.5, 0.5, 0.5]

    private static func vit(_ embed: Int, image: Int, layers: Int, width: Int, patch: Int, headWidth: Int? = nil,
                            mlpRatio: String? = nil, text: (width: Int, heads: Int, layers: Int)) -> String {
        var v = "\"image_size\": \(image), \"layers\": \(layers), \"width\": \(width), \"patch_size\": \(patch)"
        if let headWidth { v += ", \"head_width\": \(headWidth)" }
        if let mlpRatio { v += ", \"mlp_ratio\": \(mlpRatio)" }
        return """
        {"embed_dim": \(embed), "vision_cfg": {\(v)},
         "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": \(text.width), "heads": \(text.heads), "layers": \(text.layers)}}
        """
    }

    private static let baseConfigs: [String: String] = [
        "ViT-B-32": vit(512, image: 224, layers: 12, width: 768, patch: 32, text: (512, 8, 12)),
        "ViT-B-16": vit(512, image: 224, layers: 12, width: 768, patch: 16, text: (512, 8, 12)),
        "ViT-L-14": vit(768, image: 224, layers: 24, width: 1024, patch: 14, text: (768, 12, 12)),
        "ViT-H-14": vit(1024, image: 224, layers: 32, width: 1280, patch: 14, headWidth: 80, text: (1024, 16, 24)),
        "ViT-bigG-14": vit(1280, image: 224, layers: 48, width: 1664, patch: 14, headWidth: 104, mlpRatio: "4.9231",
                           text: (1280, 20, 32)),
        "ViT-bigG-14-CLIPA-336": """
        {"embed_dim": 1280,
         "vision_cfg": {"image_size": 336, "layers": 48, "width": 1664, "head_width": 104, "mlp_ratio": 4.9231,
                        "patch_size": 14, "no_ln_pre": true, "pool_type": "avg", "final_ln_after_pool": true},
         "text_cfg": {"context_length": 32, "vocab_size": 32000, "hf_tokenizer_name": "bert-base-uncased",
                      "tokenizer_kwargs": {"strip_sep_token": true}, "width": 1280, "heads": 20, "layers": 32,
                      "pool_type": "last", "no_causal_mask": true}}
        """,
    ]

    /// Model names we ship configs for.
    public static var modelNames: [String] {
        (Array(baseConfigs.keys) + baseConfigs.keys.filter { !$0.contains("CLIPA") }.map { $0 + "-quickgelu" }).sorted()
    }

    /// The model_cfg of a built-in model name (e.g. "ViT-B-32", "ViT-L-14-quickgelu").
    public static func modelConfig(_ name: String) throws -> OpenCLIPModelConfig {
        var base = name, quick = false
        if name.hasSuffix("-quickgelu") { base = String(name.dropLast("-quickgelu".count)); quick = true }
        guard var json = baseConfigs[base], !(quick && base.contains("CLIPA")) else {
            throw CLIPError.modelNotFound(spec: name, detail: "no built-in OpenCLIP config of that name; known: \(modelNames.joined(separator: ", ")); or pass r-open-clip:hf-hub:ORG/NAME for a hub repo with open_clip_config.json")
        }
        if quick { json = "{\"quick_gelu\": true, " + json.drop { $0 != "{" }.dropFirst() }
        do { return try JSONDecoder().decode(OpenCLIPModelConfig.self, from: Data(json.utf8)) } catch {
            throw CLIPError.badConfig(file: "built-in config \(name)", detail: describe(error))
        }
    }

    private static func p(_ repo: String, quick: Bool = false, mean: [Float] = openAIMean, std: [Float] = openAIStd,
                          interpolation: String = "bicubic", resize: String = "shortest") -> OpenCLIPPretrained {
        OpenCLIPPretrained(hubRepo: repo, mean: mean, std: std, interpolation: interpolation, resizeMode: resize, quickGelu: quick)
    }

    /// pretrained.py's tags for the models above whose weights live on the hub, keyed by base model name
    /// (the -quickgelu variants share their base model's tags).
    private static let tags: [String: [String: OpenCLIPPretrained]] = [
        "ViT-B-32": [
            "openai": p("timm/vit_base_patch32_clip_224.openai", quick: true),
            "laion400m_e31": p("timm/vit_base_patch32_clip_224.laion400m_e31", quick: true),
            "laion400m_e32": p("timm/vit_base_patch32_clip_224.laion400m_e32", quick: true),
            "laion2b_e16": p("timm/vit_base_patch32_clip_224.laion2b_e16"),
            "laion2b_s34b_b79k": p("laion/CLIP-ViT-B-32-laion2B-s34B-b79K"),
            "datacomp_xl_s13b_b90k": p("laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K"),
            "datacomp_m_s128m_b4k": p("laion/CLIP-ViT-B-32-DataComp.M-s128M-b4K"),
            "datacomp_s_s13m_b4k": p("laion/CLIP-ViT-B-32-DataComp.S-s13M-b4K"),
            "metaclip_400m": p("timm/vit_base_patch32_clip_224.metaclip_400m", quick: true),
            "metaclip_fullcc": p("timm/vit_base_patch32_clip_224.metaclip_2pt5b", quick: true),
        ],
        "ViT-B-16": [
            "openai": p("timm/vit_base_patch16_clip_224.openai", quick: true),
            "laion400m_e31": p("timm/vit_base_patch16_clip_224.laion400m_e31"),
            "laion400m_e32": p("timm/vit_base_patch16_clip_224.laion400m_e32"),
            "laion2b_s34b_b88k": p("laion/CLIP-ViT-B-16-laion2B-s34B-b88K"),
            "datacomp_xl_s13b_b90k": p("laion/CLIP-ViT-B-16-DataComp.XL-s13B-b90K"),
            "datacomp_l_s1b_b8k": p("laion/CLIP-ViT-B-16-DataComp.L-s1B-b8K"),
            "dfn2b": p("apple/DFN2B-CLIP-ViT-B-16", quick: true),
            "metaclip_400m": p("timm/vit_base_patch16_clip_224.metaclip_400m", quick: true),
            "metaclip_fullcc": p("timm/vit_base_patch16_clip_224.metaclip_2pt5b", quick: true),
        ],
        "ViT-L-14": [
            "openai": p("timm/vit_large_patch14_clip_224.openai", quick: true),
            "laion400m_e31": p("timm/vit_large_patch14_clip_224.laion400m_e31"),
            "laion400m_e32": p("timm/vit_large_patch14_clip_224.laion400m_e32"),
            "laion2b_s32b_b82k": p("laion/CLIP-ViT-L-14-laion2B-s32B-b82K", mean: inception, std: inception),
            "datacomp_xl_s13b_b90k": p("laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K"),
            "metaclip_400m": p("timm/vit_large_patch14_clip_224.metaclip_400m", quick: true),
            "metaclip_fullcc": p("timm/vit_large_patch14_clip_224.metaclip_2pt5b", quick: true),
            "dfn2b": p("apple/DFN2B-CLIP-ViT-L-14", quick: true),
            "dfn2b_s39b": p("apple/DFN2B-CLIP-ViT-L-14-39B"),
        ],
        "ViT-H-14": [
            "laion2b_s32b_b79k": p("laion/CLIP-ViT-H-14-laion2B-s32B-b79K"),
            "metaclip_fullcc": p("timm/vit_huge_patch14_clip_224.metaclip_2pt5b", quick: true),
            "metaclip_altogether": p("timm/vit_huge_patch14_clip_224.metaclip_altogether"),
            "dfn5b": p("apple/DFN5B-CLIP-ViT-H-14", quick: true, resize: "squash"),
        ],
        "ViT-bigG-14": [
            "laion2b_s39b_b160k": p("laion/CLIP-ViT-bigG-14-laion2B-39B-b160k"),
            "metaclip_fullcc": p("timm/vit_gigantic_patch14_clip_224.metaclip_2pt5b", quick: true),
        ],
        "ViT-bigG-14-CLIPA-336": [
            "datacomp1b": p("UCSC-VLAA/ViT-bigG-14-CLIPA-336-datacomp1B", mean: imagenetMean, std: imagenetStd,
                            interpolation: "bilinear", resize: "squash"),
        ],
    ]

    /// The hub weights of MODEL:TAG.
    public static func pretrained(model: String, tag: String) throws -> OpenCLIPPretrained {
        let base = model.hasSuffix("-quickgelu") ? String(model.dropLast("-quickgelu".count)) : model
        guard let forModel = tags[base] else {
            throw CLIPError.modelNotFound(spec: "r-open-clip:\(model):\(tag)", detail: "no pretrained tags known for model '\(model)'; known models: \(modelNames.joined(separator: ", "))")
        }
        guard let t = forModel[tag.lowercased()] else {
            throw CLIPError.modelNotFound(spec: "r-open-clip:\(model):\(tag)", detail: "unknown pretrained tag '\(tag)' for \(model); known: \(forModel.keys.sorted().joined(separator: ", "))")
        }
        return t
    }
}
