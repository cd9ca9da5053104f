// Resolves a CLIP model spec to files and builds a CLIPModel, offline: hub repositories are read from the
// local Hugging Face cache laid out as huggingface_hub does it. The model identity that keys the embedding
// cache is a digest of the config text, the safetensors headers and a sample of the weight bytes, which
// changes with any retrained or fine-tuned checkpoint without reading gigabytes at every start.
import Foundation
import Imaging
import ModelFiles
import Tokenizers

extension CLIPModel {
    public static let openCLIPPrefix = "r-open-clip:"

    /// Loads `spec` as a CLIP model (see VLMLoader.load for what a spec is); a checkpoint of another family
    /// is refused. `tokenizer` overrides the one found next to the weights.
    public static func load(spec: String, locator: ModelLocator = ModelLocator(),
                            tokenizer: (any CLIPTextTokenizing)? = nil) throws -> CLIPModel {
        let model = try VLMLoader.load(spec: spec, locator: locator, tokenizer: tokenizer)
        guard let clip = model as? CLIPModel else {
            throw CLIPError.unsupportedArchitecture(model: spec, detail: "this is a \(model.summary), not a CLIP model; load it with VLMLoader.load(spec:)")
        }
        return clip
    }
}

public enum VLMLoader {
    /// Loads `spec`: an HF directory or hub id (config.json + weights; the family is picked from its model_type,
    /// see VLMFamilies), a directory with open_clip_config.json + open_clip_model.safetensors,
    /// `r-open-clip:MODEL:PRETRAINED`, `r-open-clip:MODEL:/path/weights.safetensors` (or a torch.save .bin) or
    /// `r-open-clip:hf-hub:ORG/NAME`. `tokenizer` overrides the one found next to CLIP weights.
    public static func load(spec: String, locator: ModelLocator = ModelLocator(),
                            tokenizer: (any CLIPTextTokenizing)? = nil) throws -> any VisionLanguageModel {
        let prefix = CLIPModel.openCLIPPrefix
        if spec.hasPrefix(prefix) {
            let rest = String(spec.dropFirst(prefix.count))
            if rest.hasPrefix("hf-hub:") {
                let repo = String(rest.dropFirst("hf-hub:".count))
                let dir = try hubSnapshot(repo, locator: locator, spec: spec, kind: .openCLIPDirectory)
                return try loadOpenCLIPDirectory(dir, tokenizer: tokenizer)
            }
            guard let colon = rest.firstIndex(of: ":") else {
                throw CLIPError.modelNotFound(spec: spec, detail: "expected r-open-clip:MODEL:PRETRAINED (e.g. r-open-clip:ViT-B-32:laion2b_s34b_b79k) or r-open-clip:hf-hub:ORG/NAME")
            }
            let model = String(rest[..<colon]), tag = String(rest[rest.index(after: colon)...])
            let cfg = try OpenCLIPRegistry.modelConfig(model)
            if tag.hasPrefix("/") || tag.hasSuffix(".safetensors") || tag.hasSuffix(".bin") || tag.hasSuffix(".pt") {
                let pre = OpenCLIPConfigFile.PreprocessCfg(size: cfg.visionCfg.imageSize)
                return try build(openCLIP: cfg, name: model, weights: URL(fileURLWithPath: tag), preprocess: pre,
                                 configText: "\(cfg)", notes: [], tokenizer: tokenizer, tokenizerDir: nil)
            }
            let pretrained = try OpenCLIPRegistry.pretrained(model: model, tag: tag)
            let dir = try hubSnapshot(pretrained.hubRepo, locator: locator, spec: spec,
                                      kind: .openCLIPWeights(preferred: pretrained.weightFiles))
            var notes: [String] = []
            if pretrained.quickGelu != cfg.quickGelu {
                notes.append("\(model) uses \(cfg.quickGelu ? "QuickGELU" : "GELU") but '\(tag)' was trained with \(pretrained.quickGelu ? "QuickGELU" : "GELU") (open_clip warns the same); use \(pretrained.quickGelu ? model + "-quickgelu" : model.replacingOccurrences(of: "-quickgelu", with: "")) to match the training")
            }
            let pre = OpenCLIPConfigFile.PreprocessCfg(size: cfg.visionCfg.imageSize, mean: pretrained.mean, std: pretrained.std,
                                                        interpolation: pretrained.interpolation, resizeMode: pretrained.resizeMode)
            return try build(openCLIP: cfg, name: "\(model):\(tag)", weights: try openCLIPWeights(in: dir, spec: spec, names: pretrained.weightFiles),
                             preprocess: pre, configText: "\(model)|\(cfg)", notes: notes, tokenizer: tokenizer, tokenizerDir: dir)
        }

        let fm = FileManager.default
        var isDir: ObjCBool = false
        let path = NSString(string: spec).expandingTildeInPath
        if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            let dir = URL(fileURLWithPath: path).standardizedFileURL
            if isOpenCLIPDirectory(dir) { return try loadOpenCLIPDirectory(dir, tokenizer: tokenizer) }
            return try loadHuggingFaceDirectory(dir, tokenizer: tokenizer)
        }
        // A hub id: an HF CLIP repository (config.json) or an open_clip-only one (open_clip_config.json).
        if !spec.hasPrefix("."), !spec.hasPrefix("/"), !spec.hasPrefix("~"), HubCacheLayout.split(spec) != nil {
            let snap = try hubSnapshot(spec, locator: locator, spec: spec, kind: .vlm)
            if isOpenCLIPDirectory(snap) { return try loadOpenCLIPDirectory(snap, tokenizer: tokenizer) }
            return try loadHuggingFaceDirectory(snap, tokenizer: tokenizer)
        }
        let location: ModelLocation
        do { location = try locator.resolve(spec) } catch {
            throw CLIPError.modelNotFound(spec: spec, detail: "\(error)")
        }
        switch location {
        case .hfDirectory(let dir): return try loadHuggingFaceDirectory(dir, tokenizer: tokenizer)
        case .gguf(let url):
            throw CLIPError.modelNotFound(spec: spec, detail: "\(url.path) is a GGUF file; CLIP models load from safetensors (an HF CLIP directory or OpenCLIP weights)")
        }
    }

    /// open_clip_config.json and no transformers VLM config: either no config.json, or one of another model type
    /// (the text encoder's own config an HFTextEncoder model brings, e.g. xlm-roberta). A repository with both an HF
    /// CLIP config.json and open_clip_config.json loads through transformers' naming.
    static func isOpenCLIPDirectory(_ dir: URL) -> Bool {
        let fm = FileManager.default
        guard fm.fileExists(atPath: dir.appendingPathComponent("open_clip_config.json").path) else { return false }
        let config = dir.appendingPathComponent("config.json")
        guard fm.fileExists(atPath: config.path) else { return true }
        let vlmTypes = Set(VLMFamilies.huggingFace.flatMap(\.modelTypes))
        guard let type = try? VLMFamilies.modelType(config) else { return false }
        return !vlmTypes.contains(type ?? "clip")
    }

    // MARK: transformers

    /// An HF directory: the family comes from config.json's model_type (CLIP when it has none, as old CLIP
    /// configs do).
    static func loadHuggingFaceDirectory(_ dir: URL, tokenizer: (any CLIPTextTokenizing)?) throws -> any VisionLanguageModel {
        let configURL = dir.appendingPathComponent("config.json")
        let modelType = try VLMFamilies.modelType(configURL)
        guard let family = VLMFamilies.huggingFace.first(where: { $0.modelTypes.contains(modelType ?? "clip") }) else {
            throw CLIPError.unsupportedArchitecture(model: dir.path, detail: "model_type '\(modelType ?? "")' in \(configURL.path); supported: \(VLMFamilies.huggingFace.flatMap(\.modelTypes).joined(separator: ", ")) (`ex2 embed --list-vlms` lists them)")
        }
        return try family.load(dir, tokenizer)
    }

    static func loadHuggingFace(_ dir: URL, tokenizer: (any CLIPTextTokenizing)?) throws -> CLIPModel {
        let configURL = dir.appendingPathComponent("config.json")
        let config = try HFCLIPConfig(contentsOf: configURL)
        let arch = try config.architecture(name: dir.path)
        let checkpoint: (source: any WeightSource, files: [URL])
        do { checkpoint = try ModelWeights.open(directory: dir) } catch {
            throw CLIPError.badWeights(file: dir.path, detail: "\(error)")
        }
        let weights = try CLIPWeightNames.load(arch, from: checkpoint.source, file: dir.path)

        let ppURL = dir.appendingPathComponent("preprocessor_config.json")
        var pp: CLIPImageProcessorConfig
        if FileManager.default.fileExists(atPath: ppURL.path) {
            pp = try CLIPImageProcessorConfig(contentsOf: ppURL)
        } else {
            let s = arch.vision.imageSize
            pp = CLIPImageProcessorConfig(size: .shortestEdge(s), cropHeight: s, cropWidth: s)
        }
        let preprocessor = try CLIPPreprocessor.huggingFace(pp)
        try checkPreprocessing(preprocessor, arch, file: ppURL.path)
        let tok = try tokenizer ?? findTokenizer(dir, openCLIP: false)
        let configText = (try? String(contentsOf: configURL, encoding: .utf8)) ?? "\(config)"
        return CLIPModel(architecture: arch, weights: weights, preprocessor: preprocessor, tokenizer: tok, fixedScale: nil,
                         identity: identity(configText: configText, files: checkpoint.files), notes: [])
    }

    // MARK: OpenCLIP

    static func loadOpenCLIPDirectory(_ dir: URL, tokenizer: (any CLIPTextTokenizing)?) throws -> CLIPModel {
        let configURL = dir.appendingPathComponent("open_clip_config.json")
        let file = try OpenCLIPConfigFile(contentsOf: configURL)
        let configText = (try? String(contentsOf: configURL, encoding: .utf8)) ?? "\(file.modelCfg)"
        let pre = OpenCLIPConfigFile.PreprocessCfg(size: file.modelCfg.visionCfg.imageSize).merged(with: file.preprocessCfg ?? .init())
        return try build(openCLIP: file.modelCfg, name: dir.path, weights: try openCLIPWeights(in: dir, spec: dir.path),
                         preprocess: pre, configText: configText, notes: [], tokenizer: tokenizer, tokenizerDir: dir)
    }

    static func openCLIPWeights(in dir: URL, spec: String,
                                names: [String] = HubFileSelection.openCLIPWeightFiles) throws -> URL {
        for n in names {
            let u = dir.appendingPathComponent(n)
            if FileManager.default.fileExists(atPath: u.path) { return u }
        }
        throw CLIPError.modelNotFound(spec: spec, detail: "\(dir.path) has none of \(names.joined(separator: ", "))")
    }

    static func build(openCLIP cfg: OpenCLIPModelConfig, name: String, weights url: URL,
                      preprocess: OpenCLIPConfigFile.PreprocessCfg, configText: String, notes: [String],
                      tokenizer: (any CLIPTextTokenizing)?, tokenizerDir: URL?) throws -> CLIPModel {
        var cfg = cfg
        if let hf = cfg.textCfg.hfModelName, cfg.textCfg.hfModelConfig == nil, let found = try HFTextModelConfig.find(hf, near: tokenizerDir) {
            cfg.textCfg.hfModelConfig = found
        }
        let arch = try cfg.architecture(name: name)
        let file: any WeightSource
        do { file = TorchCheckpointFile.looksLikeTorchSave(url) ? try TorchCheckpointFile(url: url) : try SafetensorsFile(url: url) } catch {
            throw CLIPError.badWeights(file: url.path, detail: "\(error)")
        }
        let weights = try CLIPWeightNames.load(arch, from: file, file: url.path)
        let preprocessor = try openCLIPPreprocessor(preprocess, size: preprocess.size ?? arch.vision.imageSize, model: name)
        try checkPreprocessing(preprocessor, arch, file: name)
        var tok = tokenizer
        var notes = notes
        var missing: String?
        if tok == nil {
            if let hf = cfg.textCfg.hfTokenizerName {
                var textCfg = cfg.textCfg
                textCfg.vocabSize = arch.text.vocabSize
                tok = try HFTextTokenizer.find(hf, near: tokenizerDir, config: textCfg)
                if tok == nil {
                    missing = OpenCLIPModelConfig.hfTokenizerGap(hf, model: name)
                    notes.append(missing!)
                }
            } else {
                tok = try findTokenizer(tokenizerDir, openCLIP: true)
            }
        }
        // The reference scores OpenCLIP CLIP models with a fixed scale 100; a SigLIP-style checkpoint (one with a
        // logit_bias) is scored with its own logits, exp(logit_scale) cos + logit_bias, as for transformers' SigLIP.
        return CLIPModel(architecture: arch, weights: weights, preprocessor: preprocessor, tokenizer: tok,
                         fixedScale: weights.logitBias == nil ? 100 : nil,
                         identity: identity(configText: configText, files: [url]), notes: notes, missingTokenizer: missing)
    }

    /// open_clip's eval transform. resize_mode "shortest": Resize(size) + CenterCrop(size) (bicubic only);
    /// "squash": Resize((size, size)) with the given PIL filter, no crop (SigLIP, CLIPA), which is
    /// transformers' exact-size resize.
    static func openCLIPPreprocessor(_ p: OpenCLIPConfigFile.PreprocessCfg, size: Int, model name: String) throws -> CLIPPreprocessor {
        let mean = p.mean ?? OpenCLIPRegistry.openAIMean, std = p.std ?? OpenCLIPRegistry.openAIStd
        let interpolation = p.interpolation ?? "bicubic"
        let filters: [String: ResampleFilter] = ["bicubic": .bicubic, "bilinear": .bilinear, "nearest": .nearest]
        do {
            switch p.resizeMode ?? "shortest" {
            case "shortest":
                guard interpolation == "bicubic" else {
                    throw CLIPError.unsupportedArchitecture(model: name, detail: "preprocessing interpolation '\(interpolation)' with resize_mode 'shortest' (only bicubic is implemented there)")
                }
                return try CLIPPreprocessor.openCLIP(size: size, mean: mean, std: std)
            case "squash":
                guard let filter = filters[interpolation] else {
                    throw CLIPError.unsupportedArchitecture(model: name, detail: "preprocessing interpolation '\(interpolation)' (implemented: \(filters.keys.sorted().joined(separator: ", ")))")
                }
                return try CLIPPreprocessor.huggingFace(CLIPImageProcessorConfig(
                    doResize: true, size: .exact(height: size, width: size), resample: filter, doCenterCrop: false,
                    cropHeight: size, cropWidth: size, doRescale: true, rescaleFactor: 1.0 / 255.0, doNormalize: true,
                    imageMean: mean, imageStd: std))
            case let m:
                throw CLIPError.unsupportedArchitecture(model: name, detail: "preprocessing resize_mode '\(m)' (implemented: shortest, squash)")
            }
        } catch let e as CLIPError {
            throw e
        } catch {
            throw CLIPError.badConfig(file: name, detail: "\(error)")
        }
    }

    // MARK: helpers

    static func checkPreprocessing(_ p: CLIPPreprocessor, _ arch: CLIPArchitecture, file: String) throws {
        let out = p.outputSize(width: 1000, height: 1000)
        guard out.height == arch.vision.imageSize, out.width == arch.vision.imageSize else {
            throw CLIPError.badConfig(file: file, detail: "preprocessing makes \(out.height)x\(out.width) images but the vision tower takes \(arch.vision.imageSize)x\(arch.vision.imageSize)")
        }
    }

    /// For HF CLIP: transformers' vocab.json + merges.txt, else tokenizer.json; then, for both kinds, open_clip's
    /// bpe_simple_vocab_16e6.txt.gz next to the weights, else the one $EX2_CLIP_BPE names, else, for OpenCLIP
    /// models, the copy ex2 ships: OpenCLIP hub repositories usually carry no tokenizer files because
    /// open_clip tokenizes with the vocabulary inside its Python package, which is the one shipped here.
    private static func findTokenizer(_ dir: URL?, openCLIP: Bool) throws -> (any CLIPTextTokenizing)? {
        let fm = FileManager.default
        // open_clip never reads transformers' tokenizer files: an OpenCLIP model tokenizes with open_clip's
        // vocabulary (a copy beside the weights, EX2_CLIP_BPE, or the one shipped here) even when a repository
        // also carries vocab.json for transformers.
        if let dir, !openCLIP {
            let vocab = dir.appendingPathComponent("vocab.json"), merges = dir.appendingPathComponent("merges.txt")
            if fm.fileExists(atPath: vocab.path), fm.fileExists(atPath: merges.path) {
                return try CLIPTokenizer(vocabJSON: vocab, mergesTXT: merges)
            }
            let json = dir.appendingPathComponent("tokenizer.json")
            if fm.fileExists(atPath: json.path) { return try CLIPTokenizer(tokenizerJSON: json) }
        }
        if let dir {
            let bpe = dir.appendingPathComponent("bpe_simple_vocab_16e6.txt.gz")
            if fm.fileExists(atPath: bpe.path) { return try CLIPTokenizer(bpeFile: bpe) }
        }
        if let path = ProcessInfo.processInfo.environment["EX2_CLIP_BPE"], !path.isEmpty {
            return try CLIPTokenizer(bpeFile: URL(fileURLWithPath: NSString(string: path).expandingTildeInPath))
        }
        if openCLIP { return try openCLIPTokenizer() }
        return nil
    }

    /// open_clip's SimpleTokenizer vocabulary, shipped in Resources/open_clip (decoded once per process).
    public static func openCLIPTokenizer() throws -> CLIPTokenizer {
        try bundledTokenizer.get()
    }

    private static let bundledTokenizer: Result<CLIPTokenizer, Error> = Result {
        guard let url = Bundle.module.url(forResource: "bpe_simple_vocab_16e6.txt", withExtension: "gz", subdirectory: "Resources/open_clip") else {
            throw CLIPError.modelNotFound(spec: "bpe_simple_vocab_16e6.txt.gz", detail: "the open_clip vocabulary shipped with ex2 is missing from its resource bundle (\(Bundle.module.bundlePath)); reinstall ex2, or set EX2_CLIP_BPE to a copy of open_clip's bpe_simple_vocab_16e6.txt.gz")
        }
        return try CLIPTokenizer(bpeFile: url)
    }
}

