// Global functions the environment provides (jinja2's defaults — range, dict, namespace, joiner —
// plus transformers' raise_exception and strftime_now), the names of the filters and tests this
// implementation knows (checked at parse time, as jinja2 does), and argument binding helpers.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Binds positional and keyword arguments to parameter names, Python style.
struct ArgBinder {
    let function: String
    let values: [Value?]
    let extraPositional: [Value]
    let extraKeyword: [(String, Value)]

    init(_ function: String, _ args: CallArguments, _ names: [String], required: Int = 0,
         acceptsExtraPositional: Bool = false, acceptsExtraKeyword: Bool = false) throws
    {
        self.function = function
        var values = [Value?](repeating: nil, count: names.count)
        var extraPositional: [Value] = []
        for (i, v) in args.positional.enumerated() {
            if i < names.count { values[i] = v } else { extraPositional.append(v) }
        }
        if !extraPositional.isEmpty && !acceptsExtraPositional {
            throw PyOps.typeError("\(function)() takes at most \(names.count) argument\(names.count == 1 ? "" : "s") (\(args.positional.count) given)")
        }
        var extraKeyword: [(String, Value)] = []
        for (name, v) in args.keyword {
            if let i = names.firstIndex(of: name) {
                if values[i] != nil { throw PyOps.typeError("\(function)() got multiple values for argument '\(name)'") }
                values[i] = v
            } else if acceptsExtraKeyword {
                extraKeyword.append((name, v))
            } else {
                throw PyOps.typeError("\(function)() got an unexpected keyword argument '\(name)'")
            }
        }
        for i in 0..<required where values[i] == nil {
            throw PyOps.typeError("\(function)() missing required argument '\(names[i])' (pos \(i + 1))")
        }
        self.values = values
        self.extraPositional = extraPositional
        self.extraKeyword = extraKeyword
    }

    subscript(_ i: Int) -> Value? {
        guard let v = values[i] else { return nil }
        return v
    }

    /// The argument, treating an explicit None as absent.
    func optional(_ i: Int) -> Value? {
        guard let v = values[i] else { return nil }
        if case .none = v { return nil }
        return v
    }

    func int(_ i: Int, default d: Int) throws -> Int {
        guard let v = optional(i) else { return d }
        if case .undefined(let u) = v { throw u.error }
        guard let n = PyOps.integer(v) else {
            throw PyOps.typeError("'\(v.typeName)' object cannot be interpreted as an integer")
        }
        return n
    }

    func string(_ i: Int, default d: String? = nil) throws -> String? {
        guard let v = optional(i) else { return d }
        guard let s = v.stringContent else {
            if case .undefined = v { return "" }
            throw PyOps.typeError("\(function)() argument must be str, not \(v.typeName)")
        }
        return s
    }

    func bool(_ i: Int, default d: Bool) -> Bool {
        guard let v = values[i] else { return d }
        return PyOps.truthy(v)
    }
}

enum Builtins {
    static let filterNames: Set<String> = Set([
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "first", "float", "forceescape", "format", "indent", "int", "items", "join", "last", "length", "list",
        "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
        "selectattr", "slice", "sort", "string", "sum", "title", "tojson", "trim", "truncate", "unique", "upper",
        "wordcount",
    ]).union(unsupportedFilterNames)

    /// jinja2 built-ins not implemented here: known (so `is filter` holds and the error says so), but
    /// using one is an `.unsupported` error.
    static let unsupportedFilterNames: Set<String> = [
        "filesizeformat", "groupby", "pprint", "random", "striptags", "urlencode", "urlize", "wordwrap", "xmlattr",
    ]

    static let testNames: Set<String> = [
        "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean", "false", "true",
        "integer", "float", "lower", "upper", "string", "mapping", "number", "sequence", "iterable", "callable",
        "sameas", "escaped", "in", "==", "eq", "equalto", "!=", "ne", ">", "gt", "greaterthan", "ge", ">=", "<",
        "lt", "lessthan", "<=", "le",
    ]

