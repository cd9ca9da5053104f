// The lexer: template source to tokens, with jinja2's whitespace rules as transformers configures
// them (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
//  - `{%- ... -%}`, `{{- ... -}}`, `{#- ... -#}` strip all whitespace on that side;
//  - lstrip_blocks: spaces/tabs between a line start and a `{%` or `{#` (not `{{`) are removed,
//    unless the tag opens with `{%+`;
//  - trim_blocks: one newline right after `%}` or `#}` is removed, unless the tag closes with `+%}`;
//  - \r\n and \r become \n, and one trailing newline of the source is dropped.
// Comments vanish here; `{% raw %}` bodies come out as plain text.

struct SourcePos: Sendable, Equatable {
    var line: Int
    var column: Int
}

enum TokenKind: Equatable, Sendable {
    case data
    case variableBegin, variableEnd
    case blockBegin, blockEnd
    case name, string, integer, float, op
    case eof
}

struct Token: Sendable {
    var kind: TokenKind
    /// Text for data / name / string (unescaped) / op tokens.
    var text: String = ""
    var intValue: Int = 0
    var doubleValue: Double = 0
    var pos: SourcePos

    var describe: String {
        switch kind {
        case .data: return "template data"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name: return "'\(text)'"
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .op: return "'\(text)'"
        case .eof: return "end of template"
        }
    }
}

struct Lexer {
    private let src: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    private var pos = 0
    private var tokens: [Token] = []
    /// Whether the last consumed piece ended with a newline (jinja2's `line_starting`).
    private var lineStarting = true

    init(_ source: String) {
        // Normalize newlines and drop one trailing newline (keep_trailing_newline=False).
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(source.unicodeScalars.count)
        var it = source.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = it.next()
        while let c = pending {
            pending = it.next()
            if c == "\r" {
                if pending == "\n" { pending = it.next() }
                scalars.append("\n")
            } else {
                scalars.append(c)
            }
        }
        if scalars.last == "\n" { scalars.removeLast() }
        src = scalars
        for (i, c) in src.enumerated() where c == "\n" { lineStarts.append(i + 1) }
    }

    static func tokenize(_ source: String) throws -> [Token] {
        var lexer = Lexer(source)
        try lexer.run()
        return lexer.tokens
    }

    private func position(_ offset: Int) -> SourcePos {
        // Binary search for the line containing offset.
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return SourcePos(line: lo + 1, column: offset - lineStarts[lo] + 1)
    }

    private func syntaxError(_ message: String, at offset: Int) -> ChatTemplateError {
        let p = position(offset)
        return ChatTemplateError(kind: .syntax, message: message, line: p.line, column: p.column)
    }

    private func at(_ i: Int) -> Unicode.Scalar? { i < src.count ? src[i] : nil }

    private func matches(_ literal: String, at i: Int) -> Bool {
        var j = i
        for c in literal.unicodeScalars {
            guard j < src.count, src[j] == c else { return false }
            j += 1
        }
        return true
    }

    private func skipSpaces(from i: Int) -> Int {
        var j = i
        while j < src.count, PyText.isSpace(src[j]) { j += 1 }
        return j
    }

    private enum TagKind { case variable, block, comment, raw }

    private struct TagStart {
        var kind: TagKind
        var start: Int
        var sign: Unicode.Scalar?
        /// Index just after the opening delimiter (and sign); for raw, after the whole `{% raw %}`.
        var contentStart: Int
    }

    /// If a `{% raw %}` opener starts at i, the index after it.
    private func rawOpener(at i: Int) -> (sign: Unicode.Scalar?, end: Int)? {
        guard matches("{%", at: i) else { return nil }
        var j = i + 2
        var sign: Unicode.Scalar?
        if let c = at(j), c == "-" || c == "+" { sign = c; j += 1 }
        j = skipSpaces(from: j)
        guard matches("raw", at: j) else { return nil }
        j = skipSpaces(from: j + 3)
        if matches("-%}", at: j) { return (sign, skipSpaces(from: j + 3)) }
        if matches("%}", at: j) { return (sign, j + 2) }
        return nil
    }

