// Runtime values and their Python semantics: truthiness, str() and repr(), equality (numbers
// across int/float/bool, strings by code point), ordering, iteration, len(), `in`, and the
// arithmetic operators. Also jinja2's Undefined (falsy, renders empty, fails when used further)
// and markupsafe's Markup (what `|safe` / `|escape` return: `+` with a plain string escapes it).

import Foundation

/// What a missing value remembers, to phrase the error jinja2 would give when it is used.
struct UndefinedInfo {
    var hint: String?
    /// `object_type_repr` of the object the lookup was made on (nil: a plain missing name).
    var objectType: String?
    var name: Value?
    var kind: ChatTemplateError.Kind = .undefined

    var message: String {
        if let hint { return hint }
        guard let objectType else {
            return "\(name.map(PyRepr.repr) ?? "'undefined'") is undefined"
        }
        if let name, case .string = name {
            return "'\(objectType)' has no attribute \(PyRepr.repr(name))"
        }
        return "\(objectType) has no element \(name.map(PyRepr.repr) ?? "None")"
    }

    var error: ChatTemplateError { ChatTemplateError(kind: kind, message: message) }

    static func missingName(_ name: String) -> UndefinedInfo {
        UndefinedInfo(hint: nil, objectType: nil, name: .string(name))
    }
}

/// An ordered Python dict.
struct PyDict {
    var keys: [Value] = []
    var values: [Value] = []

    var count: Int { keys.count }

    func index(of key: Value) -> Int? {
        keys.firstIndex(where: { PyOps.equals($0, key) })
    }

    subscript(key: Value) -> Value? {
        index(of: key).map { values[$0] }
    }

    subscript(string key: String) -> Value? {
        self[.string(key)]
    }

    mutating func set(_ key: Value, _ value: Value) {
        if let i = index(of: key) { values[i] = value } else { keys.append(key); values.append(value) }
    }

    var items: [Value] { zip(keys, values).map { .tuple([$0, $1]) } }
}

/// A one-shot Python iterator (generator, reversed(), ...): truthy, no len(), consumed by iteration.
final class IteratorBox {
    var items: [Value]
    var position = 0
    let typeName: String

    init(_ items: [Value], typeName: String = "generator") {
        self.items = items
        self.typeName = typeName
    }

    func drain() -> [Value] {
        let rest = Array(items[position...])
        position = items.count
        return rest
    }

    func next() -> Value? {
        guard position < items.count else { return nil }
        position += 1
        return items[position - 1]
    }
}

/// jinja2's `namespace(...)`: the one mutable object templates get.
final class NamespaceBox {
    var attributes = PyDict()
}

/// The `loop` variable of a for loop.
final class LoopBox {
    let items: [Value]
    var index0 = 0
    let depth0: Int
    var lastChanged: [Value]?
    /// For `loop(...)` in recursive loops.
    let recurse: ((Value) throws -> Value)?

    init(items: [Value], depth0: Int, recurse: ((Value) throws -> Value)?) {
        self.items = items
        self.depth0 = depth0
        self.recurse = recurse
    }

    var length: Int { items.count }
}

struct CallArguments {
    var positional: [Value] = []
    var keyword: [(String, Value)] = []
}

/// A built-in function or bound method.
final class FunctionBox {
    let name: String
    let body: (Renderer, CallArguments) throws -> Value

    init(_ name: String, _ body: @escaping (Renderer, CallArguments) throws -> Value) {
        self.name = name
        self.body = body
    }
}

/// A macro defined in the template, with the scope it was defined in.
final class MacroBox {
    let definition: MacroDef
    let closure: Scope

    init(_ definition: MacroDef, closure: Scope) {
        self.definition = definition
        self.closure = closure
    }
}

/// Variables of one frame; lookups walk outwards.
final class Scope {
    var variables: [String: Value] = [:]
    let parent: Scope?

    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var scope: Scope? = self
        while let s = scope {
            if let v = s.variables[name] { return v }
            scope = s.parent
        }
        return nil
    }
}

