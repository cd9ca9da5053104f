// Completion.swift — the shortest-ish text that turns the current prefix into a complete document.
//
// Used when the token budget is about to run out: appending completion() to the output makes it parse
// (and satisfy the schema). It is built by driving a copy of the automaton with a closing policy, one
// small chunk at a time, so every byte it returns has been checked by feed():
//   - finish the current token: escapes with the smallest valid hex digits (a high surrogate gets
//     \uDC00), a half UTF-8 character with a continuation byte, a string up to minLength with 'a',
//     a number with 0, a literal along its shortest path, a key along the shortest path to a missing
//     required (else any allowed) property name;
//   - then close containers: missing required properties (declared order) with their shortest value,
//     missing array items up to minItems, then the closing bracket.
// No whitespace is ever added.

extension JSONPrefixState {
    /// Bytes that, appended to the text fed so far, make a complete valid document ([] if it is already
    /// complete). For a schema, values added for missing required properties or items are the shortest
    /// values the schema allows.
    public func completion() -> [UInt8] {
        var s = self
        var out: [UInt8] = []
        var rounds = 0
        while !s.isComplete && rounds < 1_000_000 {
            rounds += 1
            let chunk = s.completionChunk()
            if chunk.isEmpty { break }
            for b in chunk {
                // The policy only proposes bytes the automaton takes (the tests check this on every
                // fixture prefix and on random walks); should one be refused, stop rather than lie.
                guard s.feed(b) else { return out }
                out.append(b)
            }
        }
        return out
    }

    private func closeOrContinue() -> [UInt8] {
        let tables = program.tables
        if top.isObject {
            let spec = tables.objects[Int(top.spec)]
            return spec.required & ~top.bits != 0 ? [UInt8(ascii: ",")] : [UInt8(ascii: "}")]
        }
        let spec = tables.arrays[Int(top.spec)]
        return top.bits < UInt64(spec.minItems) ? [UInt8(ascii: ",")] : [UInt8(ascii: "]")]
    }

    func completionChunk() -> [UInt8] {
        let tables = program.tables
        switch mode {
        case .done:
            return []
        case .value:
            return tables.minimalValue[Int(valueNode)]
        case .objectFirst:
            let spec = tables.objects[Int(top.spec)]
            return spec.required != 0 ? [0x22] : [UInt8(ascii: "}")]
        case .objectKey:
            return [0x22]
        case .colon:
            return [UInt8(ascii: ":")]
        case .arrayFirst:
            let spec = tables.arrays[Int(top.spec)]
            return spec.minItems > 0 ? tables.minimalValue[Int(spec.items)] : [UInt8(ascii: "]")]
        case .afterValue:
            return closeOrContinue()
        case .number:
            return numberMayEnd ? closeOrContinue() : [UInt8(ascii: "0")]
        case .literal:
            let node = tables.trie.nodes[Int(cursor)]
            if node.terminal >= 0 { return closeOrContinue() }
            return [tables.trie.edgeBytes[Int(node.bestEdge)]]
        case .string:
            return stringChunk()
        }
    }

    private func stringChunk() -> [UInt8] {
        switch esc {
        case 1:
            if keyMode == 2 {
                let trie = program.tables.trie
                for letter in Array("\"\\/bfnrt".utf8) {
                    let c = trie.child(cursor, JSONBytes.unescape(letter)!)
                    if c >= 0 && trie.nodes[Int(c)].mask & ~top.bits != 0 { return [letter] }
                }
            }
            return [UInt8(ascii: "n")]
        case 2...5:
            for h in Array("0123456789abcdef".utf8) {
                var t = self
                if t.step(h) { return [h] }
            }
            return []
        case 6:
            return [0x5C]
        case 7:
            return [UInt8(ascii: "u")]
        default:
            break
        }
        if keyMode != 0 { return keyChunk() }
        if utf8 != 0 { return [UTF8Scan.someContinuation(utf8)] }
        if !isKey && count < strMin { return [UInt8(ascii: "a")] }
        return [0x22]
    }

    /// Next bytes of a key that is matched against the declared names: toward the nearest missing
    /// required name (or, when only declared names are allowed, the nearest name not yet given).
    private func keyChunk() -> [UInt8] {
        let tables = program.tables
        let trie = tables.trie
        let spec = tables.objects[Int(top.spec)]
        let unseen = ~top.bits
        var targets: [UInt64] = [spec.required & unseen]
        if keyMode == 2 { targets.append(spec.allMask & unseen) }
        for want in targets where want != 0 {
            if let path = shortestPath(from: cursor, want: want, trie: trie) {
                guard let d = path.first else { return [0x22] }
                if utf8 == 0, let e = JSONBytes.shortEscape(d) { return [0x5C, e] }
                return [d]
            }
        }
        // Tracking declared names but free to use another key.
        if utf8 != 0 { return [UTF8Scan.someContinuation(utf8)] }
        let t = trie.nodes[Int(cursor)].terminal
        if t >= 0 && top.bits & (UInt64(1) << UInt64(t)) != 0 { return [UInt8(ascii: "_")] }
        return [0x22]
    }

    /// Breadth-first search in the name trie for the nearest name whose bit is in `want`; the bytes to it.
    private func shortestPath(from start: Int32, want: UInt64, trie: ByteTrie) -> [UInt8]? {
        guard trie.nodes[Int(start)].mask & want != 0 else { return nil }
        var queue: [(node: Int32, parent: Int, byte: UInt8)] = [(start, -1, 0)]
        var head = 0
        while head < queue.count {
            let (n, _, _) = queue[head]
            let node = trie.nodes[Int(n)]
            if node.terminal >= 0 && want & (UInt64(1) << UInt64(node.terminal)) != 0 {
                var path: [UInt8] = []
                var i = head
                while queue[i].parent >= 0 { path.append(queue[i].byte); i = queue[i].parent }
                return path.reversed()
            }
            for e in Int(node.first)..<Int(node.first + node.count) {
                let c = trie.edgeTargets[e]
                if trie.nodes[Int(c)].mask & want != 0 { queue.append((c, head, trie.edgeBytes[e])) }
            }
            head += 1
        }
        return nil
    }
}
