// W^T in Float panels, rebuilt from a layer's forward panels when a backward pass needs dX = dY W: with
// W^T laid out for PackedGEMM, the product runs on the forward's best kernel (outputs along the lanes, no
// horizontal sums) instead of a reduction across the lanes. Rebuilding costs one pass over the weights
// (a 16 x 16 transpose per panel block) and is worth it from a few dozen rows on; the buffer is reused,
// so a training step allocates nothing per layer.

extension PackedWeight {
    /// Fills self with the Int8 panels' weights as Float panels (the same values, so PackedGEMM on them
    /// gives QuantPanelGEMM's bits), for batches large enough that one expansion pays for itself.
    public func fillExpanded(of w: QuantPanelWeight) {
        reshape(n: w.n, k: w.k)
        let k = w.k, groups = w.groups, src = w.data, dst = data
        parallelChunks(w.panels, minPerChunk: 4) { range in
            for p in range { QuantPanelGEMM.expand(dst + p * 16 * k, src + p * groups * QuantPanelWeight.groupBytes, groups: groups) }
        }
    }

    /// Fills self with W^T [k, n] of the Int8 panels W [n, k]: panel g of W^T holds columns 16g ..< 16g + 16
    /// of W as [n][16], each weight rebuilt exactly as the forward rebuilds it.
    public func fillTransposed(of w: QuantPanelWeight) {
        reshape(n: w.k, k: w.n)
        let n = w.n, groups = w.groups, src = w.data, dst = data
        parallelChunks(groups, minPerChunk: 4) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { buf in
                let e = buf.baseAddress!
                for g in range {
                    for p in 0..<w.panels {
                        QuantPanelGEMM.expand(e, src + (p * groups + g) * QuantPanelWeight.groupBytes, groups: 1)
                        transposeBlock(dst + g * 16 * n, e, rowBase: 16 * p, rows: min(16, n - 16 * p))
                    }
                }
            }
        }
    }

    /// Fills self with W^T [k, n] of the Float panels W [n, k] (k a multiple of 16).
    public func fillTransposed(of w: PackedWeight) {
        precondition(w.k % 16 == 0, "transposed panels need k divisible by 16")
        reshape(n: w.k, k: w.n)
        let n = w.n, k = w.k, src = w.data, dst = data
        parallelChunks(k / 16, minPerChunk: 4) { range in
            for g in range {
                for p in 0..<w.panels {
                    transposeBlock(dst + g * 16 * n, src + p * 16 * k + g * 256, rowBase: 16 * p, rows: min(16, n - 16 * p))
                }
            }
        }
    }
}

/// e [16 j][16 lane] holds W[rowBase + lane, 16g + j]; writes out[(rowBase + lane) * 16 + j] for lane < rows.
@inline(__always)
private func transposeBlock(_ out: UnsafeMutablePointer<Float>, _ e: UnsafePointer<Float>, rowBase: Int, rows: Int) {
    for lane in 0..<rows {
        let o = out + (rowBase + lane) * 16
        for j in 0..<16 { o[j] = e[j * 16 + lane] }
    }
}
