// JSONPrefixState.swift — the byte-level pushdown automaton: "is this text a prefix of a valid document?"
//
// The state is a value type of a few dozen bytes: the current lexical mode (expecting a value, inside a
// string, a number, a literal, between tokens), the counters of the token being read, the innermost
// open container inline (`top`) and the outer ones in a copy-on-write array (`outer`), so copying a
// state per candidate token costs two reference-count bumps and feeding bytes that do not open or close
// a container never allocates. The schema (or, for plain JSON mode, the built-in "any object" schema)
// is shared through `program`.
//
// Grammar: RFC 8259 exactly (objects, arrays, strings with every escape, numbers
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, true/false/null, whitespace = space/tab/CR/LF),
// plus three deliberate strictnesses that keep every output readable by strict parsers:
//   - strings must be well-formed UTF-8 and \u escapes must not leave lone surrogates
//     (a high surrogate must be followed by \u and a low one);
//   - JSONLimits: bounded whitespace runs, number digits, string length (optional), nesting depth;
//   - after the top-level value only a few whitespace bytes (maxTrailingWhitespace).
// Liveness: every accepted prefix can still be completed (completion() finds one way), so constrained
// decoding never paints itself into a corner.
//
// Objects under a schema: properties in any order, each at most once; `}` only once all required
// ones are present; keys are matched against the declared names as they are typed (escapes
// included); other keys only where additionalProperties allows them (duplicate other keys are not
// tracked). In plain JSON mode keys are free.
//
// Use in a sampler (one state per request, one TokenTrie per model):
//   var state = ResponseFormat(json: body).initialState()    // or JSONPrefixState(schema:) / .jsonObject()
//   each step: trie.fillAllowedMask(from: state, into: &mask); allow EOS iff state.isComplete;
//              sample a token; trie.advance(&state, token: id)
//   once state.isFinished only whitespace may follow: end the output (EOS);
//   out of budget: append state.completion() to the text so it still parses.
// Equality/hash: two states are equal when they were made by the same JSONPrefixState initialiser
// call (shared program) and have read equivalent text; copies compare equal until they diverge.

import Foundation

/// A frame of the container stack. For objects `bits` is the set of properties already given; for
/// arrays it is the number of elements started.
struct Frame: Hashable, Sendable {
    var spec: Int32 = -1
    var valueNode: Int32 = -1
    var bits: UInt64 = 0
    var isObject = false
}

enum Mode: UInt8, Sendable {
    case value        // expecting a value of `valueNode`
    case objectFirst  // after `{`: a key or `}`
    case objectKey    // after `,` in an object: a key
    case colon        // after a key
    case afterValue   // after a value inside a container: `,` or the closing bracket
    case arrayFirst   // after `[`: a value or `]`
    case string       // inside a string (key or value)
    case number       // inside a number
    case literal      // inside an enum/const/true/false/null literal
    case done         // the top-level value is complete
}

public struct JSONPrefixState: Sendable, Hashable {
    let program: Program
    var outer: [Frame] = []
    var top = Frame()
    var depth: Int32 = 0
    var mode: Mode = .value
    /// Whitespace bytes in the current run between tokens.
    var ws: UInt8 = 0
    // Strings: escape progress (0 none, 1 after backslash, 2...5 hex digit 1...4 due, 6 a low surrogate's
    // backslash due, 7 its `u` due), UTF-8 state, key handling (0 free, 1 tracking declared names,
    // 2 declared names only), pending high surrogate, the \u value so far, characters so far, bounds.
    var esc: UInt8 = 0
    var utf8: UInt8 = 0
    var keyMode: UInt8 = 0
    var isKey = false
    var high: UInt16 = 0
    var codeUnit: UInt32 = 0
    /// Characters of the current string, or digits of the current number part.
    var count: UInt32 = 0
    var strMin: UInt32 = 0
    var strMax: UInt32 = 0
    // Numbers: 1 after '-', 2 after a leading 0, 3 integer digits, 4 after '.', 5 fraction digits,
    // 6 after e/E, 7 after the exponent sign, 8 exponent digits.
    var numPhase: UInt8 = 0
    var intOnly = false
    /// Literal trie node (mode .literal) or property-name trie node (keys with keyMode 1 or 2).
    var cursor: Int32 = -1
    var valueNode: Int32 = 0

