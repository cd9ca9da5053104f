// The two BPE merge loops. `RankedMerges` is Hugging Face / GPT-2 BPE: adjacent symbol pairs merge
// in the order of the merges list (lowest rank first, leftmost first among equals).
// `SentencePieceMerger` is llama.cpp's SentencePiece BPE: any adjacent pair whose concatenated
// text is a vocabulary entry may merge, highest score first; characters left unmerged and not in
// the vocabulary fall back to <0xXX> byte tokens. Both use a heap with lazy invalidation, so a long
// unsplit input (SentencePiece sees a whole line as one word) costs O(n log n), not O(n^2).

/// A binary min-heap ordered by (key, position); `key` is rank for BPE, -score for SentencePiece.
struct PairHeap {
    struct Entry { var key: Float; var pos: Int32; var right: Int32; var size: Int32 }
    private(set) var items: [Entry] = []

    @inline(__always) private static func less(_ a: Entry, _ b: Entry) -> Bool {
        a.key < b.key || (a.key == b.key && a.pos < b.pos)
    }

    var isEmpty: Bool { items.isEmpty }
    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ e: Entry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n, Self.less(items[l], items[m]) { m = l }
                if r < n, Self.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

/// GPT-2 style merges over token ids: pair (left, right) -> (rank, merged id).
struct RankedMerges: Sendable {
    private var table: [UInt64: UInt64] = [:]

    var count: Int { table.count }

    @inline(__always) private static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// Keeps the first (best) rank when a pair is listed twice.
    mutating func add(left: Int32, right: Int32, merged: Int32, rank: Int) {
        let k = Self.key(left, right)
        if table[k] == nil { table[k] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged)) }
    }

    @inline(__always) func lookup(_ a: Int32, _ b: Int32) -> (rank: Int32, merged: Int32)? {
        guard let v = table[Self.key(a, b)] else { return nil }
        return (Int32(truncatingIfNeeded: v >> 32), Int32(truncatingIfNeeded: v & 0xFFFF_FFFF))
    }

    /// Merges `symbols` in place (their order is kept) and appends the result to `out`.
    func merge(_ symbols: [Int32], into out: inout [Int32], heap: inout PairHeap) {
        let n = symbols.count
        if n <= 1 { out.append(contentsOf: symbols); return }
        if n == 2 {
            if let m = lookup(symbols[0], symbols[1]) { out.append(m.merged) } else { out.append(contentsOf: symbols) }
            return
        }
        var ids = symbols
        if n <= 24 {
            // Short words (nearly all of them): a quadratic scan beats the heap's bookkeeping.
            var count = n
            while count > 1 {
                var best: (rank: Int32, merged: Int32) = (.max, 0)
                var at = -1
                for i in 0..<(count - 1) {
                    if let m = lookup(ids[i], ids[i + 1]), m.rank < best.rank { best = m; at = i }
                }
                if at < 0 { break }
                ids[at] = best.merged
                ids.remove(at: at + 1)
                count -= 1
            }
            out.append(contentsOf: ids)
            return
        }
        var next = [Int32](unsafeUninitializedCapacity: n) { b, c in
            for i in 0..<n { b[i] = Int32(i + 1) }
            b[n - 1] = -1
            c = n
        }
        var prev = [Int32](unsafeUninitializedCapacity: n) { b, c in
            for i in 0..<n { b[i] = Int32(i - 1) }
            c = n
        }
        heap.removeAll()
        for i in 0..<(n - 1) {
            if let m = lookup(ids[i], ids[i + 1]) {
                heap.push(.init(key: Float(m.rank), pos: Int32(i), right: ids[i + 1], size: ids[i]))
            }
        }
        // Entry.size carries the left id and Entry.right the right id at push time: an entry is
        // stale when either symbol has changed since.
        while let e = heap.pop() {
            let i = Int(e.pos)
            guard ids[i] == e.size, next[i] >= 0 else { continue }
            let j = Int(next[i])
            guard ids[j] == e.right, let m = lookup(ids[i], ids[j]) else { continue }
            ids[i] = m.merged
            ids[j] = -1
            let k = next[j]
            next[i] = k
            if k >= 0 { prev[Int(k)] = Int32(i) }
            if prev[i] >= 0, let l = lookup(ids[Int(prev[i])], ids[i]) {
                heap.push(.init(key: Float(l.rank), pos: prev[i], right: ids[i], size: ids[Int(prev[i])]))
            }
            if k >= 0, let r = lookup(ids[i], ids[Int(k)]) {
                heap.push(.init(key: Float(r.rank), pos: Int32(i), right: ids[Int(k)], size: ids[i]))
            }
        }
        var i = 0
        while i >= 0 {
            out.append(ids[i])
            i = Int(next[i])
        }
    }
}

/// llama.cpp's SentencePiece BPE (`llm_tokenizer_spm`) over the UTF-8 bytes of one text fragment.
struct SentencePieceMerger {
    let index: VocabIndex
    let scores: [Float]
    /// byteTokens[b] = id of "<0xXX>", or -1.
    let byteTokens: [Int32]
    let unknownId: Int32

    func encode(_ text: [UInt8], into out: inout [Int32], heap: inout PairHeap) {
        let n = text.count
        guard n > 0 else { return }
        // Symbols are UTF-8 characters; start[i] / len[i] describe symbol i (len 0 = merged away).
        var start = [Int32](), len = [Int32](), prev = [Int32](), next = [Int32]()
        start.reserveCapacity(n); len.reserveCapacity(n)
        var p = 0
        while p < n {
            let lead = text[p]
            let l = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 1
            let c = min(l, n - p)
            start.append(Int32(p)); len.append(Int32(c))
            p += c
        }
        let m = start.count
        for i in 0..<m { prev.append(Int32(i - 1)); next.append(i + 1 < m ? Int32(i + 1) : -1) }

        text.withUnsafeBufferPointer { buf in
            func tryBigram(_ left: Int, _ right: Int) {
                guard left >= 0, right >= 0 else { return }
                let s = Int(start[left]), e = Int(start[right] + len[right])
                guard let id = index.id(bytes: UnsafeBufferPointer(rebasing: buf[s..<e])) else { return }
                heap.push(.init(key: -scores[Int(id)], pos: Int32(left), right: Int32(right), size: Int32(e - s)))
            }
            heap.removeAll()
            for i in 1..<max(m, 1) { tryBigram(i - 1, i) }
            while let b = heap.pop() {
                let l = Int(b.pos), r = Int(b.right)
                guard len[l] > 0, len[r] > 0, len[l] + len[r] == b.size else { continue }
                len[l] += len[r]
                len[r] = 0
                next[l] = next[r]
                if next[r] >= 0 { prev[Int(next[r])] = Int32(l) }
                tryBigram(Int(prev[l]), l)
                tryBigram(l, Int(next[l]))
            }
            var i = 0
            while i >= 0 {
                let s = Int(start[i]), e = s + Int(len[i])
                if let id = index.id(bytes: UnsafeBufferPointer(rebasing: buf[s..<e])) {
                    out.append(id)
                } else {
                    for b in buf[s..<e] {
                        let t = byteTokens[Int(b)]
                        out.append(t >= 0 ? t : unknownId)
                    }
                }
                i = Int(next[i])
            }
        }
    }
}
