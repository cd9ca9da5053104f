// JPEG decoding through libjpeg-turbo's TurboJPEG 2 API, matching what PIL (itself built on libjpeg-turbo)
// returns: accurate integer IDCT and fancy chroma upsampling (TurboJPEG's defaults, PIL's too), grayscale
// replicated into R, G and B, and CMYK converted with PIL's own formula rather than libjpeg's.
import CTurboJPEG
import Foundation

enum JPEGDecoder {
    static func decode(_ data: Data, name: String, maxPixels: Int) throws -> RGBImage {
        guard let handle = tjInitDecompress() else {
            throw ImageError.unsupported(name: name, reason: "libjpeg-turbo could not start a decoder")
        }
        defer { tjDestroy(handle) }

        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> RGBImage in
            let src = raw.bindMemory(to: UInt8.self).baseAddress!
            let size = UInt(raw.count)
            var w: Int32 = 0, h: Int32 = 0, subsamp: Int32 = 0, colorspace: Int32 = 0
            if tjDecompressHeader3(handle, src, size, &w, &h, &subsamp, &colorspace) != 0 {
                throw ImageError.corrupt(name: name, format: "JPEG", reason: errorText(handle))
            }
            let width = Int(w), height = Int(h)
            try ImageDecoder.checkSize(width: width, height: height, name: name, maxPixels: maxPixels)

            let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
            let channels = isCMYK ? 4 : 3
            let format = isCMYK ? TJPF_CMYK : TJPF_RGB
            var buffer = [UInt8](repeating: 0, count: width * height * channels)
            let rc = buffer.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src, size, dst.baseAddress, w, 0, h, Int32(format.rawValue), 0)
            }
            if rc != 0 {
                // TurboJPEG reports libjpeg warnings as failures too. PIL shrugs off most warnings
                // (extraneous bytes, bad restart markers) but refuses a file that ends early, so do the same.
                let message = errorText(handle)
                let fatal = tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue)
                if fatal || message.contains("Premature end") {
                    throw ImageError.corrupt(name: name, format: "JPEG", reason: message)
                }
            }
            if isCMYK { buffer = cmykToRGB(buffer) }
            return RGBImage(width: width, height: height, pixels: buffer)
        }
    }

    /// PIL decodes CMYK JPEGs as Adobe-inverted ("CMYK;I": c = 255 - stored byte), then converts to RGB with
    /// `nk = 255 - k; out = nk - round(c * nk / 255)`, its fast divide-by-255 included. libjpeg hands us the
    /// stored bytes, so with s = stored values: nk = s_k, c = 255 - s_c.
    static func cmykToRGB(_ cmyk: [UInt8]) -> [UInt8] {
        let n = cmyk.count / 4
        var rgb = [UInt8](repeating: 0, count: n * 3)
        @inline(__always) func mulDiv255(_ a: Int, _ b: Int) -> Int {
            let t = a * b + 128
            return ((t >> 8) + t) >> 8
        }
        for i in 0..<n {
            let nk = Int(cmyk[4 * i + 3])
            for c in 0..<3 {
                let value = 255 - Int(cmyk[4 * i + c])
                rgb[3 * i + c] = UInt8(clamping: nk - mulDiv255(value, nk))
            }
        }
        return rgb
    }

    private static func errorText(_ handle: tjhandle) -> String {
        guard let cString = tjGetErrorStr2(handle) else { return "unknown libjpeg-turbo error" }
        return String(cString: cString)
    }
}
