// open_clip's text cleaning for its HFTokenizer (tokenizer_kwargs "clean"): every text goes through
// basic_clean = ftfy.fix_text, html.unescape twice, strip; then
// - "whitespace" (the default): whitespace runs become one space;
// - "lower": the same, lower-cased;
// - "canonicalize" (SigLIP, MetaCLIP 2's mT5 configs): "_" -> " ", string.punctuation removed, lower-cased,
//   whitespace runs collapsed.
// ftfy.fix_text is reproduced step for step, in its order and repeated until nothing changes, except its
// mojibake repair (fix_encoding), which only changes text that was decoded with the wrong codec: HTML entities
// when the text has no "<" (not the upper-cased entity names), C1 controls read as windows-1252, Latin
// ligatures and digraphs, full/half-width forms (NFKC of U+FF01-U+FFEF, U+3000 -> space), curly quotes,
// line breaks, ANSI terminal escapes, invisible control characters, then NFC.
import Foundation

public enum OpenCLIPTextClean: String, Sendable, CaseIterable {
    case whitespace, lower, canonicalize

    public func apply(_ text: String) -> String {
        let basic = Self.strip(HTMLUnescape.unescape(HTMLUnescape.unescape(Self.fixText(text))))
        switch self {
        case .whitespace: return Self.collapseWhitespace(basic)
        case .lower: return Self.collapseWhitespace(basic).lowercased()
        case .canonicalize:
            let punctuation = Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".unicodeScalars)
            var s = String.UnicodeScalarView()
            for u in basic.replacingOccurrences(of: "_", with: " ").unicodeScalars where !punctuation.contains(u) { s.append(u) }
            return Self.collapseWhitespace(String(s).lowercased())
        }
    }

    /// Python's " ".join(s.split()): runs of str.isspace characters become one space, none at either end.
    static func collapseWhitespace(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        var pendingSpace = false
        for u in s.unicodeScalars {
            if SiglipTokenizer.isPythonWhitespace(u) {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(u)
            }
        }
        return String(out)
    }

    /// Python's str.strip(): str.isspace characters off both ends.
    static func strip(_ s: String) -> String {
        let u = Array(s.unicodeScalars)
        guard let a = u.firstIndex(where: { !SiglipTokenizer.isPythonWhitespace($0) }),
              let b = u.lastIndex(where: { !SiglipTokenizer.isPythonWhitespace($0) }) else { return "" }
        return String(String.UnicodeScalarView(u[a...b]))
    }

    // MARK: ftfy.fix_text

    static func fixText(_ input: String) -> String {
        let unescape = !input.contains("<")
        var text = input
        for _ in 0..<16 {  // ftfy loops until a pass changes nothing; a few passes always suffice
            let before = text
            if unescape { text = unescapeEntities(text) }
            text = mapScalars(text) { u in
                let v = u.value
                if (0x80...0x9F).contains(v) { return windows1252[Int(v - 0x80)].map { String($0) } ?? String(u) }
                return nil
            }
            text = mapScalars(text) { ligatures[$0.value] }
            text = mapScalars(text) { u in
                if u.value == 0x3000 { return " " }
                guard (0xFF01...0xFFEF).contains(u.value) else { return nil }
                let n = String(u).precomposedStringWithCompatibilityMapping
                return n == String(u) ? nil : n
            }
            text = mapScalars(text) { u in
                switch u.value {
                case 0x02BC, 0x2018...0x201B: return "'"
                case 0x201C...0x201F: return "\""
                default: return nil
                }
            }
            text = text.replacingOccurrences(of: "\r\n", with: "\n")
            text = mapScalars(text) { u in [0x0D, 0x2028, 0x2029, 0x85].contains(u.value) ? "\n" : nil }
            text = removeTerminalEscapes(text)
            text = mapScalars(text) { u in isControl(u.value) ? "" : nil }
            text = text.precomposedStringWithCanonicalMapping
            if text == before { break }
        }
        return text
    }

    /// Replaces each scalar for which `f` returns a string; `unicodeScalars` keeps "\r\n" apart, unlike Characters.
    private static func mapScalars(_ s: String, _ f: (Unicode.Scalar) -> String?) -> String {
        var out = String.UnicodeScalarView()
        var changed = false
        for u in s.unicodeScalars {
            if let r = f(u) { out.append(contentsOf: r.unicodeScalars); changed = true } else { out.append(u) }
        }
        return changed ? String(out) : s
    }

    /// ftfy's unescape_html: each `&#?[0-9A-Za-z]{1,24};` that html.unescape decodes completely.
    private static func unescapeEntities(_ s: String) -> String {
        guard s.contains("&") else { return s }
        let ns = s as NSString
        var out = ""
        var last = 0
        for m in entityRegex.matches(in: s, range: NSRange(location: 0, length: ns.length)) {
            out += ns.substring(with: NSRange(location: last, length: m.range.location - last))
            let entity = ns.substring(with: m.range)
            let decoded = HTMLUnescape.unescape(entity)
            out += decoded.contains(";") ? entity : decoded
            last = m.range.location + m.range.length
        }
        out += ns.substring(from: last)
        return out
    }

    nonisolated(unsafe) private static let entityRegex = try! NSRegularExpression(pattern: "&#?[0-9A-Za-z]{1,24};")
    nonisolated(unsafe) private static let ansiRegex = try! NSRegularExpression(pattern: "\u{1B}\\[((?:\\d|;)*)([a-zA-Z])")

    private static func removeTerminalEscapes(_ s: String) -> String {
        guard s.unicodeScalars.contains("\u{1B}") else { return s }
        return ansiRegex.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: "")
    }

    /// ftfy's remove_control_chars set.
    private static func isControl(_ v: UInt32) -> Bool {
        switch v {
        case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: return true
        default: return false
        }
    }

    /// ftfy's LIGATURES table.
    private static let ligatures: [UInt32: String] = [
        0x0132: "IJ", 0x0133: "ij", 0x0149: "\u{02BC}n", 0x01F1: "DZ", 0x01F2: "Dz", 0x01F3: "dz",
        0x01C4: "D\u{017D}", 0x01C5: "D\u{017E}", 0x01C6: "d\u{017E}", 0x01C7: "LJ", 0x01C8: "Lj", 0x01C9: "lj",
        0x01CA: "NJ", 0x01CB: "Nj", 0x01CC: "nj", 0xFB00: "ff", 0xFB01: "fi", 0xFB02: "fl", 0xFB03: "ffi",
        0xFB04: "ffl", 0xFB05: "\u{017F}t", 0xFB06: "st",
    ]

    /// windows-1252 for 0x80-0x9F ("sloppy": the five undefined bytes keep their C1 code point, nil here).
    private static let windows1252: [Unicode.Scalar?] = [
        "\u{20AC}", nil, "\u{201A}", "\u{0192}", "\u{201E}", "\u{2026}", "\u{2020}", "\u{2021}",
        "\u{02C6}", "\u{2030}", "\u{0160}", "\u{2039}", "\u{0152}", nil, "\u{017D}", nil,
        nil, "\u{2018}", "\u{2019}", "\u{201C}", "\u{201D}", "\u{2022}", "\u{2013}", "\u{2014}",
        "\u{02DC}", "\u{2122}", "\u{0161}", "\u{203A}", "\u{0153}", nil, "\u{017E}", "\u{0178}",
    ]
}