    static func globalFunctions() -> [(String, FunctionBox)] {
        [
            ("range", FunctionBox("range") { _, args in try range(args) }),
            ("dict", FunctionBox("dict") { _, args in
                var d = PyDict()
                if args.positional.count > 1 { throw PyOps.typeError("dict expected at most 1 argument, got \(args.positional.count)") }
                if let first = args.positional.first { d = try dictFrom(first) }
                for (k, v) in args.keyword { d.set(.string(k), v) }
                return .dict(d)
            }),
            ("namespace", FunctionBox("namespace") { _, args in
                let ns = NamespaceBox()
                if args.positional.count > 1 { throw PyOps.typeError("dict expected at most 1 argument, got \(args.positional.count)") }
                if let first = args.positional.first { ns.attributes = try dictFrom(first) }
                for (k, v) in args.keyword { ns.attributes.set(.string(k), v) }
                return .namespace(ns)
            }),
            ("joiner", FunctionBox("joiner") { _, args in
                let binder = try ArgBinder("joiner", args, ["sep"])
                let sep = binder[0].map(PyRepr.str) ?? ", "
                var used = false
                return .function(FunctionBox("joiner") { _, _ in
                    if !used { used = true; return .string("") }
                    return .string(sep)
                })
            }),
            ("raise_exception", FunctionBox("raise_exception") { _, args in
                let binder = try ArgBinder("raise_exception", args, ["message"], required: 1)
                throw ChatTemplateError(kind: .raised, message: PyRepr.str(binder[0]!))
            }),
            ("strftime_now", FunctionBox("strftime_now") { renderer, args in
                let binder = try ArgBinder("strftime_now", args, ["format"], required: 1)
                guard let format = binder[0]!.stringContent else {
                    throw PyOps.typeError("strftime() argument 1 must be str, not \(binder[0]!.typeName)")
                }
                return .string(strftime(format, renderer.now))
            }),
        ]
    }

    static func dictFrom(_ v: Value) throws -> PyDict {
        switch v {
        case .dict(let d): return d
        case .namespace(let ns): return ns.attributes
        default:
            var d = PyDict()
            for (i, item) in try PyOps.iterate(v).enumerated() {
                let pair = try PyOps.iterate(item)
                guard pair.count == 2 else {
                    throw PyOps.valueError("dictionary update sequence element #\(i) has length \(pair.count); 2 is required")
                }
                try Renderer.checkHashable(pair[0])
                d.set(pair[0], pair[1])
            }
            return d
        }
    }

    static func range(_ args: CallArguments) throws -> Value {
        guard args.keyword.isEmpty else { throw PyOps.typeError("range() takes no keyword arguments") }
        let ints = try args.positional.map { v -> Int in
            guard let i = PyOps.integer(v) else { throw PyOps.typeError("'\(v.typeName)' object cannot be interpreted as an integer") }
            return i
        }
        var start = 0, stop = 0, step = 1
        switch ints.count {
        case 1: stop = ints[0]
        case 2: start = ints[0]; stop = ints[1]
        case 3: start = ints[0]; stop = ints[1]; step = ints[2]
        default: throw PyOps.typeError("range expected at most 3 arguments, got \(ints.count)")
        }
        if step == 0 { throw PyOps.valueError("range() arg 3 must not be zero") }
        let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
        if count > 100_000 {
            throw ChatTemplateError(kind: .security, message: "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
        }
        return .list((0..<count).map { .int(start + $0 * step) })
    }

    /// datetime.now().strftime(format): the C library's strftime on local time, with Python's own
    /// %f and the empty %z/%Z of a naive datetime.
    static func strftime(_ format: String, _ date: Date) -> String {
        var fixed = ""
        var chars = format.unicodeScalars.makeIterator()
        let micro = Int((date.timeIntervalSince1970 - date.timeIntervalSince1970.rounded(.down)) * 1_000_000)
        while let c = chars.next() {
            guard c == "%" else { fixed.unicodeScalars.append(c); continue }
            guard let d = chars.next() else { fixed += "%"; break }
            switch d {
            case "f": fixed += String(format: "%06d", micro)
            case "z", "Z": break
            default: fixed.unicodeScalars.append(c); fixed.unicodeScalars.append(d)
            }
        }
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        localtime_r(&t, &parts)
        var size = 256
        while size <= 1 << 20 {
            var buffer = [CChar](repeating: 0, count: size)
            #if canImport(Glibc)
            let n = Glibc.strftime(&buffer, size, fixed, &parts)
            #else
            let n = Darwin.strftime(&buffer, size, fixed, &parts)
            #endif
            if n > 0 || fixed.isEmpty {
                return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            size *= 4
        }
        return ""
    }
}
