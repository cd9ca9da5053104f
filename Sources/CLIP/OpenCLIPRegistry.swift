// What `r-open-clip:MODEL:PRETRAINED` means without Python, from data ex2 ships in Resources/open_clip
// (generated from open_clip's own package by scripts/fixtures/openclip_data.py): model_configs.json holds
// every open_clip model config (model_configs/*.json) and pretrained.json its pretrained-tag table: per tag
// the hub repository, the weight files open_clip tries in order (the safetensors alternative first), and
// the preprocessing the tag was trained with. Configs of towers this engine does not implement (ResNets,
// timm, ConvNeXt, CoCa...) decode into a clear "unsupported" error.
import Foundation
import ModelFiles

public struct OpenCLIPPretrained: Sendable, Equatable {
    /// ORG/NAME on the Hugging Face hub.
    public var hubRepo: String
    public var mean: [Float]
    public var std: [Float]
    public var interpolation: String
    public var resizeMode: String
    /// The activation the tag was trained with; open_clip warns (and we report) when the model config differs.
    public var quickGelu: Bool
    /// The file open_clip names for the tag in its table.
    public var hubFilename: String = "open_clip_pytorch_model.bin"
    /// What open_clip downloads, in the order it tries: the safetensors alternative, then the file itself.
    public var weightFiles: [String] = HubFileSelection.openCLIPWeightFiles
}

public enum OpenCLIPRegistry {
    static let openAIMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    static let openAIStd: [Float] = [0.26862954, 0.26130258, 0.27577711]

    private struct TagEntry: Decodable {
        var hf_hub: String
        var hf_hub_filename: String?
        var hf_hub_candidates: [String]?
        var mean: [Float]?
        var std: [Float]?
        var interpolation: String?
        var resize_mode: String?
        var quick_gelu: Bool?
    }
    private struct Table: Decodable {
        var open_clip_version: String
        var models: [String: [String: TagEntry]]
    }

