// Python's html.unescape, which open_clip's SimpleTokenizer applies twice to every text before BPE
// ("fish &amp; chips" is tokenized as "fish & chips"). The same pattern, &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?
// |[^\t\n\f <&#;]{1,32};?), and the same replacements: numeric references with Python's remapping of
// invalid ones (windows-1252 for 0x80-0x9f, U+FFFD for surrogates and out-of-range values, nothing for
// the code points it drops), named references from the HTML5 table, and for an unknown name the
// longest known prefix. The tables are Resources/html_unescape.tsv (scripts/fixtures/html_entities.py).
import Foundation

enum HTMLUnescape {
    struct Tables {
        var named: [String: String] = [:]
        var remapped: [UInt32: String] = [:]
        var dropped: [ClosedRange<UInt32>] = []
    }

    static let tables: Tables = {
        var t = Tables()
        guard let url = Bundle.module.url(forResource: "html_unescape", withExtension: "tsv", subdirectory: "Resources"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            // A broken install: say so once rather than silently tokenizing entities differently.
            FileHandle.standardError.write(Data("ex2: warning: html_unescape.tsv is missing from the Tokenizers resources; HTML entities in open_clip texts are left as they are\n".utf8))
            return t
        }
        func chars(_ hex: Substring) -> String {
            String(String.UnicodeScalarView(hex.split(separator: " ").compactMap { UInt32($0, radix: 16).flatMap(Unicode.Scalar.init) }))
        }
        for line in text.split(separator: "\n") where !line.hasPrefix("# ") {
            if line.hasPrefix("!") {
                let r = line.dropFirst().split(separator: "-").compactMap { UInt32($0) }
                if r.count == 2 { t.dropped.append(r[0]...r[1]) }
                continue
            }
            let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            if parts[0].hasPrefix("#"), let n = UInt32(parts[0].dropFirst()) {
                t.remapped[n] = chars(parts[1])
            } else {
                t.named[String(parts[0])] = chars(parts[1])
            }
        }
        return t
    }()

    /// Whether the shipped table loaded (it always does in a complete install).
    static var isAvailable: Bool { !tables.named.isEmpty }

    static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        let t = tables
        let u = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        func isDigit(_ c: Unicode.Scalar) -> Bool { ("0"..."9").contains(c) }
        func isHex(_ c: Unicode.Scalar) -> Bool { isDigit(c) || ("a"..."f").contains(c) || ("A"..."F").contains(c) }
        while i < u.count {
            guard u[i] == "&", i + 1 < u.count else { out.append(u[i]); i += 1; continue }
            var j = i + 1
            if u[j] == "#" {
                // Numeric: decimal, or hexadecimal after x/X; at least one digit, then an optional ';'.
                var k = j + 1
                let hex = k < u.count && (u[k] == "x" || u[k] == "X")
                if hex { k += 1 }
                let digitsStart = k
                while k < u.count && (hex ? isHex(u[k]) : isDigit(u[k])) { k += 1 }
                guard k > digitsStart else { out.append(u[i]); i += 1; continue }
                let digits = String(String.UnicodeScalarView(u[digitsStart..<k]))
                if k < u.count && u[k] == ";" { k += 1 }
                let num = UInt32(digits, radix: hex ? 16 : 10) ?? UInt32.max   // too long for UInt32: out of range
                if let r = t.remapped[num] {
                    out.append(contentsOf: r.unicodeScalars)
                } else if (0xD800...0xDFFF).contains(num) || num > 0x10FFFF {
                    out.append("\u{FFFD}")
                } else if t.dropped.contains(where: { $0.contains(num) }) {
                    // dropped
                } else if let c = Unicode.Scalar(num) {
                    out.append(c)
                }
                i = k
                continue
            }
            // Named: up to 32 characters that are not \t \n \f space < & # ;, then an optional ';'.
            var k = j
            while k < u.count && k - j < 32 && !["\t", "\n", "\u{0C}", " ", "<", "&", "#", ";"].contains(u[k]) { k += 1 }
            guard k > j else { out.append(u[i]); i += 1; continue }
            if k < u.count && u[k] == ";" { k += 1 }
            let scalars = Array(u[j..<k])
            // Names are ASCII and Python compares code points; Swift's String equality is canonical
            // equivalence (U+037E equals ';'), so only ASCII prefixes are ever looked up.
            let ascii = scalars.prefix { $0.isASCII }.count
            let name = String(String.UnicodeScalarView(scalars))
            if ascii == scalars.count, let v = t.named[name] {
                out.append(contentsOf: v.unicodeScalars)
            } else {
                // The longest known prefix (at least 2 characters), the rest kept as text.
                var matched = false
                var x = min(scalars.count - 1, ascii)
                while x > 1 {
                    let prefix = String(String.UnicodeScalarView(scalars[0..<x]))
                    if let v = t.named[prefix] {
                        out.append(contentsOf: v.unicodeScalars)
                        out.append(contentsOf: scalars[x...])
                        matched = true
                        break
                    }
                    x -= 1
                }
                if !matched { out.append("&"); out.append(contentsOf: scalars) }
            }
            j = k
            i = j
        }
        return String(out)
    }
}
