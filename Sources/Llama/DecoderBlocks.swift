// One decoder layer, forward and backward side by side, shared by inference (KV cache, no record) and
// training (whole sequences, every activation the backward needs kept in a LayerRecord). Attention is
// passed in as a closure because the two differ only in where keys and values live; everything else runs
// the same kernels in the same order, so a training forward with adapters off gives the inference
// forward's bits.
//
// Forward of layer l on T rows (Gemma's extra norms in brackets):
//   h1 = rmsnorm(x0) ; q, k, v = h1 W^T (+ LoRA) ; [q, k = per-head rmsnorm] ; q, k = rope(q, k)
//   att = attention(q, k, v) ; o = att Wo^T (+ LoRA) ; [o = rmsnorm(o)] ; x1 = x0 + o
//   h2 = rmsnorm(x1) ; g, u = h2 W^T (+ LoRA) ; a = act(g) u ; d = a Wd^T (+ LoRA) ; [d = rmsnorm(d)] ; x2 = x1 + d
import Foundation
import Layers
import Tensors

/// Buffers one layer reads and writes, each [rows, width] row-major: x is the residual stream, updated in
/// place; `act` receives act(gate) * up (it may be `gate` itself when the pre-activation is not needed).
struct LayerIO {
    var x, h, q, k, v, att, o, gate, up, act: UnsafeMutablePointer<Float>
}

/// What a training forward keeps of one layer for the backward pass (the layer's q, k, v, att, gate and
/// up live in its LayerIO, which points into the record's storage).
struct LayerRecord {
    var x0, x1: UnsafeMutablePointer<Float>          // (T, H) residual stream before attention / before the MLP
    var rstd1, rstd2: UnsafeMutablePointer<Float>    // (T) inverse RMS of the input / post-attention norms
    var qRaw, kRaw: UnsafeMutablePointer<Float>?     // (T, qDim), (T, kvDim) q, k before their norms (Gemma)
    var qRstd, kRstd: UnsafeMutablePointer<Float>?   // (T * heads), (T * kvHeads)
    var oPre, dPre: UnsafeMutablePointer<Float>?     // (T, H) attention / MLP outputs before their post-norms (Gemma)
    var rstdPostAttn, rstdPostFfn: UnsafeMutablePointer<Float>?  // (T)
    var probs: UnsafeMutablePointer<Float>           // per sequence s: (heads, L_s, L_s) attention weights
    var loraZ: [UnsafeMutablePointer<Float>?]        // per LoRATarget: (T, r) A dropout(x) of the adapted modules
    var weights: PackedWeight?                       // a buffer for expanded weights, shared by all layers
}

extension DecoderModel {
    /// y = x W^T (+ bias) (+ the adapter of `target` in layer l, if any).
    @inline(__always)
    func project(_ target: LoRATarget, _ l: Int, _ lin: Linear, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                 rows: Int, adapters: LoRAState?, dropout: DropoutSettings?, record: LayerRecord?) {
        lin.forward(y, x, rows: rows, expanded: record?.weights)
        if let a = adapters, let s = a.slot(layer: l, target) {
            a.forward(s, y: y, x: x, rows: rows, dropout: dropout, z: record?.loraZ[target.index])
        }
    }