extension CLIPModel {
    /// open_clip's SimpleTokenizer vocabulary, shipped in Resources/open_clip (decoded once per process).
    public static func openCLIPTokenizer() throws -> CLIPTokenizer { try VLMLoader.openCLIPTokenizer() }
}

extension VLMLoader {

    /// The snapshot directory of ORG/NAME in the local hub cache (the pinned revision, else refs/main, else the
    /// newest snapshot), downloaded through the locator's hub when the cache lacks what `kind` needs.
    static func hubSnapshot(_ repo: String, locator: ModelLocator, spec: String, kind: HubModelKind = .vlm) throws -> URL {
        guard HubCacheLayout.split(repo) != nil else {
            throw CLIPError.modelNotFound(spec: spec, detail: "'\(repo)' is not a hub id ORG/NAME")
        }
        let revision = locator.revision ?? HubDefaults.vlmRevision
        let found: URL?
        do { found = try locator.hubSnapshot(repo, revision: revision, kind: kind) } catch {
            throw CLIPError.modelNotFound(spec: spec, detail: "\(error)")
        }
        if let found { return found }
        let how = locator.isOffline ? "HF_HUB_OFFLINE is set, so nothing is downloaded; unset it or " : ""
        throw CLIPError.modelNotFound(spec: spec, detail: "\(repo)\(revision.map { " (revision \($0))" } ?? "") is not in the Hugging Face cache \(locator.hubCache.path); \(how)download it with `huggingface-cli download \(repo)` (set HF_HUB_CACHE or HF_HOME to use another cache)")
    }

