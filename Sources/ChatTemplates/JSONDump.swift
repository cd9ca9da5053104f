// Python's json.dumps, which transformers' `tojson` filter calls: separators ", " / ": " (","
// and ": " once an indent is given), ensure_ascii off by default (only `"`, `\` and control
// characters escaped), floats as Python's repr (NaN / Infinity allowed), dict keys that are
// numbers, booleans or None turned into strings, tuples as arrays.

struct JSONDumpOptions {
    var ensureASCII: Bool
    /// nil: everything on one line.
    var indent: String?
    var itemSeparator: String?
    var keySeparator: String?
    var sortKeys: Bool
}

func pythonJSONDumps(_ value: Value, _ options: JSONDumpOptions) throws -> String {
    var out = ""
    let itemSeparator = options.itemSeparator ?? (options.indent == nil ? ", " : ",")
    let keySeparator = options.keySeparator ?? ": "
    try dumpJSON(value, options, itemSeparator, keySeparator, level: 0, into: &out)
    return out
}

private func jsonString(_ s: String, ensureASCII: Bool) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        default:
            if c.value < 0x20 || (ensureASCII && c.value > 0x7E) {
                if c.value > 0xFFFF {
                    let v = c.value - 0x10000
                    out += "\\u" + PyText.hex(0xD800 + (v >> 10), 4) + "\\u" + PyText.hex(0xDC00 + (v & 0x3FF), 4)
                } else {
                    out += "\\u" + PyText.hex(c.value, 4)
                }
            } else {
                out.unicodeScalars.append(c)
            }
        }
    }
    return out + "\""
}

private func jsonFloat(_ d: Double) -> String {
    if d.isNaN { return "NaN" }
    if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
    return PyText.floatRepr(d)
}

private func dumpJSON(_ value: Value, _ options: JSONDumpOptions, _ itemSeparator: String, _ keySeparator: String,
                      level: Int, into out: inout String) throws
{
    func newline(_ depth: Int) -> String {
        guard let indent = options.indent else { return "" }
        return "\n" + String(repeating: indent, count: depth)
    }
    switch value {
    case .none: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .int(let i): out += String(i)
    case .double(let d): out += jsonFloat(d)
    case .string(let s), .markup(let s): out += jsonString(s, ensureASCII: options.ensureASCII)
    case .list(let items), .tuple(let items):
        if items.isEmpty { out += "[]"; return }
        out += "[" + newline(level + 1)
        for (i, item) in items.enumerated() {
            if i > 0 { out += itemSeparator + newline(level + 1) }
            try dumpJSON(item, options, itemSeparator, keySeparator, level: level + 1, into: &out)
        }
        out += newline(level) + "]"
    case .dict(let d):
        if d.count == 0 { out += "{}"; return }
        var pairs = Array(zip(d.keys, d.values))
        if options.sortKeys {
            var failure: Error?
            pairs.sort { a, b in
                do { return try PyOps.compare(a.0, b.0, "<") < 0 } catch { failure = error; return false }
            }
            if let failure { throw failure }
        }
        out += "{" + newline(level + 1)
        for (i, (k, v)) in pairs.enumerated() {
            if i > 0 { out += itemSeparator + newline(level + 1) }
            let key: String
            switch k {
            case .string(let s), .markup(let s): key = s
            case .none: key = "null"
            case .bool(let b): key = b ? "true" : "false"
            case .int(let n): key = String(n)
            case .double(let x): key = jsonFloat(x)
            default: throw PyOps.typeError("keys must be str, int, float, bool or None, not \(k.typeName)")
            }
            out += jsonString(key, ensureASCII: options.ensureASCII) + keySeparator
            try dumpJSON(v, options, itemSeparator, keySeparator, level: level + 1, into: &out)
        }
        out += newline(level) + "}"
    default:
        throw PyOps.typeError("Object of type \(value.typeName) is not JSON serializable")
    }
}