    /// A fresh automaton for documents matching `schema`.
    public init(schema: JSONSchema, limits: JSONLimits = JSONLimits()) {
        program = Program(tables: schema.tables, limits: limits)
        valueNode = schema.tables.root
    }

    /// OpenAI `json_object` mode: any JSON object at the top level.
    public static func jsonObject(limits: JSONLimits = JSONLimits()) -> JSONPrefixState {
        JSONPrefixState(schema: .anyObject, limits: limits)
    }

    /// Any JSON value at the top level.
    public static func anyValue(limits: JSONLimits = JSONLimits()) -> JSONPrefixState {
        JSONPrefixState(schema: .anyValue, limits: limits)
    }

    // MARK: public queries

    /// Feeds one byte. Returns false when the text plus this byte is not a prefix of any valid
    /// document; the state is then left unchanged.
    @discardableResult
    public mutating func feed(_ byte: UInt8) -> Bool {
        var s = self
        guard s.step(byte) else { return false }
        self = s
        return true
    }

    /// Feeds bytes in order; all or nothing: on false (some byte was refused) the state is unchanged.
    @discardableResult
    public mutating func feed<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        var s = self
        for b in bytes {
            if !s.step(b) { return false }
        }
        self = s
        return true
    }

    /// Whether the text so far followed by `bytes` is still a valid prefix (self is not changed).
    public func accepts<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        var s = self
        for b in bytes {
            if !s.step(b) { return false }
        }
        return true
    }

    /// The text so far is a complete document (only whitespace, or for a top-level number more digits,
    /// may follow). A sampler may end the output (EOS) exactly when this is true.
    public var isComplete: Bool {
        switch mode {
        case .done: return true
        case .number: return depth == 0 && numberMayEnd
        case .literal: return depth == 0 && program.tables.trie.nodes[Int(cursor)].terminal >= 0
        default: return false
        }
    }

    /// The top-level value is closed: nothing but (a few) whitespace bytes may follow.
    public var isFinished: Bool { mode == .done }

    /// Open objects and arrays.
    public var nestingDepth: Int { Int(depth) }

    // MARK: the transition function

    @inline(__always)
    var numberMayEnd: Bool { numPhase == 2 || numPhase == 3 || numPhase == 5 || numPhase == 8 }

    @inline(__always)
    private mutating func whitespace() -> Bool {
        if ws >= program.maxWhitespace { return false }
        ws &+= 1
        return true
    }

    /// One byte; false if refused (the state is then unspecified: callers work on copies).
    @inline(__always)
    mutating func step(_ b: UInt8) -> Bool {
        while true {
            switch mode {
            case .string:
                return stringByte(b)
            case .number:
                switch numberByte(b) {
                case 1: return true
                case 0: return false
                default: finishValue()  // the number ended before b: read b in the new mode
                }
            case .literal:
                let trie = program.tables.trie
                let c = trie.child(cursor, b)
                if c >= 0 {
                    cursor = c
                    if trie.isClosedEnd(c) { finishValue() }
                    return true
                }
                guard trie.nodes[Int(cursor)].terminal >= 0 else { return false }
                finishValue()
            case .value:
                if JSONBytes.isWhitespace(b) { return whitespace() }
                ws = 0
                return startValue(b)
            case .afterValue:
                if JSONBytes.isWhitespace(b) { return whitespace() }
                ws = 0
                return afterValueByte(b)
            case .objectFirst:
                if JSONBytes.isWhitespace(b) { return whitespace() }
                ws = 0
                let spec = program.tables.objects[Int(top.spec)]
                if b == UInt8(ascii: "}") {
                    guard spec.required == 0 else { return false }
                    pop()
                    return true
                }
                guard b == 0x22, spec.allMask != 0 || spec.additional >= 0 else { return false }
                startKey(spec)
                return true
            case .objectKey:
                if JSONBytes.isWhitespace(b) { return whitespace() }
                ws = 0
                guard b == 0x22 else { return false }
                startKey(program.tables.objects[Int(top.spec)])
                return true
            case .colon:
                if JSONBytes.isWhitespace(b) { return whitespace() }
                ws = 0
                guard b == UInt8(ascii: ":") else { return false }
                mode = .value
                valueNode = top.valueNode
                return true
            case .arrayFirst:
                if JSONBytes.isWhitespace(b) { return whitespace() }
                ws = 0
                let spec = program.tables.arrays[Int(top.spec)]
                if b == UInt8(ascii: "]") {
                    guard spec.minItems == 0 else { return false }
                    pop()
                    return true
                }
                guard spec.maxItems > 0 else { return false }
                top.bits = 1
                mode = .value
                valueNode = spec.items
                return startValue(b)
            case .done:
                guard JSONBytes.isWhitespace(b), ws < program.maxTrailing else { return false }
                ws &+= 1
                return true
            }
        }
    }

    /// A value has ended: back to its container, or the document is done.
    @inline(__always)
    mutating func finishValue() {
        mode = depth == 0 ? .done : .afterValue
        ws = 0
    }

    @inline(__always)
    private mutating func push(_ f: Frame) -> Bool {
        guard depth < program.maxDepth else { return false }
        if depth > 0 { outer.append(top) }
        top = f
        depth &+= 1
        return true
    }

    /// Closes the innermost container, which ends a value of the one around it.
    @inline(__always)
    private mutating func pop() {
        depth &-= 1
        top = depth > 0 ? outer.removeLast() : Frame()
        finishValue()
    }

    private mutating func startValue(_ b: UInt8) -> Bool {
        let tables = program.tables
        let node = tables.nodes[Int(valueNode)]
        switch b {
        case UInt8(ascii: "{") where node.objectSpec >= 0:
            guard push(Frame(spec: node.objectSpec, valueNode: -1, bits: 0, isObject: true)) else { return false }
            mode = .objectFirst
            return true
        case UInt8(ascii: "[") where node.arraySpec >= 0:
            guard push(Frame(spec: node.arraySpec, valueNode: -1, bits: 0, isObject: false)) else { return false }
            mode = .arrayFirst
            return true
        case 0x22 where node.hasString:
            mode = .string
            isKey = false
            keyMode = 0
            esc = 0
            utf8 = 0
            high = 0
            count = 0
            strMin = node.stringMin
            strMax = max(min(node.stringMax, program.maxString), node.stringMin)
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            guard node.number != 0 else { break }
            mode = .number
            intOnly = node.number == 1
            if b == UInt8(ascii: "-") { numPhase = 1; count = 0 } else if b == UInt8(ascii: "0") { numPhase = 2; count = 1 } else {
                numPhase = 3; count = 1
            }
            return true
        default:
            break
        }
        guard node.literalRoot >= 0 else { return false }
        let c = tables.trie.child(node.literalRoot, b)
        guard c >= 0 else { return false }
        mode = .literal
        cursor = c
        if tables.trie.isClosedEnd(c) { finishValue() }
        return true
    }

    private mutating func afterValueByte(_ b: UInt8) -> Bool {
        let tables = program.tables
        if top.isObject {
            let spec = tables.objects[Int(top.spec)]
            if b == UInt8(ascii: ",") {
                guard spec.allMask & ~top.bits != 0 || spec.additional >= 0 else { return false }
                mode = .objectKey
                return true
            }
            guard b == UInt8(ascii: "}"), spec.required & ~top.bits == 0 else { return false }
            pop()
            return true
        }
        let spec = tables.arrays[Int(top.spec)]
        if b == UInt8(ascii: ",") {
            guard top.bits < UInt64(spec.maxItems) else { return false }
            top.bits &+= 1
            mode = .value
            valueNode = spec.items
            return true
        }
        guard b == UInt8(ascii: "]"), top.bits >= UInt64(spec.minItems) else { return false }
        pop()
        return true
    }

    @inline(__always)
    private mutating func startKey(_ spec: ObjectSpec) {
        mode = .string
        isKey = true
        esc = 0
        utf8 = 0
        high = 0
        count = 0
        strMin = 0
        strMax = program.maxString
        if spec.keyTrie < 0 {
            keyMode = 0
        } else {
            keyMode = spec.additional >= 0 ? 1 : 2
            cursor = spec.keyTrie
        }
    }

    // MARK: strings

    @inline(__always)
    private mutating func stringByte(_ b: UInt8) -> Bool {
        if esc != 0 { return escapeByte(b) }
        if utf8 != 0 {
            let n = UTF8Scan.next(utf8, b)
            if n == UTF8Scan.invalid { return false }
            utf8 = n
            return keyMode == 0 || keyStep(b)
        }
        if b >= 0x20 && b < 0x80 && b != 0x22 && b != 0x5C {
            if count >= strMax { return false }
            count &+= 1
            return keyMode == 0 || keyStep(b)
        }
        if b == 0x22 { return closeString() }
        if b == 0x5C {
            if count >= strMax { return false }
            if keyMode == 2 && !restrictedEscapePossible() { return false }
            count &+= 1
            esc = 1
            return true
        }
        let n = UTF8Scan.lead(b)  // < 0x20 gives invalid too
        if n == UTF8Scan.invalid || b < 0x80 { return false }
        if count >= strMax { return false }
        count &+= 1
        utf8 = n
        return keyMode == 0 || keyStep(b)
    }

    /// Follows one decoded key byte in the property-name trie.
    @inline(__always)
    private mutating func keyStep(_ b: UInt8) -> Bool {
        let trie = program.tables.trie
        let c = trie.child(cursor, b)
        if keyMode == 1 {
            if c < 0 { keyMode = 0 } else { cursor = c }  // not a declared name: an additional key
            return true
        }
        guard c >= 0, trie.nodes[Int(c)].mask & ~top.bits != 0 else { return false }
        cursor = c
        return true
    }

    /// Declared-names-only keys accept a backslash only where a short escape continues some name.
    private func restrictedEscapePossible() -> Bool {
        let trie = program.tables.trie
        let node = trie.nodes[Int(cursor)]
        for e in Int(node.first)..<Int(node.first + node.count) {
            let b = trie.edgeBytes[e]
            if b == 0x22 || b == 0x5C || b == 0x2F || (b < 0x20 && JSONBytes.shortEscape(b) != nil),
               trie.nodes[Int(trie.edgeTargets[e])].mask & ~top.bits != 0 {
                return true
            }
        }
        return false
    }

    private mutating func emit(_ cp: UInt32) -> Bool {
        guard keyMode != 0 else { return true }
        var bytes: [UInt8] = []
        JSONBytes.appendUTF8(cp, to: &bytes)
        for b in bytes where keyMode != 0 {
            if !keyStep(b) { return false }
        }
        return true
    }

    private mutating func escapeByte(_ b: UInt8) -> Bool {
        switch esc {
        case 1:
            if b == UInt8(ascii: "u") {
                if keyMode == 2 { return false }
                esc = 2
                codeUnit = 0
                return true
            }
            guard let d = JSONBytes.unescape(b) else { return false }
            esc = 0
            return keyMode == 0 || keyStep(d)
        case 2...5:
            guard let v = JSONBytes.hexValue(b) else { return false }
            codeUnit = codeUnit << 4 | UInt32(v)
            if high == 0 {
                // A low surrogate cannot start a pair: refuse \uDC.. to \uDF.. as soon as it shows.
                if esc == 3 && codeUnit >= 0xDC && codeUnit <= 0xDF { return false }
            } else {
                if esc == 2 && codeUnit != 0xD { return false }
                if esc == 3 && (codeUnit < 0xDC || codeUnit > 0xDF) { return false }
            }
            if esc < 5 { esc &+= 1; return true }
            if high == 0 {
                if codeUnit >= 0xD800 && codeUnit <= 0xDBFF {
                    high = UInt16(codeUnit)
                    esc = 6
                    return true
                }
                esc = 0
                return emit(codeUnit)
            }
            let full = 0x10000 + ((UInt32(high) - 0xD800) << 10) + (codeUnit - 0xDC00)
            high = 0
            esc = 0
            return emit(full)
        case 6:
            guard b == 0x5C else { return false }
            esc = 7
            return true
        default:
            guard b == UInt8(ascii: "u") else { return false }
            esc = 2
            codeUnit = 0
            return true
        }
    }

    private mutating func closeString() -> Bool {
        if !isKey {
            guard count >= strMin else { return false }
            finishValue()
            return true
        }
        let spec = program.tables.objects[Int(top.spec)]
        var prop: Int32 = -1
        if keyMode != 0 {
            let t = program.tables.trie.nodes[Int(cursor)].terminal
            if t >= 0 {
                guard top.bits & (UInt64(1) << UInt64(t)) == 0 else { return false }  // given already
                prop = t
            } else if keyMode == 2 {
                return false
            }
        }
        if prop >= 0 {
            top.bits |= UInt64(1) << UInt64(prop)
            top.valueNode = spec.nodes[Int(prop)]
        } else {
            guard spec.additional >= 0 else { return false }
            top.valueNode = spec.additional
        }
        mode = .colon
        ws = 0
        return true
    }

    // MARK: numbers

    /// 1: accepted, 0: refused, 2: the number ended before this byte.
    @inline(__always)
    private mutating func numberByte(_ b: UInt8) -> UInt8 {
        let digit = JSONBytes.isDigit(b)
        switch numPhase {
        case 1:
            guard digit else { return 0 }
            numPhase = b == UInt8(ascii: "0") ? 2 : 3
            count = 1
            return 1
        case 2, 3:
            if digit {
                guard numPhase == 3, count < program.maxIntDigits else { return 0 }
                count &+= 1
                return 1
            }
            if b == UInt8(ascii: ".") {
                guard !intOnly else { return 0 }
                numPhase = 4; count = 0
                return 1
            }
            if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                guard !intOnly else { return 0 }
                numPhase = 6; count = 0
                return 1
            }
            return 2
        case 4:
            guard digit else { return 0 }
            numPhase = 5; count = 1
            return 1
        case 5:
            if digit {
                guard count < program.maxFracDigits else { return 0 }
                count &+= 1
                return 1
            }
            if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                numPhase = 6; count = 0
                return 1
            }
            return 2
        case 6:
            if b == UInt8(ascii: "+") || b == UInt8(ascii: "-") { numPhase = 7; return 1 }
            guard digit else { return 0 }
            numPhase = 8; count = 1
            return 1
        case 7:
            guard digit else { return 0 }
            numPhase = 8; count = 1
            return 1
        default:
            if digit {
                guard count < program.maxExpDigits else { return 0 }
                count &+= 1
                return 1
            }
            return 2
        }
    }

    // MARK: token-trie support

    /// Inside a plain string (no escape pending, keys not being matched), reachable by every suffix made
    /// of plain string bytes valid from UTF-8 state `utf8` whose length fits the remaining characters.
    @inline(__always)
    func acceptsPlainSuffixes(height: UInt32, safeStates: UInt8) -> Bool {
        mode == .string && esc == 0 && keyMode == 0 && (safeStates >> utf8) & 1 != 0 && height <= strMax &- count
    }
}
