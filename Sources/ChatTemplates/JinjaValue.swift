// The public data model handed to templates: JSON-like values whose objects keep their key order
// (Python dicts do, and `tojson` / `dict.items()` output depends on it), plus an order-preserving
// JSON reader so request bodies and fixtures keep the order they were written in.

import Foundation

/// A value a template can see: what Python would hold after `json.loads`.
public indirect enum JinjaValue: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    /// A mapping; keys keep their order (as a Python dict does).
    case object([(String, JinjaValue)])
}

extension JinjaValue: Equatable {
    /// Python equality: numbers compare by value (`1 == 1.0`), strings by code points,
    /// objects as dicts (same keys, equal values, order ignored).
    public static func == (lhs: JinjaValue, rhs: JinjaValue) -> Bool {
        switch (lhs, rhs) {
        case (.none, .none): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.int(a), .double(b)), let (.double(b), .int(a)): return Double(a) == b
        case let (.bool(a), .int(b)), let (.int(b), .bool(a)): return (a ? 1 : 0) == b
        case let (.bool(a), .double(b)), let (.double(b), .bool(a)): return (a ? 1.0 : 0.0) == b
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                guard let other = b.first(where: { $0.0.unicodeScalars.elementsEqual(key.unicodeScalars) }),
                      other.1 == value else { return false }
            }
            return true
        default: return false
        }
    }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    /// Dictionary literals keep the order they are written in.
    public init(dictionaryLiteral elements: (String, JinjaValue)...) { self = .object(elements) }
    public init(nilLiteral: ()) { self = .none }
}

extension JinjaValue {
    /// The value under `key` when this is an object.
    public subscript(key: String) -> JinjaValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.first(where: { $0.0.unicodeScalars.elementsEqual(key.unicodeScalars) })?.1
    }

    /// The string when this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Reads JSON text, keeping object key order; integers without fraction or exponent become
    /// `.int` (as Python's json does), everything else numeric `.double`.
    public init(jsonText: String) throws {
        var reader = JSONReader(bytes: Array(jsonText.utf8))
        self = try reader.readDocument()
    }

    /// Reads JSON bytes (UTF-8), keeping object key order.
    public init(jsonData: Data) throws {
        var reader = JSONReader(bytes: Array(jsonData))
        self = try reader.readDocument()
    }

    /// Serializes as Python's `json.dumps(value, ensure_ascii=ensureASCII, indent=indent)` would (", "
    /// and ": " separators, or "," and ": " with an indent) — with the defaults, the text the `tojson`
    /// filter produces; `ensureASCII: true` is json.dumps' own default.
    public func jsonString(indent: Int? = nil, ensureASCII: Bool = false) -> String {
        let options = JSONDumpOptions(ensureASCII: ensureASCII, indent: indent.map { String(repeating: " ", count: $0) },
                                      itemSeparator: nil, keySeparator: nil, sortKeys: false)
        // Public values are always serializable.
        return (try? pythonJSONDumps(ChatTemplates.Value(self), options)) ?? "null"
    }
}

/// A small order-preserving JSON reader (RFC 8259).
struct JSONReader {
    let bytes: [UInt8]
    var pos = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func readDocument() throws -> JinjaValue {
        skipWhitespace()
        let value = try readValue(depth: 0)
        skipWhitespace()
        guard pos == bytes.count else { throw fail("unexpected data after the JSON value") }
        return value
    }

    func fail(_ message: String) -> ChatTemplateError {
        ChatTemplateError(kind: .value, message: "invalid JSON at byte \(pos): \(message)")
    }

    mutating func skipWhitespace() {
        while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
    }

    mutating func readValue(depth: Int) throws -> JinjaValue {
        guard depth < 512 else { throw fail("nesting too deep") }
        guard pos < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            pos += 1
            var pairs: [(String, JinjaValue)] = []
            skipWhitespace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
            while true {
                skipWhitespace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try readString()
                skipWhitespace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                pos += 1
                skipWhitespace()
                let value = try readValue(depth: depth + 1)
                // Python keeps the last value for a repeated key, at the first key's position.
                if let existing = pairs.firstIndex(where: { $0.0.unicodeScalars.elementsEqual(key.unicodeScalars) }) {
                    pairs[existing].1 = value
                } else {
                    pairs.append((key, value))
                }
                skipWhitespace()
                guard pos < bytes.count else { throw fail("unexpected end of input in an object") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            pos += 1
            var items: [JinjaValue] = []
            skipWhitespace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try readValue(depth: depth + 1))
                skipWhitespace()
                guard pos < bytes.count else { throw fail("unexpected end of input in an array") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try readString())
        case UInt8(ascii: "t"):
            try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"):
            try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"):
            try expectWord("null"); return .none
        case UInt8(ascii: "N"):
            try expectWord("NaN"); return .double(.nan)
        case UInt8(ascii: "I"):
            try expectWord("Infinity"); return .double(.infinity)
        default:
            return try readNumber()
        }
    }

    mutating func expectWord(_ word: String) throws {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, Array(bytes[pos..<pos + w.count]) == w else {
            throw fail("unexpected character")
        }
        pos += w.count
    }

    mutating func readNumber() throws -> JinjaValue {
        let start = pos
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "-") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "I") {
                try expectWord("Infinity"); return .double(-.infinity)
            }
        }
        var isInteger = true
        func digits() -> Int {
            var n = 0
            while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 { pos += 1; n += 1 }
            return n
        }
        guard digits() > 0 else { throw fail("unexpected character") }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            pos += 1; isInteger = false
            guard digits() > 0 else { throw fail("expected digits after '.'") }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            pos += 1; isInteger = false
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            guard digits() > 0 else { throw fail("expected exponent digits") }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if isInteger, let i = Int(text) { return .int(i) }
        guard let d = Double(text) else { throw fail("bad number \(text)") }
        return .double(d)
    }

    mutating func readHex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("bad \\u escape")
            }
            v = v * 16 + d
            pos += 1
        }
        return v
    }

    mutating func readString() throws -> String {
        pos += 1  // opening quote
        var out = String.UnicodeScalarView()
        var runStart = pos
        func flushRun() {
            if runStart < pos { out.append(contentsOf: String(decoding: bytes[runStart..<pos], as: UTF8.self).unicodeScalars) }
        }
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                flushRun(); pos += 1
                return String(out)
            }
            if c == UInt8(ascii: "\\") {
                flushRun()
                pos += 1
                guard pos < bytes.count else { throw fail("unterminated string") }
                let e = bytes[pos]
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append("\"")
                case UInt8(ascii: "\\"): out.append("\\")
                case UInt8(ascii: "/"): out.append("/")
                case UInt8(ascii: "b"): out.append("\u{08}")
                case UInt8(ascii: "f"): out.append("\u{0C}")
                case UInt8(ascii: "n"): out.append("\n")
                case UInt8(ascii: "r"): out.append("\r")
                case UInt8(ascii: "t"): out.append("\t")
                case UInt8(ascii: "u"):
                    var code = try readHex4()
                    if (0xD800...0xDBFF).contains(code), pos + 1 < bytes.count,
                       bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
                        let save = pos
                        pos += 2
                        let low = try readHex4()
                        if (0xDC00...0xDFFF).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            pos = save
                        }
                    }
                    // A lone surrogate cannot live in a Swift string.
                    out.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default: throw fail("bad escape")
                }
                runStart = pos
                continue
            }
            guard c >= 0x20 else { throw fail("control character in string") }
            pos += 1
        }
    }
}
