// PNG decoding through libpng's simplified `png_image` API (the classic API needs setjmp, which Swift cannot
// use), steered so the bytes equal PIL's `convert("RGB")`. PIL ignores every colour-management chunk,
// drops alpha without compositing, keeps the high byte of 16-bit colour and saturates 16-bit gray; libpng's
// simplified reader would gamma-correct to sRGB, composite when asked for an alpha-less format, round
// 16 -> 8 bits and premultiply 16-bit output. So we strip gAMA/cHRM/sRGB/iCCP before libpng sees the
// file, ask for straight-alpha RGBA and drop the alpha ourselves, and route 16-bit files so that libpng
// returns their samples untouched (see `decode`).
import CPNG
import Foundation

enum PNGDecoder {
    static func decode(_ data: Data, name: String, maxPixels: Int) throws -> RGBImage {
        let header = try readHeader(data, name: name)
        try ImageDecoder.checkSize(width: header.width, height: header.height, name: name, maxPixels: maxPixels)
        let width = header.width, height = header.height, count = width * height

        // 16-bit files: PIL keeps the high byte of colour samples (saturates 16-bit gray to 255), while the
        // simplified API would either round 16 -> 8 or hand back premultiplied linear values. Where a
        // 16-bit layout has an 8-bit twin with the same bytes per pixel (so the same unfiltering), we
        // relabel IHDR and let libpng hand us the raw high and low bytes untouched.
        var rgb = [UInt8](repeating: 0, count: count * 3)
        switch (header.bitDepth, header.colorType) {
        case (16, 0):  // gray16 read as 8-bit gray+alpha: (high, low) bytes
            let raw = try read(rewrite(data, ihdr: (8, 4), dropTransparency: true), name: name, count: count)
            for i in 0..<count {
                // PIL's I;16 -> RGB conversion saturates: anything above 255 becomes white.
                let value = raw[4 * i] == 0 ? raw[4 * i + 3] : 255
                rgb[3 * i] = value; rgb[3 * i + 1] = value; rgb[3 * i + 2] = value
            }
        case (16, 4):  // gray+alpha 16 read as 8-bit RGBA: (gray high, gray low, alpha high, alpha low)
            let raw = try read(rewrite(data, ihdr: (8, 6), dropTransparency: true), name: name, count: count)
            for i in 0..<count {
                let g = raw[4 * i]
                rgb[3 * i] = g; rgb[3 * i + 1] = g; rgb[3 * i + 2] = g
            }
        case (16, 2):  // without a gAMA chunk libpng takes 16-bit data as linear: linear output is raw
            let raw16 = try read16(rewrite(data, ihdr: nil, dropTransparency: true), name: name, alpha: false,
                                   count: count)
            for i in 0..<(count * 3) { rgb[i] = UInt8(truncatingIfNeeded: raw16[i] >> 8) }
        case (16, 6):
            // No 8-bit twin has 8 bytes per pixel, and linear RGBA output is premultiplied: undo it. Exact
            // where alpha is opaque; elsewhere the high byte can be one off (documented limitation).
            let raw16 = try read16(rewrite(data, ihdr: nil, dropTransparency: false), name: name, alpha: true,
                                   count: count)
            for i in 0..<count {
                let a = UInt32(raw16[4 * i + 3])
                for c in 0..<3 {
                    let p = UInt32(raw16[4 * i + c])
                    let straight = a == 0 ? 0 : min(65535, (p * 65535 + a / 2) / a)
                    rgb[3 * i + c] = UInt8(truncatingIfNeeded: straight >> 8)
                }
            }
        default:
            let raw = try read(rewrite(data, ihdr: nil, dropTransparency: false), name: name, count: count)
            for i in 0..<count {
                rgb[3 * i] = raw[4 * i]; rgb[3 * i + 1] = raw[4 * i + 1]; rgb[3 * i + 2] = raw[4 * i + 2]
            }
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    /// Runs libpng's simplified reader asking for 8-bit straight-alpha RGBA (never an alpha-less format:
    /// that would composite onto a background).
    private static func read(_ data: Data, name: String, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count * 4)
        try out.withUnsafeMutableBytes { dst in
            try run(data, name: name, format: png_uint_32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA),
                    count: count, into: dst)
        }
        return out
    }

