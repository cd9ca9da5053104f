// TokenTrie.swift — which vocabulary tokens keep the output a valid prefix: one trie walk per step.
//
// The vocabulary's byte strings go into a prefix trie. Token ids are numbered in pre-order (`order`),
// so the tokens of any subtree are one contiguous range. The walk reads edges: each node's children
// are one contiguous block of `Edge`s (blocks in breadth-first order), and an edge carries all the walk
// needs about its child — byte, token ranges, where the child's own block is — so visiting a node
// reads one run of memory and accepting a child's whole subtree touches nothing below it.
// allowedTokens copies the state at each edge it explores and feeds one byte, so a prefix shared by
// many tokens is checked once and a refused byte prunes its whole subtree.
//
// The expensive case is the inside of a string, where almost every token is allowed. Each edge keeps
// `safe`, a bit per UTF-8 scanner state: bit u says every continuation below the child is plain string
// content (no quote, no backslash, no control byte, well-formed UTF-8 from state u), and `height`,
// the longest continuation. When the state is inside an unconstrained string and both fit, the whole
// subtree is accepted as one id range without walking it.

import Foundation

public struct TokenTrie: Sendable {
    /// The edge into a node, with what the walk needs about that node.
    struct Edge: Sendable {
        var tokStart: Int32  // tokens ending exactly at the node: order[tokStart ..< tokEnd]
        var tokEnd: Int32    // then the rest of its subtree: order[tokEnd ..< subEnd]
        var subEnd: Int32
        var first: Int32     // the node's children: edges[first ..< first + count]
        var count: Int32
        var height: UInt16   // longest path below the node, in bytes
        var byte: UInt8
        var safe: UInt8      // see above
    }

    let edges: [Edge]
    let rootFirst: Int32
    let rootCount: Int32
    /// Token ids in trie (pre-order, then id) order.
    let order: [Int]
    let tokenBytes: [[UInt8]]
    /// inTrie[id]: the token is in the trie (the mask of "everything allowed").
    let inTrie: [Bool]
    /// Number of ids (the length of the vocabulary passed in, including excluded ones).
    public let vocabularySize: Int
    /// Tokens that are in the trie (non-empty and not excluded).
    public let tokenCount: Int

    /// Builds the trie from each token id's bytes (index = id). Empty byte strings are left out, and so
    /// are the ids in `excluding` (special tokens such as EOS, which the sampler handles itself).
    public init(tokens: [[UInt8]], excluding: Set<Int> = []) {
        vocabularySize = tokens.count
        tokenBytes = tokens
        let ids = tokens.indices.filter { !tokens[$0].isEmpty && !excluding.contains($0) }.sorted { a, b in
            let x = tokens[a], y = tokens[b]
            let n = min(x.count, y.count)
            var i = 0
            while i < n {
                if x[i] != y[i] { return x[i] < y[i] }
                i += 1
            }
            return x.count != y.count ? x.count < y.count : a < b
        }
        tokenCount = ids.count

        // plainNext for all (state, byte) pairs, for folding child safety into parents.
        var next = [UInt8](repeating: UTF8Scan.invalid, count: 8 * 256)
        for s in 0..<8 { for b in 0..<256 { next[s * 256 + b] = UTF8Scan.plainNext(UInt8(s), UInt8(b)) } }

        // Pass 1: the trie in pre-order (node n's first child is n + 1, its next sibling is end[n]).
        struct Node {
            var end: Int32, tokStart: Int32, tokEnd: Int32, subEnd: Int32
            var height: UInt16, byte: UInt8, safe: UInt8
        }
        var nodes: [Node] = [Node(end: 0, tokStart: 0, tokEnd: 0, subEnd: 0, height: 0, byte: 0, safe: 0xFF)]
        var order: [Int] = []
        order.reserveCapacity(ids.count)
        var path: [Int] = [0]  // node indices from the root; path.count - 1 bytes deep
        var previous: [UInt8] = []

        func close(_ n: Int) {
            nodes[n].end = Int32(nodes.count)
            nodes[n].subEnd = Int32(order.count)
            guard let p = path.last else { return }
            let child = nodes[n]
            nodes[p].height = max(nodes[p].height, child.height &+ 1)
            var safe: UInt8 = 0
            for s in 0..<8 {
                let v = next[s * 256 + Int(child.byte)]
                if v != UTF8Scan.invalid && (child.safe >> v) & 1 != 0 { safe |= 1 << UInt8(s) }
            }
            nodes[p].safe &= safe
        }

        for id in ids {
            let t = tokens[id]
            var common = 0
            let limit = min(previous.count, t.count, path.count - 1)
            while common < limit && previous[common] == t[common] { common += 1 }
            while path.count - 1 > common { close(path.removeLast()) }
            for k in common..<t.count {
                let o = Int32(order.count)
                nodes.append(Node(end: 0, tokStart: o, tokEnd: o, subEnd: o, height: 0, byte: t[k], safe: 0xFF))
                path.append(nodes.count - 1)
            }
            order.append(id)
            nodes[path.last!].tokEnd = Int32(order.count)
            previous = t
        }
        while let n = path.popLast() { close(n) }

        // Pass 2: children blocks in breadth-first order; edge e describes node edgeNode[e].
        var edges: [Edge] = []
        edges.reserveCapacity(nodes.count)
        var queue: [(node: Int, edge: Int)] = [(0, -1)]
        var head = 0
        var rootFirst: Int32 = 0, rootCount: Int32 = 0
        while head < queue.count {
            let (n, e) = queue[head]
            head += 1
            let first = Int32(edges.count)
            var c = n + 1
            while c < Int(nodes[n].end) {
                let node = nodes[c]
                edges.append(Edge(tokStart: node.tokStart, tokEnd: node.tokEnd, subEnd: node.subEnd, first: 0, count: 0,
                                  height: node.height, byte: node.byte, safe: node.safe))
                queue.append((c, edges.count - 1))
                c = Int(node.end)
            }
            let count = Int32(edges.count) - first
            if e < 0 { rootFirst = first; rootCount = count } else { edges[e].first = first; edges[e].count = count }
        }
        self.edges = edges
        self.rootFirst = rootFirst
        self.rootCount = rootCount
        self.order = order
        var inTrie = [Bool](repeating: false, count: tokens.count)
        for id in ids { inTrie[id] = true }
        self.inTrie = inTrie
    }

