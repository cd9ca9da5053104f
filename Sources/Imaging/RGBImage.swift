// The one in-memory picture type of the package (8-bit RGB, rows top to bottom, pixels interleaved) and the
// errors image code throws. Every image a user hands us is decoded into this shape, exactly as PIL's
// `Image.open(f).convert("RGB")` would produce it, so that everything downstream can be compared byte for
// byte with the Python reference pipelines.

/// An 8-bit RGB image: `pixels[(y * width + x) * 3 + c]`, c = 0 red, 1 green, 2 blue.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// HWC, RGB, `width * height * 3` bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) bytes do not make a \(width)x\(height) RGB image")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The pixel at (x, y) as (r, g, b).
    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// The sub-image with top-left corner (left, top); the rectangle must lie inside the image.
    public func cropped(left: Int, top: Int, width w: Int, height h: Int) -> RGBImage {
        precondition(left >= 0 && top >= 0 && w > 0 && h > 0 && left + w <= width && top + h <= height,
                     "crop \(w)x\(h)+\(left)+\(top) outside a \(width)x\(height) image")
        var out = [UInt8](repeating: 0, count: w * h * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    let s = ((top + y) * width + left) * 3
                    (dst.baseAddress! + y * w * 3).update(from: src.baseAddress! + s, count: w * 3)
                }
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }
}

/// What went wrong while reading or preparing an image. Every case names the file (or the caller's name for
/// in-memory data) so a user with a folder of thousands of images can find the bad one.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read at all (missing, unreadable, a directory).
    case unreadable(name: String, reason: String)
    /// Neither a JPEG nor a PNG signature (sniffed from the first bytes, not the extension).
    case unknownFormat(name: String, firstBytes: String)
    /// A JPEG or PNG whose data is broken or cut short.
    case corrupt(name: String, format: String, reason: String)
    /// The declared size is larger than we agree to decode (a decompression bomb or a mistake).
    case tooLarge(name: String, width: Int, height: Int, maxPixels: Int)
    /// A valid file in a variant we do not decode (e.g. an unusual JPEG colour space).
    case unsupported(name: String, reason: String)
    /// A preprocessing configuration that cannot be applied.
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case let .unreadable(name, reason):
            return "cannot read image '\(name)': \(reason)"
        case let .unknownFormat(name, firstBytes):
            return "'\(name)' is neither a JPEG nor a PNG (first bytes: \(firstBytes)); convert it to JPEG or PNG"
        case let .corrupt(name, format, reason):
            return "\(format) image '\(name)' is broken or truncated: \(reason); re-download or re-encode the file"
        case let .tooLarge(name, width, height, maxPixels):
            return "image '\(name)' declares \(width)x\(height) pixels, more than the limit of \(maxPixels) "
                + "pixels; downscale it first"
        case let .unsupported(name, reason):
            return "image '\(name)' is not supported: \(reason); re-encode it as an RGB JPEG or PNG"
        case let .invalidConfiguration(reason):
            return "invalid image preprocessing configuration: \(reason)"
        }
    }
}