    /// Runs libpng's simplified reader asking for 16-bit linear RGB or (premultiplied) RGBA.
    private static func read16(_ data: Data, name: String, alpha: Bool, count: Int) throws -> [UInt16] {
        let channels = alpha ? 4 : 3
        var out = [UInt16](repeating: 0, count: count * channels)
        let format = PNG_FORMAT_FLAG_LINEAR | PNG_FORMAT_FLAG_COLOR | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0)
        try out.withUnsafeMutableBytes { dst in
            try run(data, name: name, format: png_uint_32(format), count: count, into: dst)
        }
        return out
    }

    private static func run(_ data: Data, name: String, format: png_uint_32, count: Int,
                            into dst: UnsafeMutableRawBufferPointer) throws {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        let begun = data.withUnsafeBytes { raw in
            png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count)
        }
        defer { png_image_free(&image) }
        if begun == 0 { throw ImageError.corrupt(name: name, format: "PNG", reason: message(of: image)) }
        guard Int(image.width) * Int(image.height) == count else {
            throw ImageError.corrupt(name: name, format: "PNG", reason: "libpng read a different size than IHDR")
        }
        image.format = format
        if png_image_finish_read(&image, nil, dst.baseAddress, 0, nil) == 0 {
            throw ImageError.corrupt(name: name, format: "PNG", reason: message(of: image))
        }
    }

    struct Header { var width: Int; var height: Int; var bitDepth: Int; var colorType: Int }

    /// Reads IHDR ourselves so the size limit is enforced before libpng allocates anything.
    static func readHeader(_ data: Data, name: String) throws -> Header {
        let b = [UInt8](data.prefix(33))
        guard b.count >= 33, b[12..<16].elementsEqual(Array("IHDR".utf8)) else {
            throw ImageError.corrupt(name: name, format: "PNG", reason: "the IHDR header chunk is missing or cut short")
        }
        func be32(_ o: Int) -> Int { Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]) }
        return Header(width: be32(16), height: be32(20), bitDepth: Int(b[24]), colorType: Int(b[25]))
    }

    /// The PNG with its colour-management chunks (and, if asked, tRNS) removed and, if asked, IHDR relabelled
    /// to another (bit depth, colour type). Chunks are otherwise copied verbatim; a chunk that runs past the
    /// end is copied as is so that libpng, not us, reports the truncation.
    static func rewrite(_ data: Data, ihdr: (depth: UInt8, colorType: UInt8)?, dropTransparency: Bool) -> Data {
        let bytes = [UInt8](data)
        var dropped: Set<String> = ["gAMA", "cHRM", "sRGB", "iCCP"]
        if dropTransparency { dropped.insert("tRNS") }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        out.append(contentsOf: bytes[0..<min(8, bytes.count)])
        var offset = 8
        while offset + 8 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16
                | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let end = offset + 12 + length
            guard end <= bytes.count else { break }
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            if type == "IHDR", length == 13, let ihdr {
                var chunk = Array(bytes[offset..<end])
                chunk[16] = ihdr.depth
                chunk[17] = ihdr.colorType
                let crc = crc32(chunk[4..<21])
                for i in 0..<4 { chunk[21 + i] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32(i))) }
                out.append(contentsOf: chunk)
            } else if !dropped.contains(type) {
                out.append(contentsOf: bytes[offset..<end])
            }
            offset = end
        }
        out.append(contentsOf: bytes[min(offset, bytes.count)...])
        return Data(out)
    }

    /// The PNG chunk CRC (ISO 3309, reflected polynomial 0xEDB88320).
    static func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    private static func message(of image: png_image) -> String {
        var copy = image.message
        let text = withUnsafeBytes(of: &copy) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "libpng gave no reason" : text
    }
}
