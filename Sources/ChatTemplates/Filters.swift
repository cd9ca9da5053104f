// The filters (`value | name(args)`), each as jinja2 3.1 defines it in filters.py, except
// `tojson`, which is transformers' override: json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False) with no HTML escaping. Filters that return generators in
// jinja2 (select, map, items, unique, reverse, batch, slice, ...) return one-shot iterators here
// too, so `|length` on them fails and they are always truthy, as in Python.

import Foundation

extension Renderer {
    /// soft_str: str() that keeps Markup as Markup.
    func softString(_ v: Value) -> Value {
        switch v {
        case .string, .markup: return v
        default: return .string(PyRepr.str(v))
        }
    }

    private func sameKind(_ template: Value, _ text: String) -> Value {
        if case .markup = template { return .markup(text) }
        return .string(text)
    }

    /// jinja2's make_attrgetter: dotted path, integer parts looked up as integers, via getitem.
    func attributeGetter(_ attribute: Value?, default defaultValue: Value? = nil, lowercase: Bool = false) -> (Value) throws -> Value {
        var parts: [Value] = []
        if let attribute {
            if let text = attribute.stringContent {
                parts = text.split(separator: ".", omittingEmptySubsequences: false).map { part in
                    let p = String(part)
                    if !p.isEmpty, p.unicodeScalars.allSatisfy({ $0.properties.numericType == .decimal }), let i = Int(p) { return .int(i) }
                    return .string(p)
                }
            } else {
                parts = [attribute]
            }
        }
        return { [unowned self] item in
            var value = item
            for part in parts {
                value = try self.getItem(value, part)
                if let defaultValue, !defaultValue.isNone, value.isUndefined { value = defaultValue }
            }
            if lowercase, let text = value.stringContent { return self.sameKind(value, PyText.lower(text)) }
            return value
        }
    }

    /// A sort key for sort/dictsort/min/max/unique: attribute(s) looked up, strings lowered
    /// unless case-sensitive.
    private func sortKeys(_ items: [Value], attribute: Value?, caseSensitive: Bool) throws -> [Value] {
        if let attribute, let text = attribute.stringContent, text.contains(",") {
            let getters = text.split(separator: ",", omittingEmptySubsequences: false).map {
                attributeGetter(.string(String($0)), lowercase: !caseSensitive)
            }
            return try items.map { item in .list(try getters.map { try $0(item) }) }
        }
        let getter = attributeGetter(attribute, lowercase: !caseSensitive)
        return try items.map(getter)
    }

    private func stableSort(_ items: [Value], keys: [Value], reverse: Bool) throws -> [Value] {
        var order = Array(items.indices)
        var failure: Error?
        order.sort { a, b in
            if failure != nil { return a < b }
            do {
                let c = try PyOps.compare(keys[a], keys[b], "<")
                if c == 0 || c == 2 { return a < b }
                return reverse ? c > 0 : c < 0
            } catch {
                failure = error
                return a < b
            }
        }
        if let failure { throw failure }
        return order.map { items[$0] }
    }