indirect enum Value {
    case undefined(UndefinedInfo)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// markupsafe.Markup: a string marked safe.
    case markup(String)
    case list([Value])
    case tuple([Value])
    case dict(PyDict)
    case iterator(IteratorBox)
    case namespace(NamespaceBox)
    case loop(LoopBox)
    case function(FunctionBox)
    case macro(MacroBox)

    init(_ value: JinjaValue) {
        switch value {
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .list(items.map(Value.init))
        case .object(let pairs):
            var dict = PyDict()
            for (k, v) in pairs { dict.set(.string(k), Value(v)) }
            self = .dict(dict)
        }
    }

    static func undefinedName(_ name: String) -> Value { .undefined(.missingName(name)) }

    static func undefinedHint(_ hint: String) -> Value { .undefined(UndefinedInfo(hint: hint)) }

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// The text of a str or Markup.
    var stringContent: String? {
        switch self {
        case .string(let s), .markup(let s): return s
        default: return nil
        }
    }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .markup: return "Markup"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .iterator(let it): return it.typeName
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .function: return "builtin_function_or_method"
        case .macro: return "Macro"
        }
    }

    /// jinja2's object_type_repr, used in undefined-attribute messages.
    var objectTypeRepr: String {
        switch self {
        case .none: return "None"
        case .namespace: return "jinja2.utils.Namespace object"
        case .loop: return "jinja2.runtime.LoopContext object"
        case .macro: return "jinja2.runtime.Macro object"
        case .markup: return "markupsafe.Markup object"
        default: return "\(typeName) object"
        }
    }
}

enum PyOps {
    static func typeError(_ message: String) -> ChatTemplateError {
        ChatTemplateError(kind: .type, message: message)
    }

    static func valueError(_ message: String) -> ChatTemplateError {
        ChatTemplateError(kind: .value, message: message)
    }

    static func truthy(_ v: Value) -> Bool {
        switch v {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s), .markup(let s): return !s.isEmpty
        case .list(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return d.count > 0
        case .loop(let l): return l.length > 0
        case .iterator, .namespace, .function, .macro: return true
        }
    }

