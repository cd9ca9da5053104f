// transformers' AlignConfig (config.json of kakaobrain/align-base and its kin): a BERT text config, an
// EfficientNet vision config, the projection width and the temperature. Missing keys take transformers'
// defaults (which are align-base's). The EfficientNet block list is derived here exactly as
// AlignVisionEncoder builds it: round_filters widens each stage by width_coefficient to a multiple of
// depth_divisor, round_repeats deepens it by depth_coefficient, only a stage's first block strides, and
// every later block of a stage adds its input back.
import Foundation
import Tensors

public struct ALIGNConfig: Sendable, Equatable {
    public struct Text: Sendable, Equatable {
        public var vocabSize = 30522, hiddenSize = 768, layers = 12, heads = 12, intermediateSize = 3072
        public var maxPositionEmbeddings = 512, typeVocabSize = 2
        public var activation = Activation.gelu
        public var layerNormEps: Float = 1e-12
        public var padTokenId = 0
        /// Where positions start: 0 for BERT, padding_idx + 1 for RoBERTa and XLM-R (their position ids are
        /// padding_idx + the running count of real tokens).
        public var positionOffset = 0
    }

    public struct Vision: Sendable, Equatable {
        public var numChannels = 3, imageSize = 600
        public var widthCoefficient = 2.0, depthCoefficient = 3.1
        public var depthDivisor = 8
        public var kernelSizes = [3, 3, 5, 3, 5, 5, 3]
        public var inChannels = [32, 16, 24, 40, 80, 112, 192]
        public var outChannels = [16, 24, 40, 80, 112, 192, 320]
        public var depthwisePadding: [Int] = []
        public var strides = [1, 2, 2, 2, 1, 2, 1]
        public var numBlockRepeats = [1, 2, 2, 3, 3, 4, 1]
        public var expandRatios = [1, 6, 6, 6, 6, 6, 6]
        public var squeezeExpansionRatio = 0.25
        public var activation = Activation.silu
        public var poolingType = "mean"
        public var batchNormEps: Float = 1e-3

        /// transformers' round_filters.
        public func roundFilters(_ channels: Int) -> Int {
            let divisor = Double(depthDivisor)
            let scaled = Double(channels) * widthCoefficient
            var newDim = max(depthDivisor, Int(scaled + divisor / 2) / depthDivisor * depthDivisor)
            if Double(newDim) < 0.9 * scaled { newDim += depthDivisor }
            return newDim
        }

        /// int(ceil(depth_coefficient * repeats)).
        public func roundRepeats(_ repeats: Int) -> Int { Int((depthCoefficient * Double(repeats)).rounded(.up)) }

        /// The stem's output width: round_filters(32).
        public var stemChannels: Int { roundFilters(32) }

        /// Every MBConv block in order.
        public var blocks: [MBConvBlock] {
            var out: [MBConvBlock] = []
            for i in inChannels.indices {
                let inDim = roundFilters(inChannels[i]), outDim = roundFilters(outChannels[i])
                for j in 0..<roundRepeats(numBlockRepeats[i]) {
                    let index = out.count
                    out.append(MBConvBlock(
                        inDim: j > 0 ? outDim : inDim, outDim: outDim, stride: j > 0 ? 1 : strides[i],
                        kernel: kernelSizes[i], expandRatio: expandRatios[i], residual: j > 0,
                        adjustPadding: !depthwisePadding.contains(index),
                        squeezeDim: max(1, Int(Double(j > 0 ? outDim : inDim) * squeezeExpansionRatio))))
                }
            }
            return out
        }

        /// The pooled image width: the last block's output.
        public var outputChannels: Int { roundFilters(outChannels.last ?? 0) }
    }

    /// One MBConv block of the EfficientNet tower.
    public struct MBConvBlock: Sendable, Equatable {
        public var inDim: Int, outDim: Int, stride: Int, kernel: Int, expandRatio: Int
        /// Adds the block's input to its output (AlignVisionFinalBlockLayer.apply_dropout).
        public var residual: Bool
        /// correct_pad's `adjust`: stride-2 padding puts one less row and column before than after.
        public var adjustPadding: Bool
        public var squeezeDim: Int
        public var expandedDim: Int { expandRatio != 1 ? inDim * expandRatio : inDim }
    }

    public var text = Text()
    public var vision = Vision()
    public var projectionDim = 640
    public var temperatureInitValue: Double = 1.0

