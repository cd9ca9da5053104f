// `ex2 embed --list-vlms`: what this build can load, from the same tables the loaders use (VLMFamilies for
// transformers checkpoints, OpenCLIPRegistry for open_clip's shipped model configs), so the list cannot
// drift from what works.
import CLIP

enum VLMList {
    static func text() -> String {
        var out = "transformers checkpoints (config.json model_type):\n"
        for f in VLMFamilies.huggingFace {
            out += "  \(f.name.padding(toLength: 8, withPad: " ", startingAt: 0)) model_type \(f.modelTypes.joined(separator: ", ")): \(f.reference)\n"
        }
        let table = OpenCLIPRegistry.supportTable()
        let ok = table.filter(\.supported)
        let withHF = ok.filter { $0.hfTokenizer != nil }.count
        out += "\nOpenCLIP \(OpenCLIPRegistry.openCLIPVersion) model configs (r-open-clip:MODEL:TAG, or a directory with open_clip_config.json): \(ok.count) of \(table.count) supported (\(withHF) of them tokenize with a Hugging Face tokenizer)\n"
        for row in table {
            let tags = OpenCLIPRegistry.tags(model: row.name)
            let tagText = tags.isEmpty ? "" : " [tags: \(tags.joined(separator: ", "))]"
            out += "  \(row.supported ? "yes" : "no ") \(row.name): \(row.detail)\(row.supported ? tagText : "")\n"
        }
        return out
    }
}