    func applyFilter(_ name: String, _ value: Value, _ args: CallArguments, line: Int) throws -> Value {
        switch name {
        case "abs":
            _ = try ArgBinder(name, args, [])
            switch value {
            case .int(let i): if i == Int.min { throw PyOps.valueError("integer overflow") }; return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(abs(d))
            default: throw PyOps.typeError("bad operand type for abs(): '\(value.typeName)'")
            }

        case "attr":
            let b = try ArgBinder(name, args, ["name"], required: 1)
            if case .undefined(let u) = value { throw u.error }
            let attrName = PyRepr.str(b[0]!)
            if let method = try Methods.attribute(of: value, attrName) { return method }
            if case .namespace(let ns) = value, let v = ns.attributes[string: attrName] { return v }
            if case .loop = value { return try getAttribute(value, attrName) }
            return .undefined(UndefinedInfo(objectType: value.objectTypeRepr, name: .string(attrName)))

        case "batch":
            let b = try ArgBinder(name, args, ["linecount", "fill_with"], required: 1)
            let count = try b.int(0, default: 1)
            var batches: [Value] = []
            var current: [Value] = []
            for item in try PyOps.iterate(value) {
                if current.count == count { batches.append(.list(current)); current = [] }
                current.append(item)
            }
            if !current.isEmpty {
                if let fill = b.optional(1), current.count < count {
                    current += [Value](repeating: fill, count: count - current.count)
                }
                batches.append(.list(current))
            }
            return .iterator(IteratorBox(batches))

        case "capitalize", "lower", "upper", "title":
            _ = try ArgBinder(name, args, [])
            let s = softString(value)
            let text = s.stringContent!
            switch name {
            case "capitalize": return sameKind(s, PyText.capitalize(text))
            case "lower": return sameKind(s, PyText.lower(text))
            case "upper": return sameKind(s, PyText.upper(text))
            default: return sameKind(s, PyText.jinjaTitle(text))
            }

        case "center":
            let b = try ArgBinder(name, args, ["width"])
            let s = softString(value)
            return sameKind(s, Methods.pad(s.stringContent!, try b.int(0, default: 80), " ", "center"))

        case "count", "length":
            _ = try ArgBinder(name, args, [])
            return .int(try PyOps.length(value))

        case "d", "default":
            let b = try ArgBinder(name, args, ["default_value", "boolean"])
            if value.isUndefined || (b.bool(1, default: false) && !PyOps.truthy(value)) {
                return b[0] ?? .string("")
            }
            return value

        case "dictsort":
            let b = try ArgBinder(name, args, ["case_sensitive", "by", "reverse"])
            let by = try b.string(1, default: "key") ?? "key"
            guard by == "key" || by == "value" else { throw PyOps.valueError("You can only sort by either \"key\" or \"value\"") }
            guard case .dict(let d) = value else {
                if case .undefined(let u) = value { throw u.error }
                throw PyOps.typeError("'\(value.typeName)' object has no attribute 'items'")
            }
            let items = d.items
            let keyValues = zip(d.keys, d.values).map { by == "key" ? $0 : $1 }
            let keys = b.bool(0, default: false) ? keyValues : keyValues.map { v in
                v.stringContent.map { sameKind(v, PyText.lower($0)) } ?? v
            }
            return .list(try stableSort(items, keys: keys, reverse: b.bool(2, default: false)))

        case "e", "escape":
            _ = try ArgBinder(name, args, [])
            if case .markup = value { return value }
            return .markup(PyText.htmlEscape(PyRepr.str(value)))

        case "forceescape":
            _ = try ArgBinder(name, args, [])
            return .markup(PyText.htmlEscape(PyRepr.str(value)))

        case "first":
            _ = try ArgBinder(name, args, [])
            if case .iterator(let it) = value {
                return it.next() ?? .undefinedHint("No first item, sequence was empty.")
            }
            return try PyOps.iterate(value).first ?? .undefinedHint("No first item, sequence was empty.")

        case "last":
            _ = try ArgBinder(name, args, [])
            switch value {
            case .iterator(let it): throw PyOps.typeError("'\(it.typeName)' object is not reversible")
            case .undefined, .list, .tuple, .dict, .string, .markup:
                return try PyOps.iterate(value).last ?? .undefinedHint("No last item, sequence was empty.")
            default: throw PyOps.typeError("'\(value.typeName)' object is not reversible")
            }

        case "float":
            let b = try ArgBinder(name, args, ["default"])
            let fallback = b[0] ?? .double(0)
            switch value {
            case .undefined(let u): throw u.error
            case .int(let i): return .double(Double(i))
            case .bool(let v): return .double(v ? 1 : 0)
            case .double: return value
            case .string(let s), .markup(let s): return Renderer.parsePythonFloat(s).map { .double($0) } ?? fallback
            default: return fallback
            }

        case "format":
            if !args.positional.isEmpty && !args.keyword.isEmpty {
                throw PyOps.typeError("can't handle positional and keyword arguments at the same time")
            }
            let s = softString(value)
            var formatArgs: Value = .tuple(args.positional)
            if !args.keyword.isEmpty {
                var d = PyDict()
                for (k, v) in args.keyword { d.set(.string(k), v) }
                formatArgs = .dict(d)
            }
            return try PyOps.binary(.mod, s, formatArgs)

        case "indent":
            let b = try ArgBinder(name, args, ["width", "first", "blank"])
            if case .undefined(let u) = value { throw u.error }
            guard let text = value.stringContent else {
                throw PyOps.typeError("unsupported operand type(s) for +=: '\(value.typeName)' and 'str'")
            }
            var indention = "    "
            if let w = b.optional(0) {
                if let ws = w.stringContent { indention = ws } else { indention = String(repeating: " ", count: max(0, try b.int(0, default: 4))) }
            }
            if case .markup = value, let w = b.optional(0), w.isPlainString { indention = PyText.htmlEscape(indention) }
            let lines = PyText.splitlines(text + "\n")
            var result: String
            if b.bool(2, default: false) {
                result = lines.joined(separator: "\n" + indention)
            } else {
                result = lines.first ?? ""
                let rest = lines.dropFirst()
                if !rest.isEmpty {
                    result += "\n" + rest.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
                }
            }
            if b.bool(1, default: false) { result = indention + result }
            return sameKind(value, result)

        case "int":
            let b = try ArgBinder(name, args, ["default", "base"])
            let fallback = b[0] ?? .int(0)
            switch value {
            case .undefined(let u): throw u.error
            case .int: return value
            case .bool(let v): return .int(v ? 1 : 0)
            case .double(let d):
                guard d.isFinite else { throw PyOps.valueError("cannot convert float \(PyText.floatRepr(d)) to integer") }
                guard let i = Int(exactly: d.rounded(.towardZero)) else { throw PyOps.valueError("integer overflow") }
                return .int(i)
            case .string(let s), .markup(let s):
                if let i = Renderer.parsePythonInt(s, base: try b.int(1, default: 10)) { return .int(i) }
                if let d = Renderer.parsePythonFloat(s), d.isFinite, let i = Int(exactly: d.rounded(.towardZero)) { return .int(i) }
                return fallback
            default: return fallback
            }

        case "items":
            _ = try ArgBinder(name, args, [])
            switch value {
            case .undefined: return .iterator(IteratorBox([]))
            case .dict(let d): return .iterator(IteratorBox(d.items))
            default: throw PyOps.typeError("Can only get item pairs from a mapping.")
            }

        case "join":
            let b = try ArgBinder(name, args, ["d", "attribute"])
            let separator = b[0].map(PyRepr.str) ?? ""
            var items = try PyOps.iterate(value)
            if let attribute = b.optional(1) { items = try items.map(attributeGetter(attribute)) }
            return .string(items.map(PyRepr.str).joined(separator: separator))

        case "list":
            _ = try ArgBinder(name, args, [])
            return .list(try PyOps.iterate(value))

        case "map":
            var items: [Value] = []
            if PyOps.truthy(value) {
                let source = try PyOps.iterate(value)
                if args.positional.isEmpty, let attrIndex = args.keyword.firstIndex(where: { $0.0 == "attribute" }) {
                    let attribute = args.keyword[attrIndex].1
                    let defaultValue = args.keyword.first(where: { $0.0 == "default" })?.1
                    if let extra = args.keyword.first(where: { $0.0 != "attribute" && $0.0 != "default" }) {
                        throw PyOps.typeError("Unexpected keyword argument '\(extra.0)'")
                    }
                    let getter = attributeGetter(attribute, default: defaultValue)
                    items = try source.map(getter)
                } else {
                    guard let filterName = args.positional.first?.stringContent else {
                        throw PyOps.typeError("map requires a filter argument")
                    }
                    guard Builtins.filterNames.contains(filterName) else {
                        throw ChatTemplateError(kind: .unknownFilter, message: "No filter named '\(filterName)'.")
                    }
                    let rest = CallArguments(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
                    items = try source.map { try applyFilter(filterName, $0, rest, line: line) }
                }
            }
            return .iterator(IteratorBox(items))

        case "max", "min":
            let b = try ArgBinder(name, args, ["case_sensitive", "attribute"])
            let items = try PyOps.iterate(value)
            guard !items.isEmpty else { return .undefinedHint("No aggregated item, sequence was empty.") }
            let keys = try sortKeys(items, attribute: b.optional(1), caseSensitive: b.bool(0, default: false))
            var best = 0
            for i in 1..<items.count {
                let c = try PyOps.compare(keys[i], keys[best], name == "max" ? ">" : "<")
                if (name == "max" && c == 1) || (name == "min" && c == -1) { best = i }
            }
            return items[best]

        case "reject", "select", "rejectattr", "selectattr":
            var kept: [Value] = []
            if PyOps.truthy(value) {
                let byAttribute = name.hasSuffix("attr")
                var positional = args.positional
                var getter: (Value) throws -> Value = { $0 }
                if byAttribute {
                    guard !positional.isEmpty else { throw PyOps.typeError("Missing parameter for attribute name") }
                    getter = attributeGetter(positional.removeFirst())
                }
                let testName = positional.first.map { PyRepr.str($0) }
                let testArgs = CallArguments(positional: Array(positional.dropFirst()), keyword: args.keyword)
                let wantTrue = name.hasPrefix("select")
                for item in try PyOps.iterate(value) {
                    let probe = try getter(item)
                    let passed = try testName.map { try applyTest($0, probe, testArgs, line: line) } ?? PyOps.truthy(probe)
                    if passed == wantTrue { kept.append(item) }
                }
            }
            return .iterator(IteratorBox(kept))

        case "replace":
            let b = try ArgBinder(name, args, ["old", "new", "count"], required: 2)
            return .string(PyText.replace(PyRepr.str(value), PyRepr.str(b[0]!), PyRepr.str(b[1]!), count: try b.int(2, default: -1)))

        case "reverse":
            _ = try ArgBinder(name, args, [])
            switch value {
            case .string(let s), .markup(let s): return sameKind(value, String(scalars: s.scalars.reversed()))
            case .list(let items): return .iterator(IteratorBox(items.reversed(), typeName: "list_reverseiterator"))
            case .tuple(let items): return .iterator(IteratorBox(items.reversed(), typeName: "reversed"))
            case .dict(let d): return .iterator(IteratorBox(d.keys.reversed(), typeName: "dict_reversekeyiterator"))
            case .undefined: return .iterator(IteratorBox([], typeName: "reversed"))
            default: return .list(try PyOps.iterate(value).reversed())
            }

        case "round":
            let b = try ArgBinder(name, args, ["precision", "method"])
            let precision = try b.int(0, default: 0)
            let method = try b.string(1, default: "common") ?? "common"
            guard ["common", "ceil", "floor"].contains(method) else { throw PyOps.valueError("method must be common, ceil or floor") }
            if case .undefined(let u) = value { throw u.error }
            if method == "common" {
                if let i = PyOps.integer(value), precision >= 0 { return .int(i) }
                guard let d = PyOps.number(value) else { throw PyOps.typeError("type \(value.typeName) doesn't define __round__ method") }
                return .double(Renderer.pythonRound(d, precision))
            }
            guard let d = PyOps.number(value) else { throw PyOps.typeError("must be real number, not \(value.typeName)") }
            let scale = Foundation.pow(10.0, Double(precision))
            let scaled = d * scale
            return .double((method == "ceil" ? scaled.rounded(.up) : scaled.rounded(.down)) / scale)

        case "safe":
            _ = try ArgBinder(name, args, [])
            if case .markup = value { return value }
            return .markup(PyRepr.str(value))

        case "slice":
            let b = try ArgBinder(name, args, ["slices", "fill_with"], required: 1)
            let slices = try b.int(0, default: 1)
            let seq = try PyOps.iterate(value)
            let perSlice = slices > 0 ? seq.count / slices : 0
            let withExtra = slices > 0 ? seq.count % slices : 0
            var offset = 0
            var result: [Value] = []
            for n in 0..<max(slices, 0) {
                let start = offset + n * perSlice
                if n < withExtra { offset += 1 }
                let end = offset + (n + 1) * perSlice
                var part = Array(seq[min(start, seq.count)..<min(end, seq.count)])
                if let fill = b.optional(1), n >= withExtra { part.append(fill) }
                result.append(.list(part))
            }
            return .iterator(IteratorBox(result))

        case "sort":
            let b = try ArgBinder(name, args, ["reverse", "case_sensitive", "attribute"])
            let items = try PyOps.iterate(value)
            let keys = try sortKeys(items, attribute: b.optional(2), caseSensitive: b.bool(1, default: false))
            return .list(try stableSort(items, keys: keys, reverse: b.bool(0, default: false)))

        case "string":
            _ = try ArgBinder(name, args, [])
            return softString(value)

        case "sum":
            let b = try ArgBinder(name, args, ["attribute", "start"])
            var items = try PyOps.iterate(value)
            if let attribute = b.optional(0) { items = try items.map(attributeGetter(attribute)) }
            var total = b[1] ?? .int(0)
            if total.stringContent != nil { throw PyOps.typeError("sum() can't sum strings [use ''.join(seq) instead]") }
            for item in items { total = try PyOps.binary(.add, total, item) }
            return total

        case "tojson":
            let b = try ArgBinder(name, args, ["ensure_ascii", "indent", "separators", "sort_keys"])
            var options = JSONDumpOptions(ensureASCII: b.bool(0, default: false), indent: nil, itemSeparator: nil,
                                          keySeparator: nil, sortKeys: b.bool(3, default: false))
            if let indent = b.optional(1) {
                if let text = indent.stringContent {
                    options.indent = text
                } else if let n = PyOps.integer(indent) {
                    options.indent = String(repeating: " ", count: max(0, n))
                } else {
                    throw PyOps.typeError("indent must be an int or a str, not \(indent.typeName)")
                }
            }
            if let separators = b.optional(2) {
                let parts = try PyOps.iterate(separators)
                guard parts.count == 2, let item = parts[0].stringContent, let key = parts[1].stringContent else {
                    throw PyOps.valueError("separators must be an (item_separator, key_separator) pair of strings")
                }
                options.itemSeparator = item
                options.keySeparator = key
            }
            return .string(try pythonJSONDumps(value, options))

        case "trim":
            let b = try ArgBinder(name, args, ["chars"])
            let s = softString(value)
            let chars = try b.string(0)
            return sameKind(s, PyText.strip(s.stringContent!, chars))

        case "truncate":
            let b = try ArgBinder(name, args, ["length", "killwords", "end", "leeway"])
            let length = try b.int(0, default: 255)
            let end = try b.string(2, default: "...") ?? "..."
            let leeway = try b.int(3, default: 5)
            let endCount = end.unicodeScalars.count
            guard length >= endCount else { throw PyOps.valueError("expected length >= \(endCount), got \(length)") }
            guard leeway >= 0 else { throw PyOps.valueError("expected leeway >= 0, got \(leeway)") }
            if try PyOps.length(value) <= length + leeway { return value }
            guard let text = value.stringContent else { throw PyOps.typeError("'\(value.typeName)' object is not subscriptable") }
            let head = String(scalars: text.scalars.prefix(length - endCount))
            if b.bool(1, default: false) { return .string(head + end) }
            return .string((try PyText.rsplit(head, " ", maxsplit: 1)).first! + end)

        case "unique":
            let b = try ArgBinder(name, args, ["case_sensitive", "attribute"])
            let items = try PyOps.iterate(value)
            let keys = try sortKeys(items, attribute: b.optional(1), caseSensitive: b.bool(0, default: false))
            var seen: [Value] = []
            var kept: [Value] = []
            for (item, key) in zip(items, keys) where !seen.contains(where: { PyOps.equals($0, key) }) {
                try Renderer.checkHashable(key)
                seen.append(key)
                kept.append(item)
            }
            return .iterator(IteratorBox(kept))

        case "wordcount":
            _ = try ArgBinder(name, args, [])
            var count = 0
            var inWord = false
            for c in PyRepr.str(value).unicodeScalars {
                let isWord = c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
                if isWord && !inWord { count += 1 }
                inWord = isWord
            }
            return .int(count)

        case _ where Builtins.unsupportedFilterNames.contains(name):
            throw ChatTemplateError(kind: .unsupported, message: "the '\(name)' filter is not supported", line: line)

        default:
            throw ChatTemplateError(kind: .unknownFilter, message: "No filter named '\(name)'.", line: line)
        }
    }

    /// Python's round(x, n) for floats: correctly rounded, ties to even.
    static func pythonRound(_ d: Double, _ precision: Int) -> Double {
        guard d.isFinite else { return d }
        if precision > 300 { return d }
        if precision >= 0 {
            let text = String(format: "%.\(precision)f", d)
            return Double(text) ?? d
        }
        let scale = Foundation.pow(10.0, Double(-precision))
        return (d / scale).rounded(.toNearestOrEven) * scale
    }

    /// Python's float(str): surrounding whitespace, underscores between digits, inf/nan.
    static func parsePythonFloat(_ s: String) -> Double? {
        let text = PyText.strip(s, nil)
        let lowered = text.lowercased()
        var body = Substring(lowered)
        var sign = 1.0
        if body.first == "+" || body.first == "-" { if body.first == "-" { sign = -1 }; body = body.dropFirst() }
        if body == "inf" || body == "infinity" { return sign * .infinity }
        if body == "nan" { return .nan }
        let chars = Array(body)
        guard !chars.isEmpty else { return nil }
        for (i, c) in chars.enumerated() {
            if c == "_" {
                guard i > 0, i < chars.count - 1, chars[i - 1].isASCII, chars[i - 1].isNumber, chars[i + 1].isASCII, chars[i + 1].isNumber else { return nil }
            } else if !(c.isASCII && (c.isNumber || c == "." || c == "e" || c == "+" || c == "-")) {
                return nil
            }
        }
        let cleaned = String(chars.filter { $0 != "_" })
        guard cleaned.contains(where: { $0.isNumber }), let d = Double(cleaned) else { return nil }
        return sign * d
    }

    /// Python's int(str, base) for bases 0 and 2...36.
    static func parsePythonInt(_ s: String, base: Int) -> Int? {
        var text = Substring(PyText.strip(s, nil))
        var negative = false
        if text.first == "+" || text.first == "-" { negative = text.first == "-"; text = text.dropFirst() }
        var radix = base
        let lower = text.lowercased()
        for (prefix, r) in [("0x", 16), ("0o", 8), ("0b", 2)] where lower.hasPrefix(prefix) && (base == r || base == 0) {
            radix = r
            text = text.dropFirst(2)
            if text.first == "_" { text = text.dropFirst() }
            break
        }
        if radix == 0 {
            radix = 10
            if text.count > 1, text.first == "0", !text.allSatisfy({ $0 == "0" || $0 == "_" }) { return nil }
        }
        guard (2...36).contains(radix), !text.isEmpty, text.first != "_", text.last != "_", !text.contains("__") else { return nil }
        let digits = text.filter { $0 != "_" }
        guard digits.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
        guard let magnitude = Int(digits, radix: radix) else { return nil }
        return negative ? -magnitude : magnitude
    }
}