    public init() {}

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CLIPError.badConfig(file: url.path, detail: "cannot read the file (\(error.localizedDescription))")
        }
        let raw: RawConfig
        do { raw = try JSONDecoder().decode(RawConfig.self, from: data) } catch {
            throw CLIPError.badConfig(file: url.path, detail: "not a valid ALIGN config.json: \(describe(error))")
        }
        try self.init(raw, file: url.path)
    }

    /// config.json as transformers writes it; every key optional.
    struct RawConfig: Decodable {
        struct T: Decodable {
            var vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: Int?
            var max_position_embeddings, type_vocab_size, pad_token_id: Int?
            var layer_norm_eps: Double?
            var hidden_act, position_embedding_type: String?
        }
        struct V: Decodable {
            var num_channels, image_size, depth_divisor: Int?
            var width_coefficient, depth_coefficient, squeeze_expansion_ratio, batch_norm_eps: Double?
            var kernel_sizes, in_channels, out_channels, depthwise_padding, strides, num_block_repeats, expand_ratios: [Int]?
            var hidden_act, pooling_type: String?
        }
        var projection_dim: Int?
        var temperature_init_value: Double?
        var text_config: T?
        var vision_config: V?
    }

    init(_ raw: RawConfig, file: String) throws {
        func bad(_ d: String) -> CLIPError { CLIPError.unsupportedArchitecture(model: file, detail: d) }
        projectionDim = raw.projection_dim ?? projectionDim
        temperatureInitValue = raw.temperature_init_value ?? temperatureInitValue
        if let t = raw.text_config {
            text.vocabSize = t.vocab_size ?? text.vocabSize
            text.hiddenSize = t.hidden_size ?? text.hiddenSize
            text.layers = t.num_hidden_layers ?? text.layers
            text.heads = t.num_attention_heads ?? text.heads
            text.intermediateSize = t.intermediate_size ?? text.intermediateSize
            text.maxPositionEmbeddings = t.max_position_embeddings ?? text.maxPositionEmbeddings
            text.typeVocabSize = t.type_vocab_size ?? text.typeVocabSize
            text.layerNormEps = Float(t.layer_norm_eps ?? Double(text.layerNormEps))
            text.padTokenId = t.pad_token_id ?? text.padTokenId
            if let act = t.hidden_act {
                guard let a = Activation(configName: act) else { throw bad("text_config.hidden_act '\(act)' is not implemented") }
                text.activation = a
            }
            if let p = t.position_embedding_type, p != "absolute" {
                throw bad("text_config.position_embedding_type '\(p)' is not implemented (only 'absolute')")
            }
        }
        if let v = raw.vision_config {
            vision.numChannels = v.num_channels ?? vision.numChannels
            vision.imageSize = v.image_size ?? vision.imageSize
            vision.widthCoefficient = v.width_coefficient ?? vision.widthCoefficient
            vision.depthCoefficient = v.depth_coefficient ?? vision.depthCoefficient
            vision.depthDivisor = v.depth_divisor ?? vision.depthDivisor
            vision.kernelSizes = v.kernel_sizes ?? vision.kernelSizes
            vision.inChannels = v.in_channels ?? vision.inChannels
            vision.outChannels = v.out_channels ?? vision.outChannels
            vision.depthwisePadding = v.depthwise_padding ?? vision.depthwisePadding
            vision.strides = v.strides ?? vision.strides
            vision.numBlockRepeats = v.num_block_repeats ?? vision.numBlockRepeats
            vision.expandRatios = v.expand_ratios ?? vision.expandRatios
            vision.squeezeExpansionRatio = v.squeeze_expansion_ratio ?? vision.squeezeExpansionRatio
            vision.poolingType = v.pooling_type ?? vision.poolingType
            vision.batchNormEps = Float(v.batch_norm_eps ?? Double(vision.batchNormEps))
            if let act = v.hidden_act {
                guard let a = Activation(configName: act) else { throw bad("vision_config.hidden_act '\(act)' is not implemented") }
                vision.activation = a
            }
        }
        try validate(file: file)
    }

    func validate(file: String) throws {
        func bad(_ d: String) -> CLIPError { CLIPError.unsupportedArchitecture(model: file, detail: d) }
        let t = text, v = vision
        guard t.hiddenSize > 0, t.layers > 0, t.heads > 0, t.hiddenSize % t.heads == 0, t.intermediateSize > 0,
              t.vocabSize > 0, t.maxPositionEmbeddings > 0, t.typeVocabSize > 0 else {
            throw bad("text_config: hidden \(t.hiddenSize), \(t.layers) layers, \(t.heads) heads (hidden must be a positive multiple of heads)")
        }
        guard v.numChannels == 3 else { throw bad("vision_config.num_channels \(v.numChannels) (RGB only)") }
        let n = v.inChannels.count
        guard n > 0, [v.outChannels.count, v.kernelSizes.count, v.strides.count, v.numBlockRepeats.count, v.expandRatios.count].allSatisfy({ $0 == n }) else {
            throw bad("vision_config: in_channels, out_channels, kernel_sizes, strides, num_block_repeats and expand_ratios must have the same length")
        }
        guard v.kernelSizes.allSatisfy({ $0 > 0 && $0 % 2 == 1 }), v.strides.allSatisfy({ $0 == 1 || $0 == 2 }),
              v.expandRatios.allSatisfy({ $0 > 0 }), v.numBlockRepeats.allSatisfy({ $0 > 0 }),
              v.inChannels.allSatisfy({ $0 > 0 }), v.outChannels.allSatisfy({ $0 > 0 }),
              v.widthCoefficient > 0, v.depthCoefficient > 0, v.depthDivisor > 0, v.imageSize > 0 else {
            throw bad("vision_config: kernel sizes must be odd, strides 1 or 2, and every count positive")
        }
        guard v.poolingType == "mean" else {
            throw bad("vision_config.pooling_type '\(v.poolingType)' (only 'mean', align-base's, is implemented)")
        }
        guard projectionDim == v.outputChannels else {
            throw bad("projection_dim \(projectionDim) differs from the image tower's pooled width \(v.outputChannels); AlignModel compares them directly")
        }
    }
}