    /// The forward of layer l on T rows at `positions`. `attend(att)` fills att [T, qDim] from io.q/k/v.
    func layerForward(_ l: Int, io: LayerIO, rows T: Int, positions: UnsafePointer<Int>, adapters: LoRAState?,
                      dropout: DropoutSettings?, record: LayerRecord?, attend: (UnsafeMutablePointer<Float>) -> Void) {
        let c = config, w = layers[l]
        let H = c.hiddenSize, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd, I = c.intermediateSize
        let x = io.x, h = io.h, q = io.q, k = io.k, v = io.v, o = io.o
        record?.x0.update(from: x, count: T * H)
        Norms.rmsNorm(h, rstd: record?.rstd1, x, weight: w.attnNorm, rows: T, dim: H, eps: c.rmsEps)
        project(.q, l, w.q, y: q, x: h, rows: T, adapters: adapters, dropout: dropout, record: record)
        project(.k, l, w.k, y: k, x: h, rows: T, adapters: adapters, dropout: dropout, record: record)
        project(.v, l, w.v, y: v, x: h, rows: T, adapters: adapters, dropout: dropout, record: record)
        if let qn = w.qNorm {
            record?.qRaw?.update(from: q, count: T * qDim)
            Norms.rmsNorm(q, rstd: record?.qRstd, q, weight: qn, rows: T * c.heads, dim: hd, eps: c.rmsEps)
        }
        if let kn = w.kNorm {
            record?.kRaw?.update(from: k, count: T * kvDim)
            Norms.rmsNorm(k, rstd: record?.kRstd, k, weight: kn, rows: T * c.kvHeads, dim: hd, eps: c.rmsEps)
        }
        let rope = rope(layer: l)
        rope.apply(q, rows: T, stride: qDim, heads: c.heads, headDim: hd, positions: positions)
        rope.apply(k, rows: T, stride: kvDim, heads: c.kvHeads, headDim: hd, positions: positions)
        attend(io.att)
        project(.o, l, w.o, y: o, x: io.att, rows: T, adapters: adapters, dropout: dropout, record: record)
        if let pn = w.postAttnNorm {
            record?.oPre?.update(from: o, count: T * H)
            Norms.rmsNorm(o, rstd: record?.rstdPostAttn, o, weight: pn, rows: T, dim: H, eps: c.rmsEps)
        }
        Vec.add(x, o, T * H)

        record?.x1.update(from: x, count: T * H)
        Norms.rmsNorm(h, rstd: record?.rstd2, x, weight: w.ffnNorm, rows: T, dim: H, eps: c.rmsEps)
        project(.gate, l, w.gate, y: io.gate, x: h, rows: T, adapters: adapters, dropout: dropout, record: record)
        project(.up, l, w.up, y: io.up, x: h, rows: T, adapters: adapters, dropout: dropout, record: record)
        c.activation.gated(io.act, gate: io.gate, gateStride: I, up: io.up, upStride: I, rows: T, n: I)
        project(.down, l, w.down, y: o, x: io.act, rows: T, adapters: adapters, dropout: dropout, record: record)
        if let pn = w.postFfnNorm {
            record?.dPre?.update(from: o, count: T * H)
            Norms.rmsNorm(o, rstd: record?.rstdPostFfn, o, weight: pn, rows: T, dim: H, eps: c.rmsEps)
        }
        Vec.add(x, o, T * H)
    }

    /// dx = dy W (+ the adapter's part, whose A and B gradients are accumulated); `accumulate` adds to dx.
    /// Without `throughBase` only the adapter's gradients are formed (dx is not wanted).
    @inline(__always)
    func projectBackward(_ target: LoRATarget, _ l: Int, _ lin: Linear, dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
                         x: UnsafePointer<Float>, rows: Int, adapters: LoRAState, dropout: DropoutSettings?,
                         record: LayerRecord, grad: LayerGradients, transposes: [PackedWeight?]?, accumulate: Bool,
                         throughBase: Bool = true) {
        // A kept W^T serves the rows a rebuild would (Linear's rule), so both give the same bits.
        if throughBase {
            let kept = rows >= Linear.transposeRows ? transposes?[target.index] : nil
            lin.inputGradient(dx, dy, rows: rows, accumulate: accumulate, transposed: kept ?? grad.weightT,
                              transposedIsFilled: kept != nil, scratch: grad.sum)
        }
        if let s = adapters.slot(layer: l, target), let z = record.loraZ[target.index] {
            adapters.backward(s, dx: dx, dy: dy, x: x, z: z, rows: rows, dropout: dropout)
        }
    }

