// Python's str behaviour on Unicode scalars (Python indexes code points, Swift strings graphemes):
// whitespace as str.isspace() sees it, strip/split/splitlines/replace/find, title() and
// capitalize(), repr() quoting, float repr (shortest round-trip, Python's switch to exponent form),
// HTML escaping as markupsafe does it.

import Foundation

typealias Scalars = [Unicode.Scalar]

extension String {
    var scalars: Scalars { Array(unicodeScalars) }

    init(scalars: some Sequence<Unicode.Scalar>) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        self = String(view)
    }
}

enum PyText {
    /// str.isspace() / the `\s` of Python's re on str.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// The line boundaries of str.splitlines().
    static func isLineBreak(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029: return true
        default: return false
        }
    }

    static func strip(_ s: String, _ chars: String?, left: Bool = true, right: Bool = true) -> String {
        let a = s.scalars
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isSpace(c) }
        var start = 0, end = a.count
        if left { while start < end, strippable(a[start]) { start += 1 } }
        if right { while end > start, strippable(a[end - 1]) { end -= 1 } }
        if start == 0 && end == a.count { return s }
        return String(scalars: a[start..<end])
    }

    /// Index of `needle` in `haystack` at or after `from` (and ending by `end`), or nil.
    static func find(_ haystack: Scalars, _ needle: Scalars, from: Int, end: Int? = nil) -> Int? {
        let limit = min(end ?? haystack.count, haystack.count)
        guard from <= limit else { return nil }
        if needle.isEmpty { return from }
        guard needle.count <= limit - from else { return nil }
        var i = from
        while i + needle.count <= limit {
            if haystack[i] == needle[0] {
                var k = 1
                while k < needle.count, haystack[i + k] == needle[k] { k += 1 }
                if k == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    static func rfind(_ haystack: Scalars, _ needle: Scalars, from: Int = 0, end: Int? = nil) -> Int? {
        let limit = min(end ?? haystack.count, haystack.count)
        guard from <= limit, needle.count <= limit - from else { return nil }
        var i = limit - needle.count
        while i >= from {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
            i -= 1
        }
        return nil
    }

    static func count(_ haystack: Scalars, _ needle: Scalars) -> Int {
        if needle.isEmpty { return haystack.count + 1 }
        var n = 0
        var i = 0
        while let j = find(haystack, needle, from: i) {
            n += 1
            i = j + needle.count
        }
        return n
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int = -1) -> String {
        let a = s.scalars, o = old.scalars, n = new.scalars
        var out = Scalars()
        var replaced = 0
        if o.isEmpty {
            // Python inserts `new` before every character and at the end.
            for c in a {
                if count < 0 || replaced < count { out += n; replaced += 1 }
                out.append(c)
            }
            if count < 0 || replaced < count { out += n }
            return String(scalars: out)
        }
        var i = 0
        while i < a.count {
            if count >= 0 && replaced >= count { break }
            guard let j = find(a, o, from: i) else { break }
            out += a[i..<j]
            out += n
            i = j + o.count
            replaced += 1
        }
        out += a[i...]
        return String(scalars: out)
    }

    /// str.split(sep, maxsplit).
    static func split(_ s: String, _ sep: String?, maxsplit: Int = -1) throws -> [String] {
        let a = s.scalars
        guard let sep else {
            var parts: [String] = []
            var i = 0
            while true {
                while i < a.count, isSpace(a[i]) { i += 1 }
                if i >= a.count { break }
                if maxsplit >= 0 && parts.count >= maxsplit {
                    var end = a.count
                    while end > i, isSpace(a[end - 1]) { end -= 1 }
                    parts.append(String(scalars: a[i..<end]))
                    break
                }
                let start = i
                while i < a.count, !isSpace(a[i]) { i += 1 }
                parts.append(String(scalars: a[start..<i]))
            }
            return parts
        }
        let p = sep.scalars
        if p.isEmpty { throw PyOps.valueError("empty separator") }
        var parts: [String] = []
        var i = 0
        while maxsplit < 0 || parts.count < maxsplit, let j = find(a, p, from: i) {
            parts.append(String(scalars: a[i..<j]))
            i = j + p.count
        }
        parts.append(String(scalars: a[i...]))
        return parts
    }

    /// str.rsplit(sep, maxsplit).
    static func rsplit(_ s: String, _ sep: String?, maxsplit: Int = -1) throws -> [String] {
        if maxsplit < 0 { return try split(s, sep, maxsplit: -1) }
        let a = s.scalars
        guard let sep else {
            var parts: [String] = []
            var i = a.count
            while true {
                while i > 0, isSpace(a[i - 1]) { i -= 1 }
                if i <= 0 { break }
                if parts.count >= maxsplit {
                    var start = 0
                    while start < i, isSpace(a[start]) { start += 1 }
                    parts.append(String(scalars: a[start..<i]))
                    break
                }
                let end = i
                while i > 0, !isSpace(a[i - 1]) { i -= 1 }
                parts.append(String(scalars: a[i..<end]))
            }
            return parts.reversed()
        }
        let p = sep.scalars
        if p.isEmpty { throw PyOps.valueError("empty separator") }
        var parts: [String] = []
        var end = a.count
        while parts.count < maxsplit, let j = rfind(a, p, from: 0, end: end) {
            parts.append(String(scalars: a[(j + p.count)..<end]))
            end = j
        }
        parts.append(String(scalars: a[0..<end]))
        return parts.reversed()
    }

    static func splitlines(_ s: String, keepends: Bool = false) -> [String] {
        let a = s.scalars
        var lines: [String] = []
        var start = 0
        var i = 0
        while i < a.count {
            if isLineBreak(a[i]) {
                var end = i + 1
                if a[i] == "\r", i + 1 < a.count, a[i + 1] == "\n" { end = i + 2 }
                lines.append(String(scalars: a[start..<(keepends ? end : i)]))
                start = end
                i = end
            } else {
                i += 1
            }
        }
        if start < a.count { lines.append(String(scalars: a[start...])) }
        return lines
    }

    static func upper(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars { out += c.properties.uppercaseMapping }
        return out
    }

    static func lower(_ s: String) -> String {
        let a = s.scalars
        var out = ""
        for i in a.indices { out += lowerAt(a, i) }
        return out
    }

    /// The lowercase of a[i], with Python's final-sigma rule for U+03A3.
    static func lowerAt(_ a: Scalars, _ i: Int) -> String {
        let c = a[i]
        guard c == "\u{03A3}" else { return c.properties.lowercaseMapping }
        var j = i - 1
        while j >= 0, a[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0, a[j].properties.isCased else { return "\u{03C3}" }
        var k = i + 1
        while k < a.count, a[k].properties.isCaseIgnorable { k += 1 }
        if k < a.count, a[k].properties.isCased { return "\u{03C3}" }
        return "\u{03C2}"
    }

    /// str.title(): a cased character after a cased one is lowered, any other is title-cased.
    static func title(_ s: String) -> String {
        let a = s.scalars
        var out = ""
        var previousCased = false
        for i in a.indices {
            out += previousCased ? lowerAt(a, i) : a[i].properties.titlecaseMapping
            previousCased = a[i].properties.isCased
        }
        return out
    }

    /// str.capitalize(): first character title-cased, the rest lowered.
    static func capitalize(_ s: String) -> String {
        let a = s.scalars
        var out = ""
        for i in a.indices {
            out += i == 0 ? a[i].properties.titlecaseMapping : lowerAt(a, i)
        }
        return out
    }

    static func swapcase(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            if c.properties.isUppercase { out += c.properties.lowercaseMapping }
            else if c.properties.isLowercase { out += c.properties.uppercaseMapping }
            else { out.unicodeScalars.append(c) }
        }
        return out
    }

    /// jinja2's `title` filter: split at runs of `-`, whitespace, `(`, `{`, `[`, `<`; each piece
    /// gets its first character upper-cased and the rest lowered.
    static func jinjaTitle(_ s: String) -> String {
        func isSeparator(_ c: Unicode.Scalar) -> Bool { c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || isSpace(c) }
        var out = ""
        var piece = Scalars()
        var pieceIsSeparator = false
        func flush() {
            guard let first = piece.first else { return }
            out += first.properties.uppercaseMapping
            out += lower(String(scalars: piece.dropFirst()))
            piece.removeAll()
        }
        for c in s.unicodeScalars {
            let sep = isSeparator(c)
            if !piece.isEmpty && sep != pieceIsSeparator { flush() }
            pieceIsSeparator = sep
            piece.append(c)
        }
        flush()
        return out
    }

    static func isPrintable(_ c: Unicode.Scalar) -> Bool {
        if c == " " { return true }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return false
        default:
            return true
        }
    }

    /// repr() of a str.
    static func repr(_ s: String) -> String {
        let hasSingle = s.unicodeScalars.contains("'")
        let hasDouble = s.unicodeScalars.contains("\"")
        let quote: Unicode.Scalar = (hasSingle && !hasDouble) ? "\"" : "'"
        var out = String(quote)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if c == quote {
                    out += "\\" + String(c)
                } else if c.value < 0x20 || c.value == 0x7F {
                    out += "\\x" + hex(c.value, 2)
                } else if c.value < 0x7F || isPrintable(c) {
                    out.unicodeScalars.append(c)
                } else if c.value <= 0xFF {
                    out += "\\x" + hex(c.value, 2)
                } else if c.value <= 0xFFFF {
                    out += "\\u" + hex(c.value, 4)
                } else {
                    out += "\\U" + hex(c.value, 8)
                }
            }
        }
        out.unicodeScalars.append(quote)
        return out
    }

    static func hex(_ v: UInt32, _ width: Int) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }

    /// markupsafe.escape on a plain string.
    static func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Python's repr(float): the shortest round-trip digits, positional when the decimal
    /// exponent is in [-4, 16), otherwise d.ddde±XX.
    static func floatRepr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        let (digits, decpt) = shortestDigits(abs(d))
        let sign = d < 0 ? "-" : ""
        if decpt > -4 && decpt <= 16 {
            if decpt <= 0 {
                return sign + "0." + String(repeating: "0", count: -decpt) + digits
            }
            if decpt >= digits.count {
                return sign + digits + String(repeating: "0", count: decpt - digits.count) + ".0"
            }
            let cut = digits.index(digits.startIndex, offsetBy: decpt)
            return sign + digits[..<cut] + "." + digits[cut...]
        }
        var mantissa = String(digits.prefix(1))
        if digits.count > 1 { mantissa += "." + digits.dropFirst() }
        let e = decpt - 1
        let expDigits = String(abs(e))
        return sign + mantissa + "e" + (e < 0 ? "-" : "+") + (expDigits.count < 2 ? "0" + expDigits : expDigits)
    }

    /// Shortest round-trip digits of a positive finite double and the decimal point position:
    /// value = 0.DIGITS × 10^decpt.
    static func shortestDigits(_ d: Double) -> (String, Int) {
        let text = d.description  // Swift prints the shortest round-trip representation
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let intPart = parts[0]
        let fracPart = parts.count > 1 ? parts[1] : ""
        var digits = String(intPart) + String(fracPart)
        var decpt = intPart.count + exponent
        while digits.first == "0" {
            digits.removeFirst()
            decpt -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        if digits.isEmpty { digits = "0" }
        return (digits, decpt)
    }
}
