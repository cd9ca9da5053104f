// Keys and values of recent prompts, so that a prompt sharing a prefix with one of them (the judge's
// requests all begin with the same system message and examples) copies that prefix into its cache slot
// instead of recomputing it, as vLLM's automatic prefix caching and llama.cpp's prompt cache do. Causal
// attention makes the keys and values of the first L positions depend only on the first L tokens, so any
// common prefix of two prompts can be reused, whatever follows. Least recently used entries go first
// once the byte budget is reached. Entries are kept per adapter: a LoRA adapter on k_proj or v_proj
// changes the keys and values of the same tokens, so a base prompt's cache must not serve an adapter's.
import Foundation
import Llama

public final class PrefixCache: @unchecked Sendable {  // reason: used only by the scheduler's loop thread
    final class Entry {
        let tokens: [Int]
        let adapter: String
        /// [layer][key, value][position][width]
        let storage: UnsafeMutablePointer<Float>
        let bytes: Int
        var lastUse: Int
        init(tokens: [Int], adapter: String, floats: Int, use: Int) {
            self.tokens = tokens
            self.adapter = adapter
            storage = .allocate(capacity: floats)
            bytes = floats * MemoryLayout<Float>.size
            lastUse = use
        }
        deinit { storage.deallocate() }
    }

    public let layers: Int, width: Int, budgetBytes: Int
    /// Prefixes shorter than this are not worth a copy.
    public var minimumLength = 16
    private var entries: [Entry] = []
    private var clock = 0
    public private(set) var bytes = 0
    public private(set) var hits = 0, lookups = 0

    public init(layers: Int, width: Int, budgetBytes: Int) {
        self.layers = layers; self.width = width; self.budgetBytes = budgetBytes
    }

    public var count: Int { entries.count }

    static func commonPrefix(_ a: [Int], _ b: [Int]) -> Int {
        let n = min(a.count, b.count)
        var i = 0
        while i < n && a[i] == b[i] { i += 1 }
        return i
    }

    func best(_ tokens: [Int], adapter: String, maxLength: Int) -> (Entry, Int)? {
        var best: Entry?, bestLen = 0
        for e in entries where e.adapter == adapter {
            let l = min(Self.commonPrefix(e.tokens, tokens), maxLength)
            if l > bestLen { best = e; bestLen = l }
        }
        guard let e = best, bestLen >= minimumLength else { return nil }
        return (e, bestLen)
    }

    /// The length `restore` would copy, without copying.
    public func matchLength(_ tokens: [Int], adapter: String = "", maxLength: Int) -> Int {
        guard budgetBytes > 0 else { return 0 }
        return best(tokens, adapter: adapter, maxLength: maxLength)?.1 ?? 0
    }

    /// Copies the longest cached prefix of `tokens` (at most `maxLength`) for `adapter` ("" for the base
    /// model) into `slot`; returns its length (0: none).
    public func restore(_ tokens: [Int], adapter: String = "", maxLength: Int, into cache: KVCache, slot: Int) -> Int {
        guard budgetBytes > 0 else { return 0 }
        lookups += 1
        guard let (e, bestLen) = best(tokens, adapter: adapter, maxLength: maxLength) else { return 0 }
        clock += 1
        e.lastUse = clock
        hits += 1
        let n = e.tokens.count
        for l in 0..<layers {
            cache.keys(layer: l, slot: slot, position: 0).update(from: e.storage + (2 * l) * n * width, count: bestLen * width)
            cache.values(layer: l, slot: slot, position: 0).update(from: e.storage + (2 * l + 1) * n * width, count: bestLen * width)
        }
        cache.lengths[slot] = bestLen
        return bestLen
    }

    /// Keeps the keys and values of `tokens` (all in `slot`) unless a cached entry already covers them.
    public func store(_ tokens: [Int], adapter: String = "", from cache: KVCache, slot: Int) {
        let n = tokens.count, floats = 2 * layers * n * width
        guard budgetBytes > 0, n >= minimumLength, floats * MemoryLayout<Float>.size <= budgetBytes else { return }
        clock += 1
        if let e = entries.first(where: { $0.adapter == adapter && Self.commonPrefix($0.tokens, tokens) == n }) { e.lastUse = clock; return }
        // An entry that is a prefix of this prompt is superseded by it.
        entries.removeAll { e in
            if e.adapter == adapter && Self.commonPrefix(e.tokens, tokens) == e.tokens.count { bytes -= e.bytes; return true }
            return false
        }
        while bytes + floats * MemoryLayout<Float>.size > budgetBytes,
              let oldest = entries.indices.min(by: { entries[$0].lastUse < entries[$1].lastUse }) {
            bytes -= entries[oldest].bytes
            entries.remove(at: oldest)
        }
        let e = Entry(tokens: tokens, adapter: adapter, floats: floats, use: clock)
        for l in 0..<layers {
            (e.storage + (2 * l) * n * width).update(from: cache.keys(layer: l, slot: slot, position: 0), count: n * width)
            (e.storage + (2 * l + 1) * n * width).update(from: cache.values(layer: l, slot: slot, position: 0), count: n * width)
        }
        entries.append(e)
        bytes += e.bytes
    }
}
