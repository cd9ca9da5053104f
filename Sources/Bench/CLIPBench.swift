// `ex2-bench clip`: CLIP embedding speed at ViT-B/32's shape, measured the way scripts/bench/torch_clip.py
// measures transformers' CLIPModel: images/s on batches of 32 preprocessed images, texts/s on batches of
// 100 texts of 40 tokens, and the same for 8-token texts to show what padding would cost (PyTorch pads
// every text of a batch to the context; our text tower runs each text only to its end token). The weights
// are random (speed does not depend on their values): EX2_CLIP_B32 names a checkpoint directory to use,
// otherwise one is written to a temporary directory, from RandomStream, and removed afterwards.
import CLIP
import Foundation
import ModelFiles
import Tensors

func benchCLIP() throws {
    let batch = arg("--batch", 32), textBatch = arg("--text-batch", 100), runs = arg("--runs", 5)
    var temporary: URL?
    let dir: URL
    if let d = ProcessInfo.processInfo.environment["EX2_CLIP_B32"], !d.isEmpty {
        dir = URL(fileURLWithPath: d)
    } else {
        let t = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-bench-clip-\(getpid())")
        try writeRandomB32(to: t)
        temporary = t
        dir = t
    }
    defer { if let temporary { try? FileManager.default.removeItem(at: temporary) } }
    let t0 = now()
    let model = try CLIPModel.load(spec: dir.path)
    let load = now() - t0
    BLAS.setThreads(Parallel.cores)
    let s = model.architecture.vision.imageSize
    var rng = RandomStream(seed: 11)
    let pixels = (0..<batch).map { _ in (0..<(3 * s * s)).map { _ in rng.nextGaussian() } }
    _ = try model.embedPreprocessed(Array(pixels.prefix(2)))
    var best = Double.infinity
    for _ in 0..<runs {
        let t = now()
        _ = try model.embedPreprocessed(pixels)
        best = min(best, now() - t)
    }
    print(String(format: "clip images batch=%d load=%.2fs best=%.3fs images/s=%.2f", batch, load, best, Double(batch) / best))

    let vocab = model.architecture.text.vocabSize, eos = vocab - 1, bos = vocab - 2
    for length in [40, 8] {
        // BOS, ordinary word pieces, EOS: the highest id last, so argmax pooling (legacy configs) finds it too.
        let ids = (0..<textBatch).map { _ in [bos] + (0..<(length - 2)).map { _ in 300 + Int(rng.next() % 40000) } + [eos] }
        _ = try model.embedTokens(Array(ids.prefix(2)))
        var bestText = Double.infinity
        for _ in 0..<runs {
            let t = now()
            _ = try model.embedTokens(ids)
            bestText = min(bestText, now() - t)
        }
        print(String(format: "clip texts length=%d batch=%d best=%.3fs texts/s=%.1f", length, textBatch, bestText, Double(textBatch) / bestText))
    }
}

/// An HF CLIPModel checkpoint of ViT-B/32's shape (openai/clip-vit-base-patch32) with N(0, 0.02) weights,
/// unit LayerNorm gains and zero biases, so activations stay in the normal float range (no denormals).
func writeRandomB32(to dir: URL) throws {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let config = """
        {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 512, "logit_scale_init_value": 2.6592,
         "text_config": {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
           "num_attention_heads": 8, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05,
           "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 1, "projection_dim": 512},
         "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
           "image_size": 224, "patch_size": 32, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05, "projection_dim": 512}}
        """
    try Data(config.utf8).write(to: dir.appendingPathComponent("config.json"))
    var rng = RandomStream(seed: 32)
    var tensors: [(name: String, dtype: DType, shape: [Int], data: Data)] = []
    func add(_ name: String, _ shape: [Int], fill: Float? = nil) {
        let n = shape.reduce(1, *)
        var values = [Float](repeating: fill ?? 0, count: n)
        if fill == nil { for i in 0..<n { values[i] = 0.02 * rng.nextGaussian() } }
        tensors.append((name, .f32, shape, values.withUnsafeBytes { Data($0) }))
    }
    func norm(_ p: String, _ w: Int) { add(p + ".weight", [w], fill: 1); add(p + ".bias", [w], fill: 0) }
    func linear(_ p: String, _ out: Int, _ k: Int, bias: Bool = true) {
        add(p + ".weight", [out, k])
        if bias { add(p + ".bias", [out], fill: 0) }
    }
    func layers(_ p: String, count: Int, width w: Int, mlp: Int) {
        for i in 0..<count {
            let l = "\(p).encoder.layers.\(i)"
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] { linear("\(l).self_attn.\(proj)", w, w) }
            norm("\(l).layer_norm1", w); norm("\(l).layer_norm2", w)
            linear("\(l).mlp.fc1", mlp, w); linear("\(l).mlp.fc2", w, mlp)
        }
    }
    add("text_model.embeddings.token_embedding.weight", [49408, 512])
    add("text_model.embeddings.position_embedding.weight", [77, 512])
    layers("text_model", count: 12, width: 512, mlp: 2048)
    norm("text_model.final_layer_norm", 512)
    add("vision_model.embeddings.patch_embedding.weight", [768, 3, 32, 32])
    add("vision_model.embeddings.class_embedding", [768])
    add("vision_model.embeddings.position_embedding.weight", [50, 768])
    norm("vision_model.pre_layrnorm", 768)
    layers("vision_model", count: 12, width: 768, mlp: 3072)
    norm("vision_model.post_layernorm", 768)
    linear("visual_projection", 512, 768, bias: false)
    linear("text_projection", 512, 512, bias: false)
    add("logit_scale", [], fill: 2.6592)
    try writeSafetensors(to: dir.appendingPathComponent("model.safetensors"), tensors: tensors, metadata: ["format": "pt"])
}
