// The image side of CLIP: turn a decoded RGB image into the CHW float tensor a vision tower expects, exactly
// as the two reference pipelines do. transformers' CLIPImageProcessor (PIL backend) resizes the shortest edge
// with PIL, centre-crops with a floor offset, rescales by 1/255 in Double and normalises in Float;
// open_clip's eval transform (torchvision Resize + CenterCrop + ToTensor + Normalize on a PIL image) resizes
// with PIL too but rounds the crop offset half-to-even and divides by 255 in Float. The configuration for the
// first is decoded from the model's own preprocessor_config.json.
import Foundation

/// `preprocessor_config.json` of a transformers CLIP-family model. Unknown keys are ignored; missing keys take
/// CLIPImageProcessor's defaults.
public struct CLIPImageProcessorConfig: Codable, Sendable, Equatable {
    /// How to resize: match the shortest edge, or force an exact size.
    public enum Size: Sendable, Equatable {
        case shortestEdge(Int)
        case exact(height: Int, width: Int)
    }

    public var doResize: Bool
    public var size: Size
    public var resample: ResampleFilter
    public var doCenterCrop: Bool
    public var cropHeight: Int
    public var cropWidth: Int
    public var doRescale: Bool
    public var rescaleFactor: Double
    public var doNormalize: Bool
    public var imageMean: [Float]
    public var imageStd: [Float]
    public var doConvertRGB: Bool
    /// EfficientNetImageProcessor: x * rescale_factor - 1 instead of x * rescale_factor.
    public var rescaleOffset: Bool = false
    /// EfficientNetImageProcessor: divide by image_std once more after normalising (its odd include_top step).
    public var includeTop: Bool = false

    /// transformers' EfficientNetImageProcessor defaults (what ALIGN's processor falls back to).
    public static let efficientNet: CLIPImageProcessorConfig = {
        var c = CLIPImageProcessorConfig(doResize: true, size: .exact(height: 346, width: 346), resample: .nearest,
                                         doCenterCrop: false, cropHeight: 289, cropWidth: 289, doRescale: true,
                                         rescaleFactor: 1.0 / 255.0, doNormalize: true, imageMean: [0.5, 0.5, 0.5],
                                         imageStd: [0.5, 0.5, 0.5])
        c.includeTop = true
        return c
    }()

    public static let openAIMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public static let openAIStd: [Float] = [0.26862954, 0.26130258, 0.27577711]

    public init(doResize: Bool = true, size: Size = .shortestEdge(224), resample: ResampleFilter = .bicubic,
                doCenterCrop: Bool = true, cropHeight: Int = 224, cropWidth: Int = 224, doRescale: Bool = true,
                rescaleFactor: Double = 1.0 / 255.0, doNormalize: Bool = true, imageMean: [Float] = openAIMean,
                imageStd: [Float] = openAIStd, doConvertRGB: Bool = true) {
        self.doResize = doResize; self.size = size; self.resample = resample
        self.doCenterCrop = doCenterCrop; self.cropHeight = cropHeight; self.cropWidth = cropWidth
        self.doRescale = doRescale; self.rescaleFactor = rescaleFactor; self.doNormalize = doNormalize
        self.imageMean = imageMean; self.imageStd = imageStd; self.doConvertRGB = doConvertRGB
    }

