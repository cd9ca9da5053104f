// response_format as a decoding constraint: the JSON automaton (JSONConstraint) decides, through the
// vocabulary's byte trie, which tokens keep the output a valid prefix of a document (of the schema);
// the stop token is allowed only once the document is complete, and a document about to run out of
// tokens is closed with the automaton's shortest completion, so the output always parses.
import Foundation
import JSONConstraint
import Tokenizers

public struct JSONTokenConstraint: TokenConstraint {
    let trie: TokenTrie
    let tokenizer: any Tokenizer
    var state: JSONPrefixState
    /// The allowed-token mask, refilled in place each step (one per sequence: each holds its own copy).
    private var allowed: [Bool] = []

    public init(state: JSONPrefixState, trie: TokenTrie, tokenizer: any Tokenizer) {
        self.state = state; self.trie = trie; self.tokenizer = tokenizer
    }

    public mutating func mask(_ logits: UnsafeMutablePointer<Float>, vocab: Int, stopTokens: Set<Int>) {
        trie.fillAllowedMask(from: state, into: &allowed)
        let complete = state.isComplete
        for i in 0..<vocab where !(i < allowed.count && allowed[i]) && !(complete && stopTokens.contains(i)) {
            logits[i] = -.infinity
        }
    }

    public mutating func accept(_ token: Int) {
        if token < trie.vocabularySize { trie.advance(&state, token: token) }
    }

    /// Complete once nothing but whitespace could follow (a finished object, array, string or literal).
    public var isComplete: Bool {
        state.isComplete && !state.accepts(Array("0".utf8)) && !state.accepts(Array(".".utf8)) && !state.accepts(Array("e".utf8))
    }

    public var completionLength: Int { state.completion().count }

    public func fits(_ token: Int, budget: Int) -> Bool {
        guard token < trie.vocabularySize else { return state.isComplete }
        var s = state
        guard trie.advance(&s, token: token) else { return false }
        return s.completion().count <= budget
    }

    public func completion(budget: Int) -> [Int]? {
        let bytes = state.completion()
        // No completion byte takes more than one token: with room for all of them, nothing to force yet.
        guard bytes.count >= budget - 1 else { return nil }
        return tokenizer.encode(String(decoding: bytes, as: UTF8.self), addSpecialTokens: false)
    }
}