    private static func resource(_ name: String) throws -> Data {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Resources/open_clip") else {
            throw CLIPError.modelNotFound(spec: "\(name).json", detail: "open_clip's \(name) table shipped with ex2 is missing from its resource bundle (\(Bundle.module.bundlePath)); reinstall ex2")
        }
        return try Data(contentsOf: url)
    }

    private static let table: Result<Table, Error> = Result {
        try JSONDecoder().decode(Table.self, from: try resource("pretrained"))
    }
    /// Each config as its JSON text, so it decodes through the same path as a downloaded open_clip_config.json.
    private static let configs: Result<[String: Data], Error> = Result {
        guard let obj = try JSONSerialization.jsonObject(with: try resource("model_configs")) as? [String: Any] else {
            throw CLIPError.badConfig(file: "model_configs.json", detail: "not a JSON object")
        }
        return try obj.mapValues { try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
    }

    /// The open_clip release the tables come from.
    public static var openCLIPVersion: String { (try? table.get().open_clip_version) ?? "unknown" }

    /// Model names open_clip has configs for (some name towers this engine does not implement).
    public static var modelNames: [String] { ((try? configs.get().keys.sorted()) ?? []) }

    /// The model_cfg of an open_clip model name (e.g. "ViT-B-32", "ViT-L-14-quickgelu").
    public static func modelConfig(_ name: String) throws -> OpenCLIPModelConfig {
        guard let json = try configs.get()[name] else {
            let near = modelNames.filter { $0.lowercased().hasPrefix(String(name.lowercased().prefix(5))) }.prefix(12)
            throw CLIPError.modelNotFound(spec: name, detail: "open_clip \(openCLIPVersion) has no model config of that name\(near.isEmpty ? "" : "; similar: \(near.joined(separator: ", "))"); or pass r-open-clip:hf-hub:ORG/NAME for a hub repo with open_clip_config.json")
        }
        do { return try JSONDecoder().decode(OpenCLIPModelConfig.self, from: json) } catch let e as CLIPError {
            throw e
        } catch {
            throw CLIPError.badConfig(file: "open_clip config \(name)", detail: describe(error))
        }
    }

    /// One shipped model config as `--list-vlms` shows it.
    public struct SupportRow: Sendable {
        public let name: String
        public let supported: Bool
        /// The Hugging Face tokenizer its texts need (text_cfg.hf_tokenizer_name), found at load time beside the
        /// weights or in the HF cache; nil for open_clip's own CLIP BPE, which ex2 ships.
        public let hfTokenizer: String?
        /// The tower summary when supported, else the first feature the engine lacks.
        public let detail: String
    }

    /// Every shipped model config: whether this engine builds it, else the first feature it lacks.
    public static func supportTable() -> [SupportRow] {
        modelNames.map { name in
            do {
                let cfg = try modelConfig(name)
                let arch = try cfg.architecture(name: name)
                let tower: String
                if let c = arch.convnext {
                    tower = "ConvNeXt \(c.timmName), \(c.imageSize) px, embed \(arch.embedDim)"
                } else if let tv = arch.timmViT, tv.hybridStem != nil {
                    tower = "ViTamin (timm \(tv.timmName)), \(arch.vision.imageSize) px, embed \(arch.embedDim)"
                } else if let tv = arch.timmViT {
                    tower = "ViT (timm \(tv.timmName)), \(arch.vision.imageSize) px, embed \(arch.embedDim)"
                } else if let m = arch.mapViT {
                    tower = "SigLIP ViT (timm \(m.timmName ?? "?")), \(m.imageSize) px, embed \(arch.embedDim)"
                } else if let r = arch.resnet {
                    tower = "ModifiedResNet \(r.layers) width \(r.width), \(r.imageSize) px, embed \(arch.embedDim)"
                } else {
                    tower = "ViT-\(arch.vision.patchSize) \(arch.vision.imageSize) px, embed \(arch.embedDim)"
                }
                let hf = cfg.textCfg.hfTokenizerName
                return SupportRow(name: name, supported: true, hfTokenizer: hf,
                                  detail: tower + (hf.map { "; texts: Hugging Face tokenizer '\($0)' (its tokenizer.json beside the weights or in the HF cache)" } ?? ""))
            } catch let e as CLIPError {
                return SupportRow(name: name, supported: false, hfTokenizer: nil, detail: e.reason)
            } catch {
                return SupportRow(name: name, supported: false, hfTokenizer: nil, detail: "\(error)")
            }
        }
    }

    /// Pretrained tags of a model, sorted.
    public static func tags(model: String) -> [String] {
        ((try? table.get().models[model].map { Array($0.keys).sorted() }) ?? nil) ?? []
    }

    /// The hub weights of MODEL:TAG; the tag is looked up as open_clip does (lower-cased, '-' read as '_').
    public static func pretrained(model: String, tag: String) throws -> OpenCLIPPretrained {
        let t = try table.get()
        guard let forModel = t.models[model] else {
            throw CLIPError.modelNotFound(spec: "r-open-clip:\(model):\(tag)", detail: "open_clip \(t.open_clip_version) has no pretrained tags for model '\(model)'; models with tags: \(t.models.keys.sorted().joined(separator: ", "))")
        }
        let key = tag.lowercased().replacingOccurrences(of: "-", with: "_")
        guard let e = forModel[key] else {
            throw CLIPError.modelNotFound(spec: "r-open-clip:\(model):\(tag)", detail: "unknown pretrained tag '\(tag)' for \(model); known: \(forModel.keys.sorted().joined(separator: ", "))")
        }
        let file = e.hf_hub_filename ?? "open_clip_pytorch_model.bin"
        return OpenCLIPPretrained(hubRepo: e.hf_hub, mean: e.mean ?? openAIMean, std: e.std ?? openAIStd,
                                  interpolation: e.interpolation ?? "bicubic", resizeMode: e.resize_mode ?? "shortest",
                                  quickGelu: e.quick_gelu ?? false, hubFilename: file,
                                  weightFiles: e.hf_hub_candidates ?? [file])
    }
}
