// SigLIP 2's NaFlex inputs (transformers' Siglip2Model, model_type "siglip2"): each image keeps its aspect ratio.
// Siglip2ImageProcessor scales it so that a whole number of p x p patches, at most max_num_patches of them,
// covers it (its binary search over the scale, sizes rounded up to whole patches), resizes with PIL, rescales,
// normalises, and cuts the patches in (row, column) order, each flattened as (y, x, channel). The vision tower then
// adds the learned g x g position grid resized to the image's patch grid with torch's antialiased bilinear
// interpolation (F.interpolate(..., mode="bilinear", align_corners=False, antialias=True)). transformers pads
// the patches to max_num_patches and masks the padding out of every attention; here each image simply runs with
// its own patches, which is the same computation.
import Foundation
import Imaging

/// Siglip2ImageProcessor's settings (preprocessor_config.json) and the position grid of the vision tower.
public struct NaFlexConfig: Sendable, Equatable {
    public var patchSize: Int
    public var maxPatches: Int
    /// sqrt(vision_config.num_patches): the side of the learned position grid.
    public var positionGrid: Int
    public var resample: ResampleFilter = .bilinear
    public var doRescale = true, doNormalize = true
    public var rescaleFactor: Double = 1.0 / 255.0
    public var mean: [Float] = [0.5, 0.5, 0.5], std: [Float] = [0.5, 0.5, 0.5]

    /// get_image_size_for_max_num_patches (eps 1e-5): the largest patch-aligned size within the patch budget.
    public func targetSize(height h: Int, width w: Int) -> (height: Int, width: Int) {
        let p = Double(patchSize)
        func scaled(_ scale: Double, _ size: Int) -> Int { Int(max(p, (Double(size) * scale / p).rounded(.up) * p)) }
        let eps = 1e-5
        var lo = eps / 10, hi = 100.0
        while hi - lo >= eps {
            let scale = (lo + hi) / 2
            let patches = Double(scaled(scale, h)) / p * (Double(scaled(scale, w)) / p)
            if patches <= Double(maxPatches) { lo = scale } else { hi = scale }
        }
        return (scaled(lo, h), scaled(lo, w))
    }

    /// [patch rows, patch columns, then the patches: rows * columns of p * p * 3 floats, (y, x, channel) order].
    public func preprocess(_ image: RGBImage) -> [Float] {
        let (th, tw) = targetSize(height: image.height, width: image.width)
        let img = (th == image.height && tw == image.width) ? image : image.resized(width: tw, height: th, filter: resample)
        let p = patchSize, gh = th / p, gw = tw / p
        var out = [Float](repeating: 0, count: 2 + gh * gw * p * p * 3)
        out[0] = Float(gh); out[1] = Float(gw)
        var lut = [[Float]](repeating: [Float](repeating: 0, count: 256), count: 3)
        for c in 0..<3 { for v in 0..<256 {
            // transformers: rescale in float64, cast to float32, then (x - mean) / std in float32.
            var x = doRescale ? Float(Double(v) * rescaleFactor) : Float(v)
            if doNormalize { x = (x - mean[c]) / std[c] }
            lut[c][v] = x
        } }
        img.pixels.withUnsafeBufferPointer { px in
            var o = 2
            for py in 0..<gh { for px0 in 0..<gw { for y in 0..<p { for x in 0..<p {
                let i = ((py * p + y) * tw + px0 * p + x) * 3
                out[o] = lut[0][Int(px[i])]; out[o + 1] = lut[1][Int(px[i + 1])]; out[o + 2] = lut[2][Int(px[i + 2])]
                o += 3
            } } } }
        }
        return out
    }

    /// The g x g grid of position embeddings ([g * g, W], row-major) resized to h x w ([h * w, W]) as torch's
    /// antialiased bilinear interpolation does: the width first, then the height, each a normalised triangle
    /// filter widened by the scale when shrinking.
    static func resizePositions(_ grid: [Float], side g: Int, width e: Int, to h: Int, _ w: Int) -> [Float] {
        func taps(_ input: Int, _ output: Int) -> [(start: Int, weights: [Float])] {
            let scale = Float(input) / Float(output)
            let support: Float = scale >= 1 ? scale : 1, invScale: Float = scale >= 1 ? 1 / scale : 1
            return (0..<output).map { i in
                let center = scale * (Float(i) + 0.5)
                let lo = max(Int(center - support + 0.5), 0), hi = min(Int(center + support + 0.5), input)
                var ws = (lo..<hi).map { j -> Float in max(0, 1 - abs((Float(j) - center + 0.5) * invScale)) }
                let total = ws.reduce(0, +)
                if total != 0 { ws = ws.map { $0 / total } }
                return (lo, ws)
            }
        }
        let across = taps(g, w), down = taps(g, h)
        var rows = [Float](repeating: 0, count: g * w * e)     // [g, w, W]
        for y in 0..<g { for (x, t) in across.enumerated() {
            for (k, wt) in t.weights.enumerated() {
                let src = (y * g + t.start + k) * e, dst = (y * w + x) * e
                for i in 0..<e { rows[dst + i] += wt * grid[src + i] }
            }
        } }
        var out = [Float](repeating: 0, count: h * w * e)
        for (y, t) in down.enumerated() { for x in 0..<w {
            for (k, wt) in t.weights.enumerated() {
                let src = ((t.start + k) * w + x) * e, dst = (y * w + x) * e
                for i in 0..<e { out[dst + i] += wt * rows[src + i] }
            }
        } }
        return out
    }

    /// Reads Siglip2ImageProcessor's preprocessor_config.json (absent keys keep its defaults).
    static func read(_ url: URL, positionGrid: Int) throws -> NaFlexConfig {
        var c = NaFlexConfig(patchSize: 16, maxPatches: 256, positionGrid: positionGrid)
        guard FileManager.default.fileExists(atPath: url.path) else { return c }
        func bad(_ d: String) -> CLIPError { CLIPError.badConfig(file: url.path, detail: d) }
        guard let data = try? Data(contentsOf: url), let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw bad("not a JSON object")
        }
        if let v = o["patch_size"] as? Int { c.patchSize = v }
        if let v = o["max_num_patches"] as? Int { c.maxPatches = v }
        if let v = o["resample"] as? Int {
            guard let f = ResampleFilter(rawValue: v) else { throw bad("resample \(v) is not a PIL filter code") }
            c.resample = f
        }
        if let v = o["do_resize"] as? Bool, !v { throw bad("do_resize false (images must then already be whole patches; not implemented)") }
        if let v = o["do_rescale"] as? Bool { c.doRescale = v }
        if let v = o["rescale_factor"] as? Double { c.rescaleFactor = v }
        if let v = o["do_normalize"] as? Bool { c.doNormalize = v }
        if let v = o["image_mean"] as? [Double] { c.mean = v.map(Float.init) }
        if let v = o["image_std"] as? [Double] { c.std = v.map(Float.init) }
        guard c.patchSize > 0, c.maxPatches > 0, c.mean.count == 3, c.std.count == 3, c.std.allSatisfy({ $0 != 0 }) else {
            throw bad("patch_size \(c.patchSize), max_num_patches \(c.maxPatches), image_mean \(c.mean), image_std \(c.std)")
        }
        return c
    }
}