    private func findTag(from start: Int) -> TagStart? {
        var i = start
        while i + 1 < src.count {
            if src[i] == "{" {
                let next = src[i + 1]
                if next == "%", let raw = rawOpener(at: i) {
                    return TagStart(kind: .raw, start: i, sign: raw.sign, contentStart: raw.end)
                }
                let kind: TagKind?
                switch next {
                case "{": kind = .variable
                case "%": kind = .block
                case "#": kind = .comment
                default: kind = nil
                }
                if let kind {
                    var j = i + 2
                    var sign: Unicode.Scalar?
                    if let c = at(j), c == "-" || c == "+" { sign = c; j += 1 }
                    return TagStart(kind: kind, start: i, sign: sign, contentStart: j)
                }
            }
            i += 1
        }
        return nil
    }

    /// Applies `-` stripping or lstrip_blocks to the text before a tag.
    private func stripText(_ text: ArraySlice<Unicode.Scalar>, sign: Unicode.Scalar?, isVariable: Bool)
        -> ArraySlice<Unicode.Scalar>
    {
        if sign == "-" {
            var end = text.endIndex
            while end > text.startIndex, PyText.isSpace(text[end - 1]) { end -= 1 }
            return text[text.startIndex..<end]
        }
        if sign != "+" && !isVariable {
            let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? text.startIndex
            if lineStart > text.startIndex || lineStarting {
                let tail = text[lineStart...]
                if !tail.isEmpty && tail.allSatisfy(PyText.isSpace) {
                    return text[text.startIndex..<lineStart]
                }
            }
        }
        return text
    }