    /// Reads a preprocessor_config.json file; keys it lacks take `defaults` (CLIPImageProcessor's unless given).
    public init(contentsOf url: URL, defaults: CLIPImageProcessorConfig? = nil) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ImageError.invalidConfiguration("cannot read \(url.path): \(error.localizedDescription)")
        }
        do {
            let decoder = JSONDecoder()
            if let defaults { decoder.userInfo[Self.defaultsKey] = defaults }
            self = try decoder.decode(Self.self, from: data)
        } catch {
            throw ImageError.invalidConfiguration("\(url.path) is not a usable preprocessor config: \(error)")
        }
    }

    enum CodingKeys: String, CodingKey {
        case doResize = "do_resize", size, resample, doCenterCrop = "do_center_crop", cropSize = "crop_size"
        case doRescale = "do_rescale", rescaleFactor = "rescale_factor", doNormalize = "do_normalize"
        case imageMean = "image_mean", imageStd = "image_std", doConvertRGB = "do_convert_rgb"
        case rescaleOffset = "rescale_offset", includeTop = "include_top"
    }

    static let defaultsKey = CodingUserInfoKey(rawValue: "ex2.preprocessorDefaults")!

    /// Sizes appear as an int (old configs) or as a dict with "shortest_edge" or "height"/"width".
    private struct SizeDict: Codable {
        var shortest_edge: Int?
        var height: Int?
        var width: Int?
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = decoder.userInfo[Self.defaultsKey] as? CLIPImageProcessorConfig ?? CLIPImageProcessorConfig()
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? defaults.doResize
        if let n = try? c.decode(Int.self, forKey: .size) {
            size = .shortestEdge(n)
        } else if let d = try c.decodeIfPresent(SizeDict.self, forKey: .size) {
            if let s = d.shortest_edge {
                size = .shortestEdge(s)
            } else if let h = d.height, let w = d.width {
                size = .exact(height: h, width: w)
            } else {
                throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription:
                    "size needs \"shortest_edge\" or \"height\" and \"width\"")
            }
        } else {
            size = defaults.size
        }
        if let code = try c.decodeIfPresent(Int.self, forKey: .resample) {
            guard let filter = ResampleFilter(rawValue: code) else {
                throw DecodingError.dataCorruptedError(forKey: .resample, in: c, debugDescription:
                    "resample \(code) is not supported (use 0 NEAREST, 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX or 5 HAMMING)")
            }
            resample = filter
        } else {
            resample = defaults.resample
        }
        doCenterCrop = try c.decodeIfPresent(Bool.self, forKey: .doCenterCrop) ?? defaults.doCenterCrop
        if let n = try? c.decode(Int.self, forKey: .cropSize) {
            cropHeight = n; cropWidth = n
        } else if let d = try c.decodeIfPresent(SizeDict.self, forKey: .cropSize) {
            guard let h = d.height, let w = d.width else {
                throw DecodingError.dataCorruptedError(forKey: .cropSize, in: c, debugDescription:
                    "crop_size needs \"height\" and \"width\"")
            }
            cropHeight = h; cropWidth = w
        } else {
            cropHeight = defaults.cropHeight; cropWidth = defaults.cropWidth
        }
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? defaults.doRescale
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? defaults.rescaleFactor
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? defaults.doNormalize
        imageMean = try c.decodeIfPresent([Float].self, forKey: .imageMean) ?? defaults.imageMean
        imageStd = try c.decodeIfPresent([Float].self, forKey: .imageStd) ?? defaults.imageStd
        doConvertRGB = try c.decodeIfPresent(Bool.self, forKey: .doConvertRGB) ?? defaults.doConvertRGB
        rescaleOffset = try c.decodeIfPresent(Bool.self, forKey: .rescaleOffset) ?? defaults.rescaleOffset
        includeTop = try c.decodeIfPresent(Bool.self, forKey: .includeTop) ?? defaults.includeTop
        if imageMean.count != 3 || imageStd.count != 3 {
            throw DecodingError.dataCorruptedError(forKey: .imageMean, in: c, debugDescription:
                "image_mean and image_std need 3 values each (RGB)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(doResize, forKey: .doResize)
        switch size {
        case .shortestEdge(let s): try c.encode(SizeDict(shortest_edge: s), forKey: .size)
        case let .exact(h, w): try c.encode(SizeDict(height: h, width: w), forKey: .size)
        }
        try c.encode(resample.rawValue, forKey: .resample)
        try c.encode(doCenterCrop, forKey: .doCenterCrop)
        try c.encode(SizeDict(height: cropHeight, width: cropWidth), forKey: .cropSize)
        try c.encode(doRescale, forKey: .doRescale)
        try c.encode(rescaleFactor, forKey: .rescaleFactor)
        try c.encode(doNormalize, forKey: .doNormalize)
        try c.encode(imageMean, forKey: .imageMean)
        try c.encode(imageStd, forKey: .imageStd)
        try c.encode(doConvertRGB, forKey: .doConvertRGB)
        if rescaleOffset { try c.encode(rescaleOffset, forKey: .rescaleOffset) }
        if includeTop { try c.encode(includeTop, forKey: .includeTop) }
    }
}

