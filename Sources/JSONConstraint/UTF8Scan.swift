// UTF8Scan.swift — the byte-at-a-time UTF-8 validator shared by the automaton and the token trie.
//
// JSON text must be UTF-8 (RFC 8259 §8.1), and byte-level BPE tokens often end or start in the middle
// of a multi-byte character, so the automaton checks UTF-8 one byte at a time. The eight states are
// those of the usual well-formedness table (Unicode 15, table 3-7): no overlong forms, no encoded
// surrogates (ED A0..BF), nothing above U+10FFFF.

enum UTF8Scan {
    /// 0: at a character boundary. 1/2/3: that many continuation bytes (80..BF) still to come.
    /// 4: after E0 (next A0..BF). 5: after ED (next 80..9F). 6: after F0 (next 90..BF). 7: after F4 (next 80..8F).
    static let invalid: UInt8 = 0xFF

    /// The state after byte `b` from state `s`, or `invalid`. From state 0 an ASCII byte gives 0
    /// (callers decide which ASCII bytes they allow).
    @inline(__always)
    static func next(_ s: UInt8, _ b: UInt8) -> UInt8 {
        switch s {
        case 0:
            if b < 0x80 { return 0 }
            return lead(b)
        case 1: return b & 0xC0 == 0x80 ? 0 : invalid
        case 2: return b & 0xC0 == 0x80 ? 1 : invalid
        case 3: return b & 0xC0 == 0x80 ? 2 : invalid
        case 4: return (0xA0...0xBF).contains(b) ? 1 : invalid
        case 5: return (0x80...0x9F).contains(b) ? 1 : invalid
        case 6: return (0x90...0xBF).contains(b) ? 2 : invalid
        case 7: return (0x80...0x8F).contains(b) ? 2 : invalid
        default: return invalid
        }
    }

    /// The state after a lead byte (>= 0x80) at a boundary.
    @inline(__always)
    static func lead(_ b: UInt8) -> UInt8 {
        switch b {
        case 0xC2...0xDF: return 1
        case 0xE0: return 4
        case 0xE1...0xEC, 0xEE, 0xEF: return 2
        case 0xED: return 5
        case 0xF0: return 6
        case 0xF1...0xF3: return 3
        case 0xF4: return 7
        default: return invalid
        }
    }

    /// A continuation byte that is valid in state `s` (s != 0): used to finish a character in completions.
    static func someContinuation(_ s: UInt8) -> UInt8 {
        switch s {
        case 4: return 0xA0
        case 6: return 0x90
        default: return 0x80
        }
    }

    /// The state after `b` when the byte must be plain string content: no `"`, no `\`, no control
    /// character. Used by the token trie to find subtrees that a string accepts wholesale.
    @inline(__always)
    static func plainNext(_ s: UInt8, _ b: UInt8) -> UInt8 {
        if s == 0 && b < 0x80 {
            return (b < 0x20 || b == 0x22 || b == 0x5C) ? invalid : 0
        }
        return next(s, b)
    }
}