    private mutating func emitData(_ text: ArraySlice<Unicode.Scalar>, at offset: Int) {
        guard !text.isEmpty else { return }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: text)
        tokens.append(Token(kind: .data, text: String(view), pos: position(offset)))
    }

    private mutating func run() throws {
        while pos < src.count {
            guard let tag = findTag(from: pos) else {
                emitData(src[pos...], at: pos)
                pos = src.count
                break
            }
            let text = stripText(src[pos..<tag.start], sign: tag.sign, isVariable: tag.kind == .variable)
            emitData(text, at: pos)
            switch tag.kind {
            case .comment:
                pos = try endOfComment(from: tag.contentStart, tagStart: tag.start)
                lineStarting = src[pos - 1] == "\n"
            case .raw:
                lineStarting = src[tag.contentStart - 1] == "\n"
                try lexRaw(tag)
            case .variable:
                tokens.append(Token(kind: .variableBegin, pos: position(tag.start)))
                pos = tag.contentStart
                try lexInsideTag(isBlock: false)
            case .block:
                tokens.append(Token(kind: .blockBegin, pos: position(tag.start)))
                pos = tag.contentStart
                try lexInsideTag(isBlock: true)
            }
        }
        tokens.append(Token(kind: .eof, pos: position(src.count)))
    }

    /// Index after the comment's closing `#}` (with its whitespace handling).
    private func endOfComment(from start: Int, tagStart: Int) throws -> Int {
        var i = start
        while i < src.count {
            if src[i] == "+", matches("#}", at: i + 1) { return i + 3 }
            if src[i] == "-", matches("#}", at: i + 1) { return skipSpaces(from: i + 3) }
            if matches("#}", at: i) {
                return at(i + 2) == "\n" ? i + 3 : i + 2
            }
            i += 1
        }
        throw syntaxError("Missing end of comment tag", at: tagStart)
    }

    private mutating func lexRaw(_ tag: TagStart) throws {
        var i = tag.contentStart
        while i < src.count {
            if matches("{%", at: i) {
                var j = i + 2
                var sign: Unicode.Scalar?
                if let c = at(j), c == "-" || c == "+" { sign = c; j += 1 }
                j = skipSpaces(from: j)
                if matches("endraw", at: j) {
                    j = skipSpaces(from: j + 6)
                    var end: Int?
                    if matches("+%}", at: j) { end = j + 3 }
                    else if matches("-%}", at: j) { end = skipSpaces(from: j + 3) }
                    else if matches("%}", at: j) { end = at(j + 2) == "\n" ? j + 3 : j + 2 }
                    if let end {
                        let text = stripText(src[tag.contentStart..<i], sign: sign, isVariable: false)
                        emitData(text, at: tag.contentStart)
                        pos = end
                        lineStarting = src[end - 1] == "\n"
                        return
                    }
                }
            }
            i += 1
        }
        throw syntaxError("Missing end of raw directive", at: tag.start)
    }

    private mutating func lexInsideTag(isBlock: Bool) throws {
        var balance: [Unicode.Scalar] = []
        while true {
            guard pos < src.count else { return }  // the parser reports the missing end
            if balance.isEmpty {
                if isBlock {
                    if matches("+%}", at: pos) {
                        tokens.append(Token(kind: .blockEnd, pos: position(pos)))
                        pos += 3
                        lineStarting = false
                        return
                    }
                    if matches("-%}", at: pos) {
                        tokens.append(Token(kind: .blockEnd, pos: position(pos)))
                        pos = skipSpaces(from: pos + 3)
                        lineStarting = src[pos - 1] == "\n"
                        return
                    }
                    if matches("%}", at: pos) {
                        tokens.append(Token(kind: .blockEnd, pos: position(pos)))
                        pos += 2
                        if at(pos) == "\n" { pos += 1 }
                        lineStarting = src[pos - 1] == "\n"
                        return
                    }
                } else {
                    if matches("-}}", at: pos) {
                        tokens.append(Token(kind: .variableEnd, pos: position(pos)))
                        pos = skipSpaces(from: pos + 3)
                        lineStarting = src[pos - 1] == "\n"
                        return
                    }
                    if matches("}}", at: pos) {
                        tokens.append(Token(kind: .variableEnd, pos: position(pos)))
                        pos += 2
                        lineStarting = false
                        return
                    }
                }
            }
            let c = src[pos]
            if PyText.isSpace(c) {
                pos = skipSpaces(from: pos)
                continue
            }
            let start = pos
            if let (end, value) = matchFloat(at: pos) {
                tokens.append(Token(kind: .float, doubleValue: value, pos: position(start)))
                pos = end
                continue
            }
            if let (end, value) = try matchInteger(at: pos) {
                tokens.append(Token(kind: .integer, intValue: value, pos: position(start)))
                pos = end
                continue
            }
            if isNameStart(c) {
                var j = pos + 1
                while j < src.count, isNameContinue(src[j]) { j += 1 }
                var view = String.UnicodeScalarView()
                view.append(contentsOf: src[pos..<j])
                tokens.append(Token(kind: .name, text: String(view), pos: position(start)))
                pos = j
                continue
            }
            if c == "'" || c == "\"", let end = stringEnd(at: pos) {
                let body = src[(pos + 1)..<(end - 1)]
                let text = try unescape(body, at: pos)
                tokens.append(Token(kind: .string, text: text, pos: position(start)))
                pos = end
                continue
            }
            if let op = matchOperator(at: pos) {
                switch op {
                case "{": balance.append("}")
                case "(": balance.append(")")
                case "[": balance.append("]")
                case "}", ")", "]":
                    guard let expected = balance.popLast() else {
                        throw syntaxError("unexpected '\(op)'", at: pos)
                    }
                    if String(expected) != op {
                        throw syntaxError("unexpected '\(op)', expected '\(expected)'", at: pos)
                    }
                default: break
                }
                tokens.append(Token(kind: .op, text: op, pos: position(start)))
                pos += op.unicodeScalars.count
                continue
            }
            throw syntaxError("unexpected char \(PyText.repr(String(c))) at \(pos)", at: pos)
        }
    }

    private func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }

    private func isNameStart(_ c: Unicode.Scalar) -> Bool {
        c == "_" || (c.value < 0x80 ? ((c.value | 0x20) >= 0x61 && (c.value | 0x20) <= 0x7A) : c.properties.isXIDStart)
    }

    private func isNameContinue(_ c: Unicode.Scalar) -> Bool {
        isNameStart(c) || isDigit(c) || (c.value >= 0x80 && c.properties.isXIDContinue)
    }

    /// `(\d+_)*\d+` starting at i: the end index, or nil.
    private func digitRun(at i: Int) -> Int? {
        guard let c = at(i), isDigit(c) else { return nil }
        var j = i
        while true {
            while let d = at(j), isDigit(d) { j += 1 }
            if at(j) == "_", let d = at(j + 1), isDigit(d) { j += 1; continue }
            return j
        }
    }

    /// jinja2's float_re: digits with a fraction and/or an exponent, not preceded by '.'.
    private func matchFloat(at i: Int) -> (Int, Double)? {
        if i > 0, src[i - 1] == "." { return nil }
        guard let intEnd = digitRun(at: i) else { return nil }
        func exponent(at k: Int) -> Int? {
            guard let e = at(k), e == "e" || e == "E" else { return nil }
            var m = k + 1
            if let s = at(m), s == "+" || s == "-" { m += 1 }
            return digitRun(at: m)
        }
        var end: Int?
        if at(intEnd) == ".", let fracEnd = digitRun(at: intEnd + 1) {
            end = exponent(at: fracEnd) ?? fracEnd
        } else if let expEnd = exponent(at: intEnd) {
            end = expEnd
        }
        guard let end else { return nil }
        var text = ""
        for c in src[i..<end] where c != "_" { text.unicodeScalars.append(c) }
        guard let value = Double(text) else { return nil }
        return (end, value)
    }

    /// jinja2's integer_re: 0b / 0o / 0x prefixed, or decimal.
    private func matchInteger(at i: Int) throws -> (Int, Int)? {
        guard let c = at(i), isDigit(c) else { return nil }
        func prefixed(_ radix: Int, _ valid: (Unicode.Scalar) -> Bool) -> (Int, String)? {
            var j = i + 2
            var digits = ""
            while true {
                if let d = at(j), valid(d) { digits.unicodeScalars.append(d); j += 1; continue }
                if at(j) == "_", let d = at(j + 1), valid(d) { digits.unicodeScalars.append(d); j += 2; continue }
                break
            }
            return digits.isEmpty ? nil : (j, digits)
        }
        var end = i
        var digits = ""
        var radix = 10
        if c == "0", let p = at(i + 1) {
            let lower = Unicode.Scalar(p.value | 0x20) ?? p
            if lower == "b", let r = prefixed(2, { $0 == "0" || $0 == "1" }) { (end, digits) = r; radix = 2 }
            else if lower == "o", let r = prefixed(8, { $0.value >= 0x30 && $0.value <= 0x37 }) { (end, digits) = r; radix = 8 }
            else if lower == "x", let r = prefixed(16, { $0.properties.isASCIIHexDigit }) { (end, digits) = r; radix = 16 }
        }
        if digits.isEmpty {
            if c == "0" {
                // 0(_?0)*
                end = i + 1
                while true {
                    if at(end) == "0" { end += 1; continue }
                    if at(end) == "_", at(end + 1) == "0" { end += 2; continue }
                    break
                }
                return (end, 0)
            }
            // [1-9](_?\d)*
            end = i
            while true {
                if let d = at(end), isDigit(d) { digits.unicodeScalars.append(d); end += 1; continue }
                if at(end) == "_", let d = at(end + 1), isDigit(d) { digits.unicodeScalars.append(d); end += 2; continue }
                break
            }
        }
        guard let value = Int(digits, radix: radix) else {
            throw syntaxError("integer literal \(digits) is too large", at: i)
        }
        return (end, value)
    }

    /// The index after the closing quote of a string literal starting at i, or nil if unterminated.
    private func stringEnd(at i: Int) -> Int? {
        let quote = src[i]
        var j = i + 1
        while j < src.count {
            if src[j] == "\\" { j += 2; continue }
            if src[j] == quote { return j + 1 }
            j += 1
        }
        return nil
    }

    /// Python's "unicode-escape" decoding, as jinja2 applies it to string literals.
    private func unescape(_ body: ArraySlice<Unicode.Scalar>, at offset: Int) throws -> String {
        var out = String.UnicodeScalarView()
        var i = body.startIndex
        func hex(_ count: Int, _ what: String) throws -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<count {
                guard i + 1 + k < body.endIndex, let d = hexValue(body[i + 1 + k]) else {
                    throw syntaxError("truncated \\\(what) escape", at: offset)
                }
                v = v * 16 + d
            }
            i += 1 + count
            return v
        }
        var pendingHigh: UInt32?
        func appendCode(_ v: UInt32) throws {
            if (0xD800...0xDBFF).contains(v) { pendingHigh = v; return }
            if (0xDC00...0xDFFF).contains(v), let high = pendingHigh {
                pendingHigh = nil
                out.append(Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (v - 0xDC00))!)
                return
            }
            guard let s = Unicode.Scalar(v) else {
                if v > 0x10FFFF { throw syntaxError("illegal Unicode character", at: offset) }
                out.append("\u{FFFD}")  // lone surrogate
                return
            }
            out.append(s)
        }
        while i < body.endIndex {
            let c = body[i]
            // A high surrogate not followed by a \u escape stays alone: no Swift scalar for it.
            if pendingHigh != nil, !(c == "\\" && i + 1 < body.endIndex && body[i + 1] == "u") {
                pendingHigh = nil
                out.append("\u{FFFD}")
            }
            guard c == "\\", i + 1 < body.endIndex else {
                out.append(c); i += 1; continue
            }
            let e = body[i + 1]
            switch e {
            case "\n": i += 2
            case "\\": out.append("\\"); i += 2
            case "'": out.append("'"); i += 2
            case "\"": out.append("\""); i += 2
            case "a": out.append("\u{07}"); i += 2
            case "b": out.append("\u{08}"); i += 2
            case "f": out.append("\u{0C}"); i += 2
            case "n": out.append("\n"); i += 2
            case "r": out.append("\r"); i += 2
            case "t": out.append("\t"); i += 2
            case "v": out.append("\u{0B}"); i += 2
            case "x":
                i += 1
                try appendCode(try hex(2, "xXX"))
            case "u":
                i += 1
                try appendCode(try hex(4, "uXXXX"))
            case "U":
                i += 1
                try appendCode(try hex(8, "UXXXXXXXX"))
            case "0"..."7":
                var v: UInt32 = 0
                var k = i + 1
                while k < body.endIndex, k < i + 4, let d = octalValue(body[k]) { v = v * 8 + d; k += 1 }
                i = k
                try appendCode(v)
            case "N":
                throw ChatTemplateError(kind: .unsupported, message: "\\N{...} escapes are not supported",
                                        line: position(offset).line, column: position(offset).column)
            default:
                out.append("\\"); i += 1  // unknown escapes stay as written
            }
        }
        if pendingHigh != nil { out.append("\u{FFFD}") }
        return String(out)
    }

    private func hexValue(_ c: Unicode.Scalar) -> UInt32? {
        switch c.value {
        case 0x30...0x39: return c.value - 0x30
        case 0x41...0x46: return c.value - 0x41 + 10
        case 0x61...0x66: return c.value - 0x61 + 10
        default: return nil
        }
    }

    private func octalValue(_ c: Unicode.Scalar) -> UInt32? {
        (0x30...0x37).contains(c.value) ? c.value - 0x30 : nil
    }

    private static let twoCharOperators: [String] = ["//", "**", "==", "!=", ">=", "<="]
    private static let oneCharOperators: Set<Unicode.Scalar> = [
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    private func matchOperator(at i: Int) -> String? {
        for op in Lexer.twoCharOperators where matches(op, at: i) { return op }
        if Lexer.oneCharOperators.contains(src[i]) { return String(src[i]) }
        return nil
    }
}
