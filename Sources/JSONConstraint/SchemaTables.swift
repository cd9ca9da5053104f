// SchemaTables.swift — the compiled, immutable form of a schema that the automaton walks, and the limits.
//
// A schema compiles into flat tables indexed by Int32 so that JSONPrefixState can refer to "where it
// is" with small integers (cheap to copy and hash):
//   SchemaNode   one per schema: which kinds of value it allows (object spec, array spec, string
//                length range, number or integer, a set of literal texts for enum/const/true/false/null)
//   ObjectSpec   properties (declared order), required / all-property bit masks, the schema for other
//                keys (or none), and a byte trie of the property names
//   ArraySpec    item schema, minItems, maxItems
//   ByteTrie     one arena holding every literal trie (enum/const values as canonical JSON text) and
//                every property-name trie (decoded UTF-8 of the names)
// `minimalValue` holds, per node, the shortest value text found for it; completions use it.

import Foundation

/// Bounds that keep a small model from looping forever inside the grammar. All counts are per token
/// run: `maxWhitespaceRun` consecutive whitespace bytes between two tokens, digits per number part.
public struct JSONLimits: Sendable, Hashable {
    /// Most consecutive whitespace bytes (space, tab, CR, LF) allowed between two tokens (and before the value).
    public var maxWhitespaceRun: Int
    /// Most whitespace bytes allowed after the top-level value is complete.
    public var maxTrailingWhitespace: Int
    /// Most digits before the decimal point (18 keeps integers inside Int64).
    public var maxIntegerDigits: Int
    /// Most digits after the decimal point.
    public var maxFractionDigits: Int
    /// Most exponent digits (2 keeps every number a finite Double: at most 18 digits times 1e99).
    public var maxExponentDigits: Int
    /// Most characters (Unicode scalars; an escape counts as one) in any string, key or value; nil means
    /// no bound beyond the schema's maxLength. A schema minLength above it wins.
    public var maxStringLength: Int?
    /// Most nested objects/arrays.
    public var maxDepth: Int

    public init(maxWhitespaceRun: Int = 4, maxTrailingWhitespace: Int = 2, maxIntegerDigits: Int = 18,
                maxFractionDigits: Int = 20, maxExponentDigits: Int = 2, maxStringLength: Int? = nil,
                maxDepth: Int = 64) {
        self.maxWhitespaceRun = maxWhitespaceRun
        self.maxTrailingWhitespace = maxTrailingWhitespace
        self.maxIntegerDigits = maxIntegerDigits
        self.maxFractionDigits = maxFractionDigits
        self.maxExponentDigits = maxExponentDigits
        self.maxStringLength = maxStringLength
        self.maxDepth = maxDepth
    }
}

struct SchemaNode: Sendable {
    var objectSpec: Int32 = -1
    var arraySpec: Int32 = -1
    var hasString = false
    var stringMin: UInt32 = 0
    var stringMax: UInt32 = .max
    /// 0: no numbers; 1: integers only (no fraction, no exponent); 2: any number.
    var number: UInt8 = 0
    /// Root of this node's literal trie in `SchemaTables.trie`, or -1.
    var literalRoot: Int32 = -1
}

struct ObjectSpec: Sendable {
    /// Property names as decoded UTF-8, in declared order; bit i of the masks is names[i].
    var names: [[UInt8]]
    var nodes: [Int32]
    var required: UInt64
    var allMask: UInt64
    /// Node for keys that are not declared properties, or -1 when no other key is allowed.
    var additional: Int32
    /// Root of the property-name trie, or -1 when there are no declared properties.
    var keyTrie: Int32
}

struct ArraySpec: Sendable {
    var items: Int32
    var minItems: UInt32
    var maxItems: UInt32
}

/// Byte tries in one arena. A node's edges are edgeBytes/edgeTargets[first ..< first + count].
struct ByteTrie: Sendable {
    struct Node: Sendable {
        var first: Int32
        var count: Int32
        /// Payload where a word ends here (property index, or 0 for a literal), else -1.
        var terminal: Int32
        /// Property bits of every word in this subtree (property-name tries).
        var mask: UInt64
        /// Bytes to the nearest word end in this subtree, and the edge that leads there (-1 at an end).
        var distance: Int32
        var bestEdge: Int32
    }

    var nodes: [Node] = []
    var edgeBytes: [UInt8] = []
    var edgeTargets: [Int32] = []