/// Image -> CHW float tensor, as transformers' CLIPImageProcessor or open_clip's eval transform would do it.
public struct CLIPPreprocessor: Sendable {
    public enum Mode: Sendable, Equatable {
        case huggingFace(CLIPImageProcessorConfig)
        case openCLIP(size: Int, mean: [Float], std: [Float])
    }

    public let mode: Mode

    /// Validates the mode so that preprocessing itself cannot fail.
    public init(_ mode: Mode) throws {
        switch mode {
        case .huggingFace(let c):
            if case .shortestEdge(let s) = c.size, s <= 0 {
                throw ImageError.invalidConfiguration("size.shortest_edge must be positive, got \(s)")
            }
            if case let .exact(h, w) = c.size, h <= 0 || w <= 0 {
                throw ImageError.invalidConfiguration("size must be positive, got \(h)x\(w)")
            }
            if c.doCenterCrop && (c.cropHeight <= 0 || c.cropWidth <= 0) {
                throw ImageError.invalidConfiguration("crop_size must be positive, got \(c.cropHeight)x\(c.cropWidth)")
            }
            if c.imageMean.count != 3 || c.imageStd.count != 3 || c.imageStd.contains(0) {
                throw ImageError.invalidConfiguration("image_mean/image_std need 3 values each, std non-zero")
            }
        case let .openCLIP(size, mean, std):
            if size <= 0 { throw ImageError.invalidConfiguration("open_clip image size must be positive, got \(size)") }
            if mean.count != 3 || std.count != 3 || std.contains(0) {
                throw ImageError.invalidConfiguration("open_clip mean/std need 3 values each, std non-zero")
            }
        }
        self.mode = mode
    }

    /// transformers' CLIPImageProcessor driven by a preprocessor_config.json.
    public static func huggingFace(_ config: CLIPImageProcessorConfig) throws -> CLIPPreprocessor {
        try CLIPPreprocessor(.huggingFace(config))
    }

    /// open_clip's eval transform: Resize(size, BICUBIC) + CenterCrop(size) + ToTensor + Normalize(mean, std).
    public static func openCLIP(size: Int, mean: [Float] = CLIPImageProcessorConfig.openAIMean,
                                std: [Float] = CLIPImageProcessorConfig.openAIStd) throws -> CLIPPreprocessor {
        try CLIPPreprocessor(.openCLIP(size: size, mean: mean, std: std))
    }

    /// The (height, width) of the output for an input of the given size.
    public func outputSize(width: Int, height: Int) -> (height: Int, width: Int) {
        switch mode {
        case .huggingFace(let c):
            if c.doCenterCrop { return (c.cropHeight, c.cropWidth) }
            guard c.doResize else { return (height, width) }
            let r = Self.resizedSize(width: width, height: height, size: c.size)
            return (r.height, r.width)
        case .openCLIP(let size, _, _):
            return (size, size)
        }
    }

