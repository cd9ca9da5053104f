// Embedding lookup: copy one table row per token id. Ids are checked by the caller (the model knows its
// vocabulary); here an out-of-range id is a programming error.

public enum Embedding {
    /// out[t, :] = table[ids[t], :] * scale
    public static func lookup(_ out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, ids: [Int],
                              dim: Int, scale: Float = 1) {
        for (t, id) in ids.enumerated() {
            (out + t * dim).update(from: table + id * dim, count: dim)
            if scale != 1 { Vec.scale(out + t * dim, scale, dim) }
        }
    }
}