    @inline(__always)
    func child(_ n: Int32, _ b: UInt8) -> Int32 {
        let node = nodes[Int(n)]
        var e = Int(node.first)
        let end = e + Int(node.count)
        while e < end {
            if edgeBytes[e] == b { return edgeTargets[e] }
            e += 1
        }
        return -1
    }

    /// A word ends here and nothing continues it: the literal is finished as soon as this node is reached.
    @inline(__always)
    func isClosedEnd(_ n: Int32) -> Bool {
        let node = nodes[Int(n)]
        return node.terminal >= 0 && node.count == 0
    }
}

/// Builds tries with growable child lists, then freezes them into a ByteTrie.
struct ByteTrieBuilder {
    private var children: [[(UInt8, Int32)]] = []
    private var terminal: [Int32] = []
    private var mask: [UInt64] = []

    mutating func newRoot() -> Int32 {
        children.append([]); terminal.append(-1); mask.append(0)
        return Int32(children.count - 1)
    }

    mutating func insert(_ word: [UInt8], root: Int32, payload: Int32, bit: UInt64) {
        var n = root
        mask[Int(n)] |= bit
        for b in word {
            if let next = children[Int(n)].first(where: { $0.0 == b })?.1 {
                n = next
            } else {
                let c = Int32(children.count)
                children.append([]); terminal.append(-1); mask.append(0)
                children[Int(n)].append((b, c))
                n = c
            }
            mask[Int(n)] |= bit
        }
        if terminal[Int(n)] < 0 { terminal[Int(n)] = payload }
    }

    func build() -> ByteTrie {
        var trie = ByteTrie()
        for i in children.indices {
            let sorted = children[i].sorted { $0.0 < $1.0 }
            trie.nodes.append(ByteTrie.Node(first: Int32(trie.edgeBytes.count), count: Int32(sorted.count),
                                            terminal: terminal[i], mask: mask[i], distance: 0, bestEdge: -1))
            for (b, c) in sorted { trie.edgeBytes.append(b); trie.edgeTargets.append(c) }
        }
        // Children always have larger indices than their parent: fill distances from the end.
        for i in stride(from: trie.nodes.count - 1, through: 0, by: -1) {
            var node = trie.nodes[i]
            if node.terminal >= 0 { node.distance = 0; node.bestEdge = -1 } else {
                var best = Int32.max, bestEdge: Int32 = -1
                for e in Int(node.first)..<Int(node.first + node.count) {
                    let d = trie.nodes[Int(trie.edgeTargets[e])].distance
                    if d < best { best = d; bestEdge = Int32(e) }
                }
                node.distance = best == Int32.max ? Int32.max : best + 1
                node.bestEdge = bestEdge
            }
            trie.nodes[i] = node
        }
        return trie
    }
}

/// Everything a compiled schema consists of; immutable once built.
struct SchemaTables: Sendable {
    var root: Int32
    var nodes: [SchemaNode]
    var objects: [ObjectSpec]
    var arrays: [ArraySpec]
    var trie: ByteTrie
    var minimalValue: [[UInt8]]
}

/// What a JSONPrefixState points at: the schema tables and the limits, shared by all copies of a state.
final class Program: Sendable, Hashable {
    let tables: SchemaTables
    let maxWhitespace: UInt8
    let maxTrailing: UInt8
    let maxIntDigits: UInt32
    let maxFracDigits: UInt32
    let maxExpDigits: UInt32
    let maxString: UInt32
    let maxDepth: Int32

    init(tables: SchemaTables, limits: JSONLimits) {
        self.tables = tables
        func clampByte(_ v: Int) -> UInt8 { UInt8(clamping: max(0, v)) }
        func clamp32(_ v: Int) -> UInt32 { UInt32(clamping: max(0, v)) }
        maxWhitespace = clampByte(limits.maxWhitespaceRun)
        maxTrailing = clampByte(limits.maxTrailingWhitespace)
        maxIntDigits = clamp32(max(1, limits.maxIntegerDigits))
        maxFracDigits = clamp32(max(1, limits.maxFractionDigits))
        maxExpDigits = clamp32(max(1, limits.maxExponentDigits))
        maxString = limits.maxStringLength.map(clamp32) ?? .max
        maxDepth = Int32(clamping: max(1, limits.maxDepth))
    }

    static func == (a: Program, b: Program) -> Bool { a === b }
    func hash(into h: inout Hasher) { h.combine(ObjectIdentifier(self)) }
}