    /// The bytes of a token id.
    public func bytes(of token: Int) -> [UInt8] { tokenBytes[token] }

    // MARK: masks

    /// Ids of the tokens that `state` accepts in full, in trie order (not sorted). Excluded and empty
    /// tokens never appear; the caller decides about EOS (allow it when `state.isComplete`).
    public func allowedTokens(from state: JSONPrefixState) -> [Int] {
        var ids: [Int] = []
        allowedTokens(from: state, into: &ids)
        return ids
    }

    /// allowedTokens into a caller-owned buffer (emptied first, capacity kept): no allocation per
    /// decoding step once the buffer has grown.
    public func allowedTokens(from state: JSONPrefixState, into ids: inout [Int]) {
        let ranges = allowedRanges(state)
        ids.removeAll(keepingCapacity: true)
        ids.reserveCapacity(ranges.total)
        order.withUnsafeBufferPointer { ord in
            var i = 0
            while i < ranges.bounds.count {
                ids.append(contentsOf: UnsafeBufferPointer(rebasing: ord[Int(ranges.bounds[i])..<Int(ranges.bounds[i + 1])]))
                i += 2
            }
        }
    }

    /// mask[id] = whether `state` accepts token id (resized to vocabularySize first).
    public func fillAllowedMask(from state: JSONPrefixState, into mask: inout [Bool]) {
        let ranges = allowedRanges(state)
        if mask.count != vocabularySize { mask = [Bool](repeating: false, count: vocabularySize) }
        let b = ranges.bounds
        mask.withUnsafeMutableBufferPointer { m in
            order.withUnsafeBufferPointer { ord in
                if ranges.total * 2 > tokenCount {
                    // Mostly allowed (inside strings): start from "every trie token" and clear the gaps.
                    _ = m.update(fromContentsOf: inTrie)
                    var from = 0
                    var i = 0
                    while i <= b.count {
                        let to = i < b.count ? Int(b[i]) : ord.count
                        for k in from..<to { m[ord[k]] = false }
                        if i < b.count { from = Int(b[i + 1]) }
                        i += 2
                    }
                } else {
                    m.update(repeating: false)
                    var i = 0
                    while i < b.count {
                        for k in Int(b[i])..<Int(b[i + 1]) { m[ord[k]] = true }
                        i += 2
                    }
                }
            }
        }
    }

    /// A fresh mask; see fillAllowedMask.
    public func allowedMask(from state: JSONPrefixState) -> [Bool] {
        var mask: [Bool] = []
        fillAllowedMask(from: state, into: &mask)
        return mask
    }

    /// Sets logits of tokens the state refuses to -infinity (logits.count must be >= vocabularySize;
    /// entries past it, and excluded/empty tokens, are set to -infinity too unless `keep` lists them).
    public func maskLogits(_ logits: inout [Float], state: JSONPrefixState, keep: Set<Int> = []) {
        let mask = allowedMask(from: state)
        for i in logits.indices where !(i < mask.count && mask[i]) && !keep.contains(i) {
            logits[i] = -.infinity
        }
    }

    /// Feeds a token's bytes; all or nothing (false leaves the state unchanged).
    @discardableResult
    public func advance(_ state: inout JSONPrefixState, token: Int) -> Bool {
        state.feed(tokenBytes[token])
    }

    /// Feeds a byte string; all or nothing.
    @discardableResult
    public func advance(_ state: inout JSONPrefixState, bytes: [UInt8]) -> Bool {
        state.feed(bytes)
    }

    // MARK: the walk

    private func allowedRanges(_ state: JSONPrefixState) -> RangeSink {
        var sink = RangeSink()
        walk(rootFirst, rootCount, state, &sink)
        return sink
    }

    private func walk(_ first: Int32, _ count: Int32, _ state: JSONPrefixState, _ sink: inout RangeSink) {
        var e = Int(first)
        let end = e + Int(count)
        while e < end {
            let edge = edges[e]
            e += 1
            var s = state
            guard s.step(edge.byte) else { continue }
            if edge.count > 0 {
                if s.acceptsPlainSuffixes(height: UInt32(edge.height), safeStates: edge.safe) {
                    sink.add(Int(edge.tokStart), Int(edge.subEnd))
                    continue
                }
                if edge.tokEnd > edge.tokStart { sink.add(Int(edge.tokStart), Int(edge.tokEnd)) }
                walk(edge.first, edge.count, s, &sink)
            } else if edge.tokEnd > edge.tokStart {
                sink.add(Int(edge.tokStart), Int(edge.tokEnd))
            }
        }
    }
}

/// Accepted positions in `order`, as increasing, disjoint [from, to) pairs (touching ones merged).
struct RangeSink {
    var bounds: [Int32] = []
    var total = 0

    @inline(__always)
    mutating func add(_ from: Int, _ to: Int) {
        total += to - from
        if let last = bounds.last, Int(last) == from {
            bounds[bounds.count - 1] = Int32(to)
        } else {
            bounds.append(Int32(from))
            bounds.append(Int32(to))
        }
    }
}
