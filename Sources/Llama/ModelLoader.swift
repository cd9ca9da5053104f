// Builds a DecoderModel from a GGUF file (weights stay in their ggml blocks, with an optional dense copy)
// or from an HF checkpoint (safetensors). Checkpoint key names live here and only here; loading is
// strict: a missing tensor, a wrong shape or a tensor nobody uses is a WeightError naming it.
import Foundation
import Layers
import ModelFiles
import Tensors

public struct LoadOptions: Sendable {
    /// Keep a dense Float copy of quantized weights for fast large-batch GEMMs. nil = decide by size
    /// (kept for models under ~2 B parameters).
    public var keepDense: Bool?
    public init(keepDense: Bool? = nil) { self.keepDense = keepDense }
}

extension DecoderModel {
    // MARK: GGUF

    public static func load(gguf: GGUFFile, options: LoadOptions = LoadOptions()) throws -> DecoderModel {
        let c = try DecoderConfig(gguf: gguf)
        let file = gguf.url.path
        var used = Set<String>()
        let params = gguf.tensors.reduce(0) { $0 + $1.elementCount }
        let keepDense = options.keepDense ?? (params < 2_000_000_000)

        func info(_ name: String, _ shape: [Int]) throws -> GGUFTensorInfo {
            guard let t = gguf.tensor(name) else { throw WeightError(file: file, tensor: name, message: "missing from the file") }
            guard t.shape == shape else {
                throw WeightError(file: file, tensor: name, message: "has shape \(t.shape), expected \(shape)")
            }
            guard t.type.canDequantize else {
                throw WeightError(file: file, tensor: name, message: "ggml type \(t.type.name) is not supported")
            }
            used.insert(name)
            return t
        }
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            _ = try info(name, [n])
            return try gguf.floats(name)
        }
        /// A weight [out, in]; `permuteHeads` undoes llama.cpp's q/k row permutation (interleaved RoPE
        /// pairs back to HF's rotate-half order) by copying rows into a buffer of our own.
        func linear(_ name: String, out: Int, in n: Int, permuteHeads: Int? = nil, bias: String? = nil) throws -> Linear {
            let t = try info(name, [out, n])
            let rowBytes = t.type.rowByteCount(n)
            var b: [Float]? = nil
            if let bias, gguf.tensor(bias) != nil { b = try vector(bias, out) }
            var order: [Int]? = nil
            if let heads = permuteHeads {
                let d = out / heads, half = d / 2
                var o = [Int](repeating: 0, count: out)
                for h in 0..<heads { for s in 0..<2 { for i in 0..<half { o[h * d + s * half + i] = h * d + 2 * i + s } } }
                order = o
                if let bb = b { b = o.map { bb[$0] } }
            }
            let rows: QuantizedRows = gguf.withData(t) { raw in
                if let order {
                    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: out * rowBytes, alignment: 64)
                    for (dst, src) in order.enumerated() {
                        (copy.baseAddress! + dst * rowBytes).copyMemory(from: raw.baseAddress! + src * rowBytes, byteCount: rowBytes)
                    }
                    let owner = RawBufferOwner(copy)
                    return QuantizedRows(type: t.type, base: UnsafeRawPointer(copy.baseAddress!), rowBytes: rowBytes, owner: owner)
                }
                return QuantizedRows(type: t.type, base: raw.baseAddress!, rowBytes: rowBytes, owner: gguf)
            }
            return Linear(quantized: rows, out: out, in: n, keepDense: keepDense, bias: b)
        }

        let H = c.hiddenSize, hd = c.headDim, I = c.intermediateSize
        let permute = c.architecture == .llama
        let embedding = try linear("token_embd.weight", out: c.vocabSize, in: H)
        var layers: [DecoderLayerWeights] = []
        for l in 0..<c.layers {
            let p = "blk.\(l)."
            let gemma = c.isGemma
            layers.append(DecoderLayerWeights(
                attnNorm: try vector(p + "attn_norm.weight", H),
                q: try linear(p + "attn_q.weight", out: c.heads * hd, in: H, permuteHeads: permute ? c.heads : nil, bias: p + "attn_q.bias"),
                k: try linear(p + "attn_k.weight", out: c.kvHeads * hd, in: H, permuteHeads: permute ? c.kvHeads : nil, bias: p + "attn_k.bias"),
                v: try linear(p + "attn_v.weight", out: c.kvHeads * hd, in: H, bias: p + "attn_v.bias"),
                o: try linear(p + "attn_output.weight", out: H, in: c.heads * hd),
                qNorm: gemma ? try vector(p + "attn_q_norm.weight", hd) : nil,
                kNorm: gemma ? try vector(p + "attn_k_norm.weight", hd) : nil,
                postAttnNorm: gemma ? try vector(p + "post_attention_norm.weight", H) : nil,
                ffnNorm: try vector(p + "ffn_norm.weight", H),
                gate: try linear(p + "ffn_gate.weight", out: I, in: H),
                up: try linear(p + "ffn_up.weight", out: I, in: H),
                down: try linear(p + "ffn_down.weight", out: H, in: I),
                postFfnNorm: gemma ? try vector(p + "post_ffw_norm.weight", H) : nil))
        }
        let finalNorm = try vector("output_norm.weight", H)
        let output = c.tieEmbeddings ? nil : try linear("output.weight", out: c.vocabSize, in: H)
        // rope_freqs (Llama 3 frequency scaling) and anything else we did not consume would change the math.
        let unused = gguf.tensors.map(\.name).filter { !used.contains($0) }
        if let first = unused.first {
            throw WeightError(file: file, tensor: first, message: "is not used by the \(c.architecture.rawValue) engine (\(unused.count) unused tensors); this model variant is not supported")
        }
        return DecoderModel(config: c, embedding: embedding, layers: layers, finalNorm: finalNorm, output: output)
    }
}

/// Owns a raw buffer that QuantizedRows point into.
final class RawBufferOwner: @unchecked Sendable {  // reason: the buffer is written once at load, then read-only
    let buffer: UnsafeMutableRawBufferPointer
    init(_ b: UnsafeMutableRawBufferPointer) { buffer = b }
    deinit { buffer.deallocate() }
}