    /// Backward of layer l. On entry dx holds dL/dx2 (the layer's output); on return dL/dx0. `io` holds the
    /// forward's saved q, k, v, att, gate, up; `grad` is scratch; `transposes` the layer's kept W^T by
    /// LoRATarget index, if any. `attendBackward(dq, dk, dv, dAtt)` writes
    /// the gradients of the rotated q, k and of v from dAtt. Without `inputGradient` (the first layer: the
    /// embeddings are frozen) dL/dx0 is not formed and dx is left as scratch.
    /// Inputs of adapted modules that the forward did not keep (h1, h2, act(g) u) are recomputed only when
    /// an adapter needs them.
    func layerBackward(_ l: Int, dx: UnsafeMutablePointer<Float>, io: LayerIO, record r: LayerRecord, grad: LayerGradients,
                       transposes: [PackedWeight?]?, rows T: Int, positions: UnsafePointer<Int>, adapters: LoRAState,
                       dropout: DropoutSettings?, inputGradient: Bool = true, attendBackward: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>) -> Void) {
        let c = config, w = layers[l]
        let H = c.hiddenSize, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd, I = c.intermediateSize
        let h = io.h

        // MLP: x2 = x1 + [norm](d), d = a Wd^T, a = act(g) u.
        var dOut = UnsafePointer(dx)
        if let pn = w.postFfnNorm {
            Norms.rmsNormBackward(grad.dO, dx, x: r.dPre!, rstd: r.rstdPostFfn!, weight: pn, rows: T, dim: H)
            dOut = UnsafePointer(grad.dO)
        }
        let adapted = { (t: LoRATarget) in adapters.slot(layer: l, t) != nil }
        if adapted(.down) { c.activation.gated(io.act, gate: io.gate, gateStride: I, up: io.up, upStride: I, rows: T, n: I) }
        projectBackward(.down, l, w.down, dx: grad.dAct, dy: dOut, x: io.act, rows: T, adapters: adapters, dropout: dropout,
                        record: r, grad: grad, transposes: transposes, accumulate: false)
        c.activation.gatedBackward(dGate: grad.dAct, dUp: grad.dUp, dOut: grad.dAct, gate: io.gate, up: io.up, rows: T, n: I)
        if adapted(.gate) || adapted(.up) { Norms.rmsNorm(h, r.x1, weight: w.ffnNorm, rows: T, dim: H, eps: c.rmsEps) }  // h2 again, same bits
        projectBackward(.gate, l, w.gate, dx: grad.dh, dy: grad.dAct, x: h, rows: T, adapters: adapters, dropout: dropout,
                        record: r, grad: grad, transposes: transposes, accumulate: false)
        projectBackward(.up, l, w.up, dx: grad.dh, dy: grad.dUp, x: h, rows: T, adapters: adapters, dropout: dropout,
                        record: r, grad: grad, transposes: transposes, accumulate: true)
        Norms.rmsNormBackward(dx, grad.dh, x: r.x1, rstd: r.rstd2, weight: w.ffnNorm, rows: T, dim: H, accumulate: true)

        // Attention: x1 = x0 + [norm](o), o = att Wo^T.
        var dO = UnsafePointer(dx)
        if let pn = w.postAttnNorm {
            Norms.rmsNormBackward(grad.dO, dx, x: r.oPre!, rstd: r.rstdPostAttn!, weight: pn, rows: T, dim: H)
            dO = UnsafePointer(grad.dO)
        }
        projectBackward(.o, l, w.o, dx: grad.dAtt, dy: dO, x: io.att, rows: T, adapters: adapters, dropout: dropout,
                        record: r, grad: grad, transposes: transposes, accumulate: false)
        attendBackward(grad.dq, grad.dk, grad.dv, grad.dAtt)
        let rope = rope(layer: l)
        rope.apply(grad.dq, rows: T, stride: qDim, heads: c.heads, headDim: hd, positions: positions, inverse: true)
        rope.apply(grad.dk, rows: T, stride: kvDim, heads: c.kvHeads, headDim: hd, positions: positions, inverse: true)
        if let qn = w.qNorm {
            Norms.rmsNormBackward(grad.dq, grad.dq, x: r.qRaw!, rstd: r.qRstd!, weight: qn, rows: T * c.heads, dim: hd)
        }
        if let kn = w.kNorm {
            Norms.rmsNormBackward(grad.dk, grad.dk, x: r.kRaw!, rstd: r.kRstd!, weight: kn, rows: T * c.kvHeads, dim: hd)
        }
        if adapted(.q) || adapted(.k) || adapted(.v) { Norms.rmsNorm(h, r.x0, weight: w.attnNorm, rows: T, dim: H, eps: c.rmsEps) }  // h1 again
        projectBackward(.q, l, w.q, dx: grad.dh, dy: grad.dq, x: h, rows: T, adapters: adapters, dropout: dropout,
                        record: r, grad: grad, transposes: transposes, accumulate: false, throughBase: inputGradient)
        projectBackward(.k, l, w.k, dx: grad.dh, dy: grad.dk, x: h, rows: T, adapters: adapters, dropout: dropout,
                        record: r, grad: grad, transposes: transposes, accumulate: true, throughBase: inputGradient)
        projectBackward(.v, l, w.v, dx: grad.dh, dy: grad.dv, x: h, rows: T, adapters: adapters, dropout: dropout,
                        record: r, grad: grad, transposes: transposes, accumulate: true, throughBase: inputGradient)
        if inputGradient {
            Norms.rmsNormBackward(dx, grad.dh, x: r.x0, rstd: r.rstd1, weight: w.attnNorm, rows: T, dim: H, accumulate: true)
        }
    }
}

/// Scratch of the backward pass, [rows, width] each, shared by all layers.
struct LayerGradients {
    var dh, dO: UnsafeMutablePointer<Float>          // (T, H)
    var dAct, dUp: UnsafeMutablePointer<Float>       // (T, I)
    var dq, dAtt: UnsafeMutablePointer<Float>        // (T, qDim)
    var dk, dv: UnsafeMutablePointer<Float>          // (T, kvDim)
    var sum: UnsafeMutablePointer<Float>             // (T, max(H, qDim, I)) a product to add into its gradient
    var weightT: PackedWeight                        // W^T of the layer being differentiated, rebuilt per use
}
