// `ex2-bench vlm DIR`: embedding speed of any VLM directory ex2 loads (ALIGN, SigLIP, CLIP), measured the way
// scripts/bench/torch_vlm.py measures transformers on the same directory: images/s on --batch random
// preprocessed images, texts/s on --text-batch texts of --length tokens (ours run each text to its end where
// the family allows, transformers pads as its processor does). scripts/bench/torch_vlm.py --write DIR KIND
// writes random checkpoints of the real shapes (align-base, siglip-base-patch16-224).
import CLIP
import Foundation
import Imaging
import Tensors

func benchVLM(_ path: String) throws {
    let batch = arg("--batch", 8), textBatch = arg("--text-batch", 64), runs = arg("--runs", 3), length = arg("--length", 24)
    let t0 = now()
    let model = try VLMLoader.load(spec: path)
    let load = now() - t0
    BLAS.setThreads(Parallel.cores)
    let probe = model.preprocess(RGBImage(width: 640, height: 480, pixels: [UInt8](repeating: 128, count: 640 * 480 * 3)))
    var rng = RandomStream(seed: 11)
    let pixels = (0..<batch).map { _ in (0..<probe.count).map { _ in rng.nextGaussian() } }
    _ = try model.embedPreprocessed(Array(pixels.prefix(1)))
    var best = Double.infinity
    for _ in 0..<runs {
        let t = now()
        _ = try model.embedPreprocessed(pixels)
        best = min(best, now() - t)
    }
    print(String(format: "vlm images %@ batch=%d load=%.2fs best=%.3fs images/s=%.2f", model.summary, batch, load, best, Double(batch) / best))
    let ids: [[Int]]
    switch model {
    case let m as ALIGNModel:
        ids = (0..<textBatch).map { _ in [101] + (0..<(length - 2)).map { _ in 2000 + Int(rng.next() % 20000) } + [102] }
        try timeTexts { _ = try m.embedTokens(ids) }
    case let m as SigLIPModel:
        ids = (0..<textBatch).map { _ in (0..<(length - 1)).map { _ in 300 + Int(rng.next() % 20000) } + [1] }
        try timeTexts { _ = try m.embedTokens(ids) }
    case let m as CLIPModel:
        let v = m.architecture.text.vocabSize
        ids = (0..<textBatch).map { _ in [v - 2] + (0..<(length - 2)).map { _ in 300 + Int(rng.next() % 40000) } + [v - 1] }
        try timeTexts { _ = try m.embedTokens(ids) }
    default:
        print("vlm texts: no token-level entry point for \(type(of: model))")
    }
    func timeTexts(_ body: () throws -> Void) throws {
        try body()
        var bestText = Double.infinity
        for _ in 0..<runs {
            let t = now()
            try body()
            bestText = min(bestText, now() - t)
        }
        print(String(format: "vlm texts length=%d batch=%d best=%.3fs texts/s=%.1f", length, textBatch, bestText, Double(textBatch) / bestText))
    }
}
