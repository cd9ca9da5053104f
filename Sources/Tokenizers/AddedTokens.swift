// Finds special and added tokens (`<|im_start|>`, `<end_of_turn>`, Gemma's "\n\n" user tokens, ...)
// in raw text before any normalization or pre-tokenization, as both transformers and llama.cpp
// do: at each position the longest listed token wins; the text between matches is tokenized
// normally. A byte trie keeps this linear even with thousands of listed tokens.

struct AddedToken: Sendable {
    var id: Int32
    var content: String
    /// HF flags: swallow whitespace left / right of the match.
    var lstrip = false
    var rstrip = false
}

enum TextSegment {
    case text(ArraySlice<UInt8>, atStart: Bool)
    case token(Int32)
}

struct AddedTokenMatcher: Sendable {
    private struct Node: Sendable {
        var children: [UInt8: Int32] = [:]
        var token: Int32 = -1  // index into tokens
    }
    private var nodes: [Node] = [Node()]
    private(set) var tokens: [AddedToken] = []

    init(_ list: [AddedToken]) {
        for t in list where !t.content.isEmpty {
            var node = 0
            for b in t.content.utf8 {
                if let c = nodes[node].children[b] {
                    node = Int(c)
                } else {
                    nodes.append(Node())
                    nodes[node].children[b] = Int32(nodes.count - 1)
                    node = nodes.count - 1
                }
            }
            if nodes[node].token < 0 { tokens.append(t); nodes[node].token = Int32(tokens.count - 1) }
        }
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// Longest token starting at `i`: (token index, end).
    private func match(_ text: [UInt8], at i: Int) -> (Int, Int)? {
        var node = 0
        var best: (Int, Int)?
        var j = i
        while j < text.count, let c = nodes[node].children[text[j]] {
            node = Int(c)
            j += 1
            if nodes[node].token >= 0 { best = (Int(nodes[node].token), j) }
        }
        return best
    }

    func segments(_ text: [UInt8]) -> [TextSegment] {
        var out = [TextSegment]()
        var textStart = 0
        var i = 0
        let n = text.count
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }
        while i < n {
            guard nodes[0].children[text[i]] != nil, let (t, end) = match(text, at: i) else { i += 1; continue }
            let tok = tokens[t]
            var before = i
            if tok.lstrip { while before > textStart, isSpace(text[before - 1]) { before -= 1 } }
            if before > textStart { out.append(.text(text[textStart..<before], atStart: textStart == 0)) }
            out.append(.token(tok.id))
            var after = end
            if tok.rstrip { while after < n, isSpace(text[after]) { after += 1 } }
            textStart = after
            i = after
        }
        if textStart < n { out.append(.text(text[textStart..<n], atStart: textStart == 0)) }
        return out
    }
}
