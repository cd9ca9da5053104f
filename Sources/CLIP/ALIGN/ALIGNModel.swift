// transformers' AlignModel (kakaobrain/align-base): the EfficientNet image tower's pooled map is the image
// embedding; the BERT text tower's [CLS] state through text_projection (with bias) is the text embedding;
// logits are cosines / temperature, so the EX2 reward scale is 1 / temperature, as the reference uses.
// Texts are tokenized as AlignProcessor does (BertTokenizerFast, at most 64 tokens: its max_length) and run
// unpadded; images go through EfficientNetImageProcessor as preprocessor_config.json sets it.
import Foundation
import Imaging
import Layers
import ModelFiles
import Tokenizers

public final class ALIGNModel: VisionLanguageModel {
    public let config: ALIGNConfig
    public let preprocessor: CLIPPreprocessor
    public let tokenizer: WordPieceTokenizer?
    public let temperature: Float
    public let identity: String
    public let notes: [String]
    public let imageBatch = 8, textBatch = 64
    /// AlignProcessor pads and truncates texts to 64 tokens.
    public let maxTextTokens: Int

    let vision: EfficientNetTower
    let text: BERTTower
    let textProjection: Linear

    public var embedDim: Int { config.projectionDim }
    public var logitScale: Float { 1 / temperature }
    public var summary: String {
        "ALIGN (EfficientNet width \(config.vision.widthCoefficient), depth \(config.vision.depthCoefficient), \(config.vision.blocks.count) blocks; BERT \(config.text.layers) layers, width \(config.text.hiddenSize); embed \(embedDim))"
    }
    public var preprocessingKey: String { "align|\(preprocessor.mode)" }

    init(config: ALIGNConfig, vision: EfficientNetWeights, text: BERTWeights, textProjection: Linear, temperature: Float,
         preprocessor: CLIPPreprocessor, tokenizer: WordPieceTokenizer?, identity: String, notes: [String]) {
        self.config = config
        self.vision = EfficientNetTower(config: config.vision, weights: vision)
        self.text = BERTTower(config: config.text, weights: text)
        self.textProjection = textProjection
        self.temperature = temperature
        self.preprocessor = preprocessor
        self.tokenizer = tokenizer
        self.identity = identity
        self.notes = notes
        maxTextTokens = min(64, config.text.maxPositionEmbeddings)
    }

    public func preprocess(_ image: RGBImage) -> [Float] { preprocessor(image) }

    public func embedPreprocessed(_ pixels: [[Float]], normalize: Bool) throws -> [[Float]] {
        let s = try imageSide(pixels)
        var out: [[Float]] = []
        out.reserveCapacity(pixels.count)
        for p in pixels { out.append(try vision.embed(p, height: s.height, width: s.width)) }
        return normalize ? out.map(l2Normalized) : out
    }

    /// The preprocessor's output size; every image must have it.
    private func imageSide(_ pixels: [[Float]]) throws -> (height: Int, width: Int) {
        let size = preprocessor.outputSize(width: 1000, height: 1000)
        for (i, p) in pixels.enumerated() where p.count != 3 * size.height * size.width {
            throw CLIPError.badInput("image \(i) has \(p.count) values; the preprocessing makes 3 x \(size.height) x \(size.width)")
        }
        return size
    }

    /// Embeddings of token id sequences ([CLS] ... [SEP], unpadded).
    public func embedTokens(_ ids: [[Int]], normalize: Bool = true) throws -> [[Float]] {
        var out: [[Float]] = []
        out.reserveCapacity(ids.count)
        for start in stride(from: 0, to: ids.count, by: textBatch) {
            let chunk = Array(ids[start..<min(ids.count, start + textBatch)])
            let states = try text.firstTokenStates(chunk)
            var flat = states.flatMap { $0 }
            var projected = [Float](repeating: 0, count: chunk.count * embedDim)
            flat.withUnsafeMutableBufferPointer { f in projected.withUnsafeMutableBufferPointer { p in
                textProjection.forward(p.baseAddress!, f.baseAddress!, rows: chunk.count)
            } }
            for i in 0..<chunk.count { out.append(Array(projected[(i * embedDim)..<((i + 1) * embedDim)])) }
        }
        return normalize ? out.map(l2Normalized) : out
    }

