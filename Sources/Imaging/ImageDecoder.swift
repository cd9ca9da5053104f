// Turns the bytes of an image file into an `RGBImage` with the same bytes PIL's
// `Image.open(f).convert("RGB")` gives. The format is sniffed from the magic bytes (JPEG: FF D8 FF, PNG: the
// 8-byte signature), never from the extension, because datasets mislabel files. The declared size is checked
// before any pixel buffer is allocated, so a hostile header cannot make us allocate gigabytes.
import Foundation

public enum ImageDecoder {
    /// PIL refuses images above twice its `MAX_IMAGE_PIXELS` (89,478,485) as decompression bombs; we use the
    /// same bound so that whatever PIL would open, we open too.
    public static let defaultMaxPixels = 2 * 89_478_485

    /// Decodes a JPEG or PNG file. Errors name the file.
    public static func decode(contentsOf url: URL, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ImageError.unreadable(name: url.path, reason: error.localizedDescription)
        }
        return try decode(data: data, name: url.path, maxPixels: maxPixels)
    }

    /// Decodes JPEG or PNG bytes; `name` is used in error messages (typically the path they came from).
    public static func decode(data: Data, name: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        let kind = ImageFormat.sniff(data)
        switch kind {
        case .jpeg: return try JPEGDecoder.decode(data, name: name, maxPixels: maxPixels)
        case .png: return try PNGDecoder.decode(data, name: name, maxPixels: maxPixels)
        case .gif: throw ImageError.unsupported(name: name, reason: "GIF images are not decoded")
        case .webp: throw ImageError.unsupported(name: name, reason: "WebP images are not decoded")
        case .unknown:
            if data.isEmpty { throw ImageError.unreadable(name: name, reason: "the file is empty") }
            let head = data.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw ImageError.unknownFormat(name: name, firstBytes: head)
        }
    }

    static func checkSize(width: Int, height: Int, name: String, maxPixels: Int) throws {
        // Multiplication cannot overflow: both sides come from 32-bit header fields.
        guard width > 0, height > 0, width * height <= maxPixels else {
            throw ImageError.tooLarge(name: name, width: width, height: height, maxPixels: maxPixels)
        }
    }
}

/// Container formats recognised by their leading bytes.
enum ImageFormat: Equatable {
    case jpeg, png, gif, webp, unknown

    static func sniff(_ data: Data) -> ImageFormat {
        let b = [UInt8](data.prefix(12))
        if b.count >= 3, b[0] == 0xFF, b[1] == 0xD8, b[2] == 0xFF { return .jpeg }
        if b.count >= 8, b[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if b.count >= 6, b[0..<4].elementsEqual(Array("GIF8".utf8)) { return .gif }
        if b.count >= 12, b[0..<4].elementsEqual(Array("RIFF".utf8)), b[8..<12].elementsEqual(Array("WEBP".utf8)) {
            return .webp
        }
        return .unknown
    }
}
