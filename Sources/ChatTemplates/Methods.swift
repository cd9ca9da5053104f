// Python methods templates may call on values: str methods (strip, split, startswith, format, ...),
// dict methods (items, keys, values, get, copy) and list/tuple methods (index, count). Methods
// that would mutate a list or dict are refused as ImmutableSandboxedEnvironment refuses them:
// the attribute is an Undefined that fails with a security error when called.

enum Methods {
    static let unsafeListMethods: Set<String> = ["append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove"]
    static let unsafeDictMethods: Set<String> = ["clear", "pop", "popitem", "setdefault", "update"]

    static func hasPythonAttribute(_ object: Value, _ name: String) -> Bool {
        name.hasPrefix("__") && name.hasSuffix("__")
    }

    /// The bound method `object.name`, an unsafe-attribute Undefined, or nil when there is none.
    static func attribute(of object: Value, _ name: String) throws -> Value? {
        switch object {
        case .string(let s): return stringMethod(s, name, markup: false)
        case .markup(let s): return stringMethod(s, name, markup: true)
        case .dict(let d):
            if unsafeDictMethods.contains(name) { return Renderer.unsafeAttribute(object, name) }
            return dictMethod(d, name)
        case .list(let items):
            if unsafeListMethods.contains(name) { return Renderer.unsafeAttribute(object, name) }
            if name == "copy" { return method(name) { _, args in _ = try ArgBinder(name, args, []); return .list(items) } }
            return sequenceMethod(items, name)
        case .tuple(let items):
            return sequenceMethod(items, name)
        default:
            return nil
        }
    }

    private static func method(_ name: String, _ body: @escaping (Renderer, CallArguments) throws -> Value) -> Value {
        .function(FunctionBox(name, body))
    }

    private static func dictMethod(_ d: PyDict, _ name: String) -> Value? {
        switch name {
        case "items":
            return method(name) { _, args in _ = try ArgBinder(name, args, []); return .list(d.items) }
        case "keys":
            return method(name) { _, args in _ = try ArgBinder(name, args, []); return .list(d.keys) }
        case "values":
            return method(name) { _, args in _ = try ArgBinder(name, args, []); return .list(d.values) }
        case "get":
            return method(name) { _, args in
                guard args.keyword.isEmpty else { throw PyOps.typeError("get() takes no keyword arguments") }
                let b = try ArgBinder(name, args, ["key", "default"], required: 1)
                try Renderer.checkHashable(b[0]!)
                return d[b[0]!] ?? b[1] ?? .none
            }
        case "copy":
            return method(name) { _, args in _ = try ArgBinder(name, args, []); return .dict(d) }
        default:
            return nil
        }
    }