    public func embedTexts(_ texts: [String], normalize: Bool) throws -> [[Float]] {
        guard let tokenizer else {
            throw CLIPError.badInput("this ALIGN model was loaded without a tokenizer (no tokenizer.json or vocab.txt next to the weights)")
        }
        return try embedTokens(texts.map { tokenizer.encode($0, maxLength: maxTextTokens) }, normalize: normalize)
    }

    // MARK: loading

    static func load(_ dir: URL) throws -> ALIGNModel {
        let configURL = dir.appendingPathComponent("config.json")
        let config = try ALIGNConfig(contentsOf: configURL)
        let checkpoint = try VLMLoader.openCheckpoint(dir)
        var r = StrictWeightReader(checkpoint.source, file: dir.path)
        let vision: EfficientNetWeights, text: BERTWeights, projection: Linear, temperature: Float
        do {
            vision = try EfficientNetTower.read(config.vision, &r, prefix: "vision_model.")
            text = try BERTTower.read(config.text, &r, prefix: "text_model.")
            projection = try r.linear("text_projection", out: config.projectionDim, in: config.text.hiddenSize)
            temperature = r.has("temperature") ? try r.take("temperature", [])[0] : Float(config.temperatureInitValue)
            try r.finish(ignoring: { $0.hasSuffix("num_batches_tracked") || $0.hasPrefix("text_model.pooler.") || $0.hasSuffix("position_ids") || $0.hasSuffix("token_type_ids") }) { left in
                let shown = left.prefix(8).joined(separator: ", ") + (left.count > 8 ? ", ... (\(left.count) in all)" : "")
                return "is not used by this ALIGN architecture (unused tensors: \(shown)); the checkpoint does not match its config.json"
            }
        } catch let e as WeightError {
            throw CLIPError.badWeights(file: e.file, detail: "tensor '\(e.tensor)': \(e.message)")
        }
        guard temperature.isFinite, temperature > 0 else {
            throw CLIPError.badWeights(file: dir.path, detail: "tensor 'temperature' is \(temperature); it must be positive (the reward scale is 1/temperature)")
        }
        let ppURL = dir.appendingPathComponent("preprocessor_config.json")
        let pp: CLIPImageProcessorConfig
        if FileManager.default.fileExists(atPath: ppURL.path) {
            pp = try CLIPImageProcessorConfig(contentsOf: ppURL, defaults: .efficientNet)
        } else {
            pp = .efficientNet
        }
        let preprocessor: CLIPPreprocessor
        do { preprocessor = try CLIPPreprocessor.huggingFace(pp) } catch {
            throw CLIPError.badConfig(file: ppURL.path, detail: "\(error)")
        }
        var tok: WordPieceTokenizer?
        let json = dir.appendingPathComponent("tokenizer.json"), vocab = dir.appendingPathComponent("vocab.txt")
        if FileManager.default.fileExists(atPath: json.path) {
            tok = try WordPieceTokenizer(tokenizerJSON: json)
        } else if FileManager.default.fileExists(atPath: vocab.path) {
            tok = try WordPieceTokenizer(vocabTXT: vocab, lowercase: VLMLoader.doLowerCase(dir))
        }
        if let t = tok, t.vocabularySize > config.text.vocabSize {
            throw CLIPError.badConfig(file: dir.path, detail: "the tokenizer has \(t.vocabularySize) entries but the text tower only \(config.text.vocabSize)")
        }
        let configText = (try? String(contentsOf: configURL, encoding: .utf8)) ?? "\(config)"
        return ALIGNModel(config: config, vision: vision, text: text, textProjection: projection, temperature: temperature,
                          preprocessor: preprocessor, tokenizer: tok,
                          identity: VLMLoader.identity(configText: configText, files: checkpoint.files), notes: [])
    }
}
