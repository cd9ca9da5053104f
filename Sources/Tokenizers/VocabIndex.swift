// Text -> token id lookup keyed by raw UTF-8 bytes. A 262k-entry vocabulary (Gemma 3) must index
// in a few milliseconds, and the SentencePiece merger looks up byte spans of the input millions of
// times; an open-addressing table over one flat byte buffer does both without creating a String
// per lookup.

struct VocabIndex: Sendable {
    private var bytes: [UInt8] = []
    private var offsets: [Int32] = [0]  // piece i is bytes[offsets[i] ..< offsets[i+1]]
    private var slots: [Int32]          // token id + 1, 0 = empty
    private let mask: Int

    /// A text listed twice maps to its last id, as llama.cpp's token_to_id map does.
    init(pieces: [String]) {
        var cap = 16
        while cap < pieces.count * 2 { cap <<= 1 }
        slots = [Int32](repeating: 0, count: cap)
        mask = cap - 1
        bytes.reserveCapacity(pieces.count * 8)
        offsets.reserveCapacity(pieces.count + 1)
        for p in pieces {
            bytes.append(contentsOf: p.utf8)
            offsets.append(Int32(bytes.count))
        }
        for id in 0..<pieces.count { insert(id) }
    }

    private mutating func insert(_ id: Int) {
        let start = Int(offsets[id]), end = Int(offsets[id + 1])
        let h = bytes.withUnsafeBufferPointer { Self.hash(UnsafeBufferPointer(rebasing: $0[start..<end])) }
        var slot = h & mask
        while slots[slot] != 0 {
            if equal(Int(slots[slot]) - 1, start, end) { slots[slot] = Int32(id + 1); return }
            slot = (slot + 1) & mask
        }
        slots[slot] = Int32(id + 1)
    }

    private func equal(_ other: Int, _ start: Int, _ end: Int) -> Bool {
        let os = Int(offsets[other]), oe = Int(offsets[other + 1])
        guard oe - os == end - start else { return false }
        for k in 0..<(end - start) where bytes[os + k] != bytes[start + k] { return false }
        return true
    }

    @inline(__always)
    static func hash(_ p: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    func id(bytes key: UnsafeBufferPointer<UInt8>) -> Int32? {
        var slot = Self.hash(key) & mask
        return bytes.withUnsafeBufferPointer { all in
            while true {
                let v = slots[slot]
                if v == 0 { return nil }
                let id = Int(v) - 1
                let os = Int(offsets[id]), oe = Int(offsets[id + 1])
                if oe - os == key.count {
                    var same = true
                    for k in 0..<key.count where all[os + k] != key[k] { same = false; break }
                    if same { return Int32(id) }
                }
                slot = (slot + 1) & mask
            }
        }
    }

    func id(_ s: String) -> Int32? {
        var s = s
        return s.withUTF8 { id(bytes: $0) }
    }

    func id(_ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBufferPointer { id(bytes: $0) }
    }
}
