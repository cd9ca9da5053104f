// The VLM families an HF checkpoint can be, keyed by config.json's model_type. A new family is a folder of
// its own (config, weights, towers, a `VisionLanguageModel`) plus one entry here; nothing else in the
// pipeline changes. OpenCLIP checkpoints (open_clip_config.json, `r-open-clip:`) go through OpenCLIPRegistry.
import Foundation

public struct VLMFamily: Sendable {
    /// What users call it ("CLIP", "ALIGN", "SigLIP").
    public let name: String
    /// config.json model_type values it loads.
    public let modelTypes: [String]
    /// The library class it reproduces.
    public let reference: String
    let load: @Sendable (URL, (any CLIPTextTokenizing)?) throws -> any VisionLanguageModel
}

public enum VLMFamilies {
    public static let huggingFace: [VLMFamily] = [
        VLMFamily(name: "CLIP", modelTypes: ["clip"], reference: "transformers CLIPModel",
                  load: { try VLMLoader.loadHuggingFace($0, tokenizer: $1) }),
        VLMFamily(name: "ALIGN", modelTypes: ["align"], reference: "transformers AlignModel (kakaobrain/align-base)",
                  load: { dir, _ in try ALIGNModel.load(dir) }),
        VLMFamily(name: "SigLIP", modelTypes: ["siglip"], reference: "transformers SiglipModel (google/siglip-*, fixed-resolution SigLIP 2)",
                  load: { dir, _ in try SigLIPModel.load(dir) }),
        VLMFamily(name: "SigLIP 2", modelTypes: ["siglip2"], reference: "transformers Siglip2Model (google/siglip2-*-naflex: variable resolution)",
                  load: { dir, _ in try SigLIPModel.load(dir) }),
    ]

    /// config.json's model_type, nil when it has none.
    static func modelType(_ url: URL) throws -> String? {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CLIPError.badConfig(file: url.path, detail: "cannot read the file (\(error.localizedDescription))")
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CLIPError.badConfig(file: url.path, detail: "not a JSON object")
        }
        return obj["model_type"] as? String
    }
}
