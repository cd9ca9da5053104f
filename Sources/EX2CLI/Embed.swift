// `ex2 embed`: L2-normalised CLIP embeddings of image files and texts, with the model's logit scale,
// as JSON (stdout or a file) or as a NumPy .npy matrix with a JSON sidecar.
import ArgumentParser
import EX2
import Foundation

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed images and texts with a VLM (CLIP, ALIGN, SigLIP, OpenCLIP; L2-normalised), with its logit scale.",
        discussion: """
            Output is JSON by default (to stdout, or to --output): {"model", "dimension", "logit_scale", \
            "normalized": true, "images": [{"path", "embedding"}], "texts": [{"text", "embedding"}]}. \
            The similarity CLIP uses is logit_scale x the dot product of two embeddings.

            When --output ends in .npy, it is a float32 matrix [images + texts, dimension] (NumPy .npy \
            version 1.0, C order): the images first, in the order given, then the texts. The rest goes \
            to a sidecar next to it, OUTPUT.json (e.g. emb.npy.json): model, dimension, logit_scale, and \
            the image paths and texts of the rows. The scale is also printed on stderr.

            Image embeddings are cached on disk (--cache-dir), keyed by the model and each file's bytes, \
            so embedding the same images again is instant.
            """)

    @Option(help: "The VLM: an HF CLIP, ALIGN or SigLIP directory or hub id (downloaded into the HF cache when missing), a directory with open_clip_config.json, r-open-clip:MODEL:PRETRAINED or r-open-clip:hf-hub:ORG/NAME.")
    var vlm: String?
    @Flag(help: "List the VLM families and OpenCLIP model configs this build supports (and why the others are not), then exit.")
    var listVlms = false
    @OptionGroup var vlmRevision: VLMOnlyRevision
    @Option(parsing: .upToNextOption, help: "Image files (JPEG or PNG); repeat the option or list several after it.")
    var image: [String] = []
    @Option(parsing: .upToNextOption, help: "Texts to embed; repeat the option or list several after it.")
    var text: [String] = []
    @Option(help: "Write here instead of stdout: .npy for a NumPy matrix (see below), anything else for JSON.")
    var output: String?
    @Option(help: "Where image embeddings are cached (default: $EX2_CACHE/image-embeddings or ~/.cache/ex2/image-embeddings).")
    var cacheDir: String?
    @Flag(help: "Do not read or write the image embedding cache.")
    var noCache = false

    func validate() throws {
        if listVlms { return }
        if vlm == nil { throw ValidationError("--vlm is required (or --list-vlms to see what is supported)") }
        if image.isEmpty && text.isEmpty { throw ValidationError("give at least one --image FILE or --text TEXT") }
        if noCache && cacheDir != nil { throw ValidationError("--no-cache and --cache-dir contradict each other; pass one") }
    }

    func run() throws {
        if listVlms { print(VLMList.text(), terminator: ""); return }
        guard let vlm else { throw ValidationError("--vlm is required") }
        let cache: URL? = noCache ? nil : cacheDir.map { URL(fileURLWithPath: $0) } ?? EmbedRequest.defaultCacheDirectory
        let request = EmbedRequest(vlm: vlm, images: image.map { URL(fileURLWithPath: $0) }, texts: text, cacheDirectory: cache)
        // A bar only pays off for more than a batch or two of images.
        let bar = image.count > 64 ? ProgressBar(label: "embedding images", unit: "images") : nil
        let result = try Embedder.run(request) { done, total in bar?.update(done, of: total) }
        bar?.finish()
        guard let output else {
            FileHandle.standardOutput.write(try result.json())
            return
        }
        let url = URL(fileURLWithPath: output)
        if url.pathExtension.lowercased() == "npy" {
            let sidecar = URL(fileURLWithPath: output + ".json")
            try write(result.npy(), to: url)
            try write(try result.npySidecar(), to: sidecar)
            note("wrote \(result.images.count + result.texts.count) x \(result.dimension) float32 to \(output) (images, then texts); "
                 + "logit_scale \(result.logitScale); row names in \(sidecar.path)")
        } else {
            try write(try result.json(), to: url)
            note("wrote \(result.images.count) image and \(result.texts.count) text embeddings (\(result.dimension)-d, logit_scale \(result.logitScale)) to \(output)")
        }
    }

    private func write(_ data: Data, to url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw EmbedError.cannotWrite(path: url.path, reason: error.localizedDescription)
        }
    }

    private func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
}