    /// The weights of an HF directory (safetensors preferred, else .bin, with shards), errors as badWeights.
    static func openCheckpoint(_ dir: URL) throws -> (source: any WeightSource, files: [URL]) {
        do { return try ModelWeights.open(directory: dir) } catch {
            throw CLIPError.badWeights(file: dir.path, detail: "\(error)")
        }
    }

    /// tokenizer_config.json's do_lower_case (true when absent, as BertTokenizer and SiglipTokenizer default).
    static func doLowerCase(_ dir: URL) -> Bool {
        guard let d = try? Data(contentsOf: dir.appendingPathComponent("tokenizer_config.json")),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return true }
        return o["do_lower_case"] as? Bool ?? true
    }

    /// Digest of the config text, each weight file's size and header, and 64 KiB samples spread over its data.
    static func identity(configText: String, files: [URL]) -> String {
        var h = SHA256()
        h.update(configText)
        for url in files {
            guard let handle = try? FileHandle(forReadingFrom: url) else { h.update(url.path); continue }
            defer { try? handle.close() }
            let size = (try? handle.seekToEnd()) ?? 0
            h.update("\(size)")
            let sample = 65536
            let samples: UInt64 = 64
            // Offset 0 covers the safetensors header (names, shapes, offsets); the rest samples the data.
            for i in 0..<samples {
                let at = size > UInt64(sample) ? (size - UInt64(sample)) * i / (samples - 1) : 0
                try? handle.seek(toOffset: at)
                if let d = try? handle.read(upToCount: sample) { h.update(d) }
                if size <= UInt64(sample) { break }
            }
        }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