    /// The uint8 image after resize and crop, before rescaling and normalisation.
    public func pixels(_ image: RGBImage) -> RGBImage {
        switch mode {
        case .huggingFace(let c):
            var img = image
            if c.doResize {
                let r = Self.resizedSize(width: img.width, height: img.height, size: c.size)
                img = img.resized(width: r.width, height: r.height, filter: c.resample)
            }
            if c.doCenterCrop {
                // transformers: offset (h - ch) // 2 (floor). A crop larger than the image pads with zeros,
                // the image sitting ceil((ch - h) / 2) from the top: the same negative floor offset.
                img = Self.crop(img, height: c.cropHeight, width: c.cropWidth,
                                top: floorDiv(img.height - c.cropHeight, 2),
                                left: floorDiv(img.width - c.cropWidth, 2))
            }
            return img
        case .openCLIP(let size, _, _):
            let r = Self.resizedSize(width: image.width, height: image.height, size: .shortestEdge(size))
            let img = image.resized(width: r.width, height: r.height, filter: .bicubic)
            // torchvision: int(round((h - ch) / 2.0)), Python's round-half-to-even. The resize guarantees
            // the crop fits, so torchvision never pads here.
            return Self.crop(img, height: size, width: size,
                             top: roundHalfEvenHalf(img.height - size), left: roundHalfEvenHalf(img.width - size))
        }
    }

    /// CHW float32, 3 x H x W.
    public func callAsFunction(_ image: RGBImage) -> [Float] {
        let img = pixels(image)
        let plane = img.width * img.height
        var out = [Float](repeating: 0, count: 3 * plane)
        // Per-value formulas follow each reference's float arithmetic so results agree to the last bit or so.
        var table = [[Float]](repeating: [Float](repeating: 0, count: 256), count: 3)
        for ch in 0..<3 {
            for v in 0..<256 {
                switch mode {
                case .huggingFace(let c):
                    // numpy: (uint8 -> float64) * factor -> float32, then (x - mean) / std in float32.
                    var x = c.doRescale ? Float(Double(v) * c.rescaleFactor) : Float(v)
                    if c.doRescale && c.rescaleOffset { x -= 1 }
                    if c.doNormalize { x = (x - c.imageMean[ch]) / c.imageStd[ch] }
                    if c.includeTop { x = x / c.imageStd[ch] }
                    table[ch][v] = x
                case let .openCLIP(_, mean, std):
                    // torch: float32 division by 255, then sub and div in float32.
                    table[ch][v] = (Float(v) / 255 - mean[ch]) / std[ch]
                }
            }
        }
        img.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for ch in 0..<3 {
                    table[ch].withUnsafeBufferPointer { t in
                        let base = ch * plane
                        for i in 0..<plane { dst[base + i] = t[Int(src[3 * i + ch])] }
                    }
                }
            }
        }
        return out
    }

    /// transformers' and torchvision's shortest-edge rule: the long side becomes int(size * long / short).
    static func resizedSize(width: Int, height: Int, size: CLIPImageProcessorConfig.Size) -> (width: Int, height: Int) {
        switch size {
        case let .exact(h, w):
            return (w, h)
        case .shortestEdge(let s):
            let (short, long) = width <= height ? (width, height) : (height, width)
            // Python: int(s * long / short) with true (correctly rounded) division, then truncation.
            let newLong = Int(Double(s * long) / Double(short))
            return width <= height ? (s, newLong) : (newLong, s)
        }
    }

    /// The `height` x `width` window whose top-left corner is (top, left) in image coordinates; parts of the
    /// window outside the image are black (zero padding).
    static func crop(_ img: RGBImage, height: Int, width: Int, top: Int, left: Int) -> RGBImage {
        if top >= 0 && left >= 0 && top + height <= img.height && left + width <= img.width {
            if height == img.height && width == img.width { return img }
            return img.cropped(left: left, top: top, width: width, height: height)
        }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let sy = y + top
            guard sy >= 0 && sy < img.height else { continue }
            for x in 0..<width {
                let sx = x + left
                guard sx >= 0 && sx < img.width else { continue }
                for ch in 0..<3 { out[(y * width + x) * 3 + ch] = img.pixels[(sy * img.width + sx) * 3 + ch] }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}

/// Python's `a // b` for b > 0.
private func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }

/// Python's `int(round(d / 2.0))` for an integer d >= 0: halves go to the even neighbour.
private func roundHalfEvenHalf(_ d: Int) -> Int {
    if d % 2 == 0 { return d / 2 }
    let k = d / 2  // d / 2 = k + 0.5
    return k % 2 == 0 ? k : k + 1
}