    /// A number as a Double when it is one (bool counts, as in Python).
    static func number(_ v: Value) -> Double? {
        switch v {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// An int (or bool) as Int.
    static func integer(_ v: Value) -> Int? {
        switch v {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        default: return nil
        }
    }

    static func stringsEqual(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    /// Python `==`.
    static func equals(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined): return true
        case (.undefined, _), (_, .undefined): return false
        case (.none, .none): return true
        case let (.int(x), .int(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case (.bool, .int), (.int, .bool), (.bool, .double), (.double, .bool), (.int, .double), (.double, .int), (.double, .double):
            if let x = integer(a), let y = integer(b) { return x == y }
            return number(a)! == number(b)!
        case let (x, y) where x.stringContent != nil && y.stringContent != nil:
            return stringsEqual(x.stringContent!, y.stringContent!)
        case let (.list(x), .list(y)), let (.tuple(x), .tuple(y)):
            return x.count == y.count && zip(x, y).allSatisfy { equals($0, $1) }
        case let (.dict(x), .dict(y)):
            guard x.count == y.count else { return false }
            for (k, v) in zip(x.keys, x.values) {
                guard let other = y[k], equals(v, other) else { return false }
            }
            return true
        case let (.namespace(x), .namespace(y)): return x === y
        case let (.loop(x), .loop(y)): return x === y
        case let (.iterator(x), .iterator(y)): return x === y
        case let (.function(x), .function(y)): return x === y
        case let (.macro(x), .macro(y)): return x === y
        default: return false
        }
    }

    /// Python `<` (and friends via `compare`); throws TypeError for unorderable types.
    static func compare(_ a: Value, _ b: Value, _ op: String) throws -> Int {
        if case .undefined(let u) = a { throw u.error }
        if case .undefined(let u) = b { throw u.error }
        if let x = number(a), let y = number(b) {
            if let i = integer(a), let j = integer(b) { return i < j ? -1 : (i == j ? 0 : 1) }
            if x.isNaN || y.isNaN { return 2 }  // unordered: every comparison false
            return x < y ? -1 : (x == y ? 0 : 1)
        }
        if let x = a.stringContent, let y = b.stringContent {
            return compareScalars(x, y)
        }
        switch (a, b) {
        case let (.list(x), .list(y)), let (.tuple(x), .tuple(y)):
            for (p, q) in zip(x, y) where !equals(p, q) {
                return try compare(p, q, op)
            }
            return x.count < y.count ? -1 : (x.count == y.count ? 0 : 1)
        default:
            throw typeError("'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
        }
    }

    static func compareScalars(_ x: String, _ y: String) -> Int {
        var i = x.unicodeScalars.makeIterator()
        var j = y.unicodeScalars.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case let (p?, q?):
                if p.value != q.value { return p.value < q.value ? -1 : 1 }
            }
        }
    }

    /// The items a for loop / list() sees.
    static func iterate(_ v: Value) throws -> [Value] {
        switch v {
        case .undefined: return []
        case .list(let a), .tuple(let a): return a
        case .dict(let d): return d.keys
        case .string(let s), .markup(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .iterator(let it): return it.drain()
        case .loop(let l): return l.items
        default: throw typeError("'\(v.typeName)' object is not iterable")
        }
    }

    static func length(_ v: Value) throws -> Int {
        switch v {
        case .undefined: return 0
        case .string(let s), .markup(let s): return s.unicodeScalars.count
        case .list(let a), .tuple(let a): return a.count
        case .dict(let d): return d.count
        case .loop(let l): return l.length
        default: throw typeError("object of type '\(v.typeName)' has no len()")
        }
    }

    /// Python `a in b`.
    static func contains(_ container: Value, _ item: Value) throws -> Bool {
        switch container {
        case .string(let s), .markup(let s):
            guard let sub = item.stringContent else {
                if case .undefined(let u) = item { throw u.error }
                throw typeError("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return PyText.find(Array(s.unicodeScalars), Array(sub.unicodeScalars), from: 0) != nil
        case .list(let a), .tuple(let a): return a.contains { equals($0, item) }
        case .dict(let d): return d.index(of: item) != nil
        case .undefined: return false
        case .iterator(let it):
            while let next = it.next() { if equals(next, item) { return true } }
            return false
        case .loop(let l): return l.items.contains { equals($0, item) }
        default: throw typeError("argument of type '\(container.typeName)' is not iterable")
        }
    }

    // MARK: arithmetic

    private static func unsupported(_ op: String, _ a: Value, _ b: Value) -> ChatTemplateError {
        typeError("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
    }

    private static func overflow() -> ChatTemplateError {
        valueError("integer overflow (Python would switch to a big integer here)")
    }

    static func failIfUndefined(_ values: Value...) throws {
        for v in values { if case .undefined(let u) = v { throw u.error } }
    }

    static func binary(_ op: BinaryOp, _ a: Value, _ b: Value) throws -> Value {
        try failIfUndefined(a, b)
        switch op {
        case .add: return try add(a, b)
        case .sub:
            if let x = integer(a), let y = integer(b) {
                let (r, o) = x.subtractingReportingOverflow(y)
                if o { throw overflow() }
                return .int(r)
            }
            if let x = number(a), let y = number(b) { return .double(x - y) }
            throw unsupported("-", a, b)
        case .mul: return try multiply(a, b)
        case .div:
            guard let x = number(a), let y = number(b) else { throw unsupported("/", a, b) }
            if y == 0 { throw valueError(integer(a) != nil && integer(b) != nil ? "division by zero" : "float division by zero") }
            return .double(x / y)
        case .floorDiv:
            if let x = integer(a), let y = integer(b) {
                if y == 0 { throw valueError("integer division or modulo by zero") }
                if x == Int.min && y == -1 { throw overflow() }
                var q = x / y
                if (x % y != 0) && ((x < 0) != (y < 0)) { q -= 1 }
                return .int(q)
            }
            guard let x = number(a), let y = number(b) else { throw unsupported("//", a, b) }
            if y == 0 { throw valueError("float floor division by zero") }
            return .double(pyFloatDivmod(x, y).0)
        case .mod:
            if let fmt = a.stringContent {
                let result = try PyFormat.percent(fmt, b)
                if case .markup = a { return .markup(result) }
                return .string(result)
            }
            if let x = integer(a), let y = integer(b) {
                if y == 0 { throw valueError("integer division or modulo by zero") }
                if y == -1 { return .int(0) }
                var r = x % y
                if r != 0 && ((r < 0) != (y < 0)) { r += y }
                return .int(r)
            }
            guard let x = number(a), let y = number(b) else { throw unsupported("%", a, b) }
            if y == 0 { throw valueError("float modulo") }
            return .double(pyFloatDivmod(x, y).1)
        case .pow:
            if let x = integer(a), let y = integer(b) {
                if y >= 0 {
                    var result = 1
                    var base = x
                    var e = y
                    while e > 0 {
                        if e & 1 == 1 {
                            let (r, o) = result.multipliedReportingOverflow(by: base)
                            if o { throw overflow() }
                            result = r
                        }
                        e >>= 1
                        if e > 0 {
                            let (b2, o) = base.multipliedReportingOverflow(by: base)
                            if o { throw overflow() }
                            base = b2
                        }
                    }
                    return .int(result)
                }
                if x == 0 { throw valueError("0.0 cannot be raised to a negative power") }
                return .double(Foundation.pow(Double(x), Double(y)))
            }
            guard let x = number(a), let y = number(b) else { throw unsupported("** or pow()", a, b) }
            if x == 0 && y < 0 { throw valueError("0.0 cannot be raised to a negative power") }
            if x < 0 && y != y.rounded() { throw valueError("complex results are not supported") }
            return .double(Foundation.pow(x, y))
        }
    }

    /// Python's float divmod (floor semantics).
    static func pyFloatDivmod(_ x: Double, _ y: Double) -> (Double, Double) {
        var mod = fmod(x, y)
        var div = (x - mod) / y
        if mod != 0 {
            if (y < 0) != (mod < 0) {
                mod += y
                div -= 1
            }
        } else {
            mod = y < 0 ? -0.0 : 0.0
        }
        var floordiv: Double
        if div != 0 {
            floordiv = div.rounded(.down)
            if div - floordiv > 0.5 { floordiv += 1 }
        } else {
            floordiv = x / y < 0 ? -0.0 : 0.0
        }
        return (floordiv, mod)
    }

    static func add(_ a: Value, _ b: Value) throws -> Value {
        if let x = integer(a), let y = integer(b) {
            let (r, o) = x.addingReportingOverflow(y)
            if o { throw overflow() }
            return .int(r)
        }
        if let x = number(a), let y = number(b) { return .double(x + y) }
        switch (a, b) {
        case let (.string(x), .string(y)): return .string(x + y)
        case let (.markup(x), .markup(y)): return .markup(x + y)
        case let (.markup(x), .string(y)): return .markup(x + PyText.htmlEscape(y))
        case let (.string(x), .markup(y)): return .markup(PyText.htmlEscape(x) + y)
        case let (.list(x), .list(y)): return .list(x + y)
        case let (.tuple(x), .tuple(y)): return .tuple(x + y)
        case (.string, _), (.markup, _):
            throw typeError("can only concatenate str (not \"\(b.typeName)\") to str")
        case (.list, _):
            throw typeError("can only concatenate list (not \"\(b.typeName)\") to list")
        case (.tuple, _):
            throw typeError("can only concatenate tuple (not \"\(b.typeName)\") to tuple")
        default:
            throw unsupported("+", a, b)
        }
    }

    static func multiply(_ a: Value, _ b: Value) throws -> Value {
        if let x = integer(a), let y = integer(b) {
            let (r, o) = x.multipliedReportingOverflow(by: y)
            if o { throw overflow() }
            return .int(r)
        }
        if let x = number(a), let y = number(b) { return .double(x * y) }
        func repeatCount(_ v: Value) -> Int? { integer(v).map { max($0, 0) } }
        switch (a, b) {
        case let (.string(s), n), let (n, .string(s)):
            if let c = repeatCount(n) { return .string(String(repeating: s, count: c)) }
        case let (.markup(s), n), let (n, .markup(s)):
            if let c = repeatCount(n) { return .markup(String(repeating: s, count: c)) }
        case let (.list(items), n), let (n, .list(items)):
            if let c = repeatCount(n) { return .list(Array([[Value]](repeating: items, count: c).joined())) }
        case let (.tuple(items), n), let (n, .tuple(items)):
            if let c = repeatCount(n) { return .tuple(Array([[Value]](repeating: items, count: c).joined())) }
        default: break
        }
        if a.stringContent != nil || b.stringContent != nil {
            throw typeError("can't multiply sequence by non-int of type '\(a.stringContent != nil ? b.typeName : a.typeName)'")
        }
        throw unsupported("*", a, b)
    }

    static func negate(_ v: Value) throws -> Value {
        try failIfUndefined(v)
        if let i = integer(v) {
            if i == Int.min { throw overflow() }
            return .int(-i)
        }
        if case .double(let d) = v { return .double(-d) }
        throw typeError("bad operand type for unary -: '\(v.typeName)'")
    }

    static func plus(_ v: Value) throws -> Value {
        try failIfUndefined(v)
        if let i = integer(v) { return .int(i) }
        if case .double = v { return v }
        throw typeError("bad operand type for unary +: '\(v.typeName)'")
    }
}

/// str() and repr() as Python prints them.
enum PyRepr {
    static func str(_ v: Value) -> String {
        switch v {
        case .undefined: return ""
        case .string(let s), .markup(let s): return s
        default: return repr(v)
        }
    }

    static func repr(_ v: Value) -> String {
        switch v {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return PyText.floatRepr(d)
        case .string(let s): return PyText.repr(s)
        case .markup(let s): return "Markup(\(PyText.repr(s)))"
        case .list(let items): return "[" + items.map(repr).joined(separator: ", ") + "]"
        case .tuple(let items):
            if items.count == 1 { return "(" + repr(items[0]) + ",)" }
            return "(" + items.map(repr).joined(separator: ", ") + ")"
        case .dict(let d):
            return "{" + zip(d.keys, d.values).map { repr($0) + ": " + repr($1) }.joined(separator: ", ") + "}"
        case .iterator(let it): return "<\(it.typeName) object>"
        case .namespace(let ns): return "<Namespace \(repr(.dict(ns.attributes)))>"
        case .loop(let l): return "<LoopContext \(l.index0 + 1)/\(l.length)>"
        case .function(let f): return "<built-in method \(f.name)>"
        case .macro(let m): return "<Macro '\(m.definition.name)'>"
        }
    }
}