    private static func sequenceMethod(_ items: [Value], _ name: String) -> Value? {
        switch name {
        case "index":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["value", "start", "stop"], required: 1)
                let (start, stop) = try clampRange(b, 1, 2, items.count)
                if start < stop, let i = items[start..<stop].firstIndex(where: { PyOps.equals($0, b[0]!) }) { return .int(i) }
                throw PyOps.valueError("\(PyRepr.repr(b[0]!)) is not in list")
            }
        case "count":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["value"], required: 1)
                return .int(items.filter { PyOps.equals($0, b[0]!) }.count)
            }
        default:
            return nil
        }
    }

    /// Python's start/end argument handling for find/index/count/startswith.
    private static func clampRange(_ b: ArgBinder, _ startIndex: Int, _ endIndex: Int, _ count: Int) throws -> (Int, Int) {
        func norm(_ v: Int) -> Int { v < 0 ? max(0, v + count) : min(v, count) }
        let start = norm(try b.int(startIndex, default: 0))
        let end = norm(try b.int(endIndex, default: count))
        return (start, end)
    }

    private static func stringMethod(_ s: String, _ name: String, markup: Bool) -> Value? {
        func wrap(_ text: String) -> Value { markup ? .markup(text) : .string(text) }
        func stringArg(_ v: Value, _ what: String) throws -> String {
            guard let text = v.stringContent else { throw PyOps.typeError("\(what) must be str, not \(v.typeName)") }
            return text
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["chars"])
                let chars = try b.optional(0).map { try stringArg($0, "\(name) arg") }
                return wrap(PyText.strip(s, chars, left: name != "rstrip", right: name != "lstrip"))
            }
        case "split", "rsplit":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["sep", "maxsplit"])
                let sep = try b.optional(0).map { try stringArg($0, "sep") }
                let maxsplit = try b.int(1, default: -1)
                let parts = name == "split" ? try PyText.split(s, sep, maxsplit: maxsplit) : try PyText.rsplit(s, sep, maxsplit: maxsplit)
                return .list(parts.map(wrap))
            }
        case "splitlines":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["keepends"])
                return .list(PyText.splitlines(s, keepends: b.bool(0, default: false)).map(wrap))
            }
        case "startswith", "endswith":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["prefix", "start", "end"], required: 1)
                let a = s.scalars
                let (start, end) = try clampRange(b, 1, 2, a.count)
                let candidates: [Value]
                switch b[0]! {
                case .tuple(let items): candidates = items
                case let v where v.stringContent != nil: candidates = [v]
                case let v: throw PyOps.typeError("\(name) first arg must be str or a tuple of str, not \(v.typeName)")
                }
                for c in candidates {
                    let p = try stringArg(c, "tuple for \(name)").scalars
                    guard start <= end, p.count <= end - start else { continue }
                    let window = name == "startswith" ? a[start..<(start + p.count)] : a[(end - p.count)..<end]
                    if Array(window) == p { return .bool(true) }
                }
                return .bool(false)
            }
        case "upper": return method(name) { _, args in _ = try ArgBinder(name, args, []); return wrap(PyText.upper(s)) }
        case "lower", "casefold": return method(name) { _, args in _ = try ArgBinder(name, args, []); return wrap(PyText.lower(s)) }
        case "title": return method(name) { _, args in _ = try ArgBinder(name, args, []); return wrap(PyText.title(s)) }
        case "capitalize": return method(name) { _, args in _ = try ArgBinder(name, args, []); return wrap(PyText.capitalize(s)) }
        case "swapcase": return method(name) { _, args in _ = try ArgBinder(name, args, []); return wrap(PyText.swapcase(s)) }
        case "replace":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["old", "new", "count"], required: 2)
                let old = try stringArg(b[0]!, "replace() argument 1")
                let new = try stringArg(b[1]!, "replace() argument 2")
                let replacement = markup && b[1]!.isPlainString ? PyText.htmlEscape(new) : new
                return wrap(PyText.replace(s, old, replacement, count: try b.int(2, default: -1)))
            }
        case "find", "rfind", "index", "rindex", "count":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["sub", "start", "end"], required: 1)
                let a = s.scalars
                let sub = try stringArg(b[0]!, "must be str").scalars
                let (start, end) = try clampRange(b, 1, 2, a.count)
                if name == "count" {
                    guard start <= end else { return .int(0) }
                    return .int(PyText.count(Array(a[start..<end]), sub))
                }
                let found = name.hasPrefix("r") ? PyText.rfind(a, sub, from: start, end: end) : PyText.find(a, sub, from: start, end: end)
                if let found { return .int(found) }
                if name.hasSuffix("index") { throw PyOps.valueError("substring not found") }
                return .int(-1)
            }
        case "join":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["iterable"], required: 1)
                var parts: [String] = []
                for (i, item) in try PyOps.iterate(b[0]!).enumerated() {
                    guard let text = item.stringContent else {
                        throw PyOps.typeError("sequence item \(i): expected str instance, \(item.typeName) found")
                    }
                    parts.append(markup && item.isPlainString ? PyText.htmlEscape(text) : text)
                }
                return wrap(parts.joined(separator: s))
            }
        case "format":
            return method(name) { renderer, args in
                var arguments = args
                if markup {
                    arguments.positional = args.positional.map { $0.isPlainString ? .string(PyText.htmlEscape($0.stringContent!)) : $0 }
                }
                return wrap(try PyFormat.format(s, arguments, renderer: renderer))
            }
        case "isalpha", "isdigit", "isdecimal", "isnumeric", "isalnum", "isspace", "islower", "isupper", "istitle":
            return method(name) { _, args in
                _ = try ArgBinder(name, args, [])
                return .bool(classify(s, name))
            }
        case "zfill":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["width"], required: 1)
                let width = try b.int(0, default: 0)
                var a = s.scalars
                guard width > a.count else { return wrap(s) }
                let pad = Scalars(repeating: "0", count: width - a.count)
                if let first = a.first, first == "+" || first == "-" { a.insert(contentsOf: pad, at: 1) } else { a.insert(contentsOf: pad, at: 0) }
                return wrap(String(scalars: a))
            }
        case "ljust", "rjust", "center":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["width", "fillchar"], required: 1)
                let width = try b.int(0, default: 0)
                let fill = try b.optional(1).map { try stringArg($0, "fillchar") } ?? " "
                guard fill.unicodeScalars.count == 1 else { throw PyOps.typeError("The fill character must be exactly one character long") }
                return wrap(pad(s, width, fill, name))
            }
        case "partition", "rpartition":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["sep"], required: 1)
                let sep = try stringArg(b[0]!, "sep").scalars
                if sep.isEmpty { throw PyOps.valueError("empty separator") }
                let a = s.scalars
                let found = name == "partition" ? PyText.find(a, sep, from: 0) : PyText.rfind(a, sep)
                guard let i = found else {
                    return name == "partition" ? .tuple([wrap(s), wrap(""), wrap("")]) : .tuple([wrap(""), wrap(""), wrap(s)])
                }
                return .tuple([wrap(String(scalars: a[..<i])), wrap(String(scalars: sep)), wrap(String(scalars: a[(i + sep.count)...]))])
            }
        case "removeprefix", "removesuffix":
            return method(name) { _, args in
                let b = try ArgBinder(name, args, ["affix"], required: 1)
                let affix = try stringArg(b[0]!, "\(name)() argument").scalars
                let a = s.scalars
                if name == "removeprefix", a.starts(with: affix) { return wrap(String(scalars: a.dropFirst(affix.count))) }
                if name == "removesuffix", !affix.isEmpty, a.count >= affix.count, Array(a.suffix(affix.count)) == affix {
                    return wrap(String(scalars: a.dropLast(affix.count)))
                }
                return wrap(s)
            }
        default:
            return nil
        }
    }

    static func pad(_ s: String, _ width: Int, _ fill: String, _ how: String) -> String {
        let count = s.unicodeScalars.count
        guard width > count else { return s }
        let total = width - count
        switch how {
        case "ljust": return s + String(repeating: fill, count: total)
        case "rjust": return String(repeating: fill, count: total) + s
        default:
            // CPython's center puts the extra character on the left when the padding is odd
            // and the width is odd.
            let left = total / 2 + (total & width & 1)
            return String(repeating: fill, count: left) + s + String(repeating: fill, count: total - left)
        }
    }

    static func classify(_ s: String, _ name: String) -> Bool {
        let a = s.scalars
        func isAlpha(_ c: Unicode.Scalar) -> Bool {
            switch c.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
            default: return false
            }
        }
        func isDecimal(_ c: Unicode.Scalar) -> Bool { c.properties.generalCategory == .decimalNumber }
        func isDigit(_ c: Unicode.Scalar) -> Bool { c.properties.numericType == .decimal || c.properties.numericType == .digit }
        func isNumeric(_ c: Unicode.Scalar) -> Bool { c.properties.numericType != nil }
        switch name {
        case "isalpha": return !a.isEmpty && a.allSatisfy(isAlpha)
        case "isdecimal": return !a.isEmpty && a.allSatisfy(isDecimal)
        case "isdigit": return !a.isEmpty && a.allSatisfy(isDigit)
        case "isnumeric": return !a.isEmpty && a.allSatisfy(isNumeric)
        case "isalnum": return !a.isEmpty && a.allSatisfy { isAlpha($0) || isDecimal($0) || isDigit($0) || isNumeric($0) }
        case "isspace": return !a.isEmpty && a.allSatisfy(PyText.isSpace)
        case "islower":
            var cased = false
            for c in a {
                if c.properties.isUppercase || c.properties.generalCategory == .titlecaseLetter { return false }
                if c.properties.isLowercase { cased = true }
            }
            return cased
        case "isupper":
            var cased = false
            for c in a {
                if c.properties.isLowercase || c.properties.generalCategory == .titlecaseLetter { return false }
                if c.properties.isUppercase { cased = true }
            }
            return cased
        case "istitle":
            var cased = false
            var previousCased = false
            for c in a {
                let upperOrTitle = c.properties.isUppercase || c.properties.generalCategory == .titlecaseLetter
                if upperOrTitle {
                    if previousCased { return false }
                    previousCased = true; cased = true
                } else if c.properties.isLowercase {
                    if !previousCased { return false }
                    previousCased = true; cased = true
                } else {
                    previousCased = false
                }
            }
            return cased
        default: return false
        }
    }
}

extension Value {
    var isPlainString: Bool {
        if case .string = self { return true }
        return false
    }
}
