// The evaluator: walks the syntax tree against a context and writes the output. Scoping follows
// jinja2: `for` bodies, macros, call blocks, `with` and block `set` get a fresh scope (so `set`
// inside a loop does not leak out, which is why templates use `namespace()`); `if` does not.
// Each loop iteration starts from a fresh scope. Attribute and item lookups follow jinja2's
// sandboxed getattr/getitem: `a.b` tries the attribute (dict methods such as `items`), then the
// key; `a['b']` tries the key, then the attribute; misses are Undefined.

import Foundation

enum Flow {
    case normal, breakLoop, continueLoop
}

final class Renderer {
    /// Globals and the caller's context; template-level variables live in a child of this.
    let contextScope: Scope
    let now: Date
    /// Nesting of macro calls and recursive loops. Python would raise RecursionError for a runaway
    /// recursion; this limit keeps a server thread's stack from overflowing first.
    private var callDepth = 0
    static let maxCallDepth = 100

    private func enterCall() throws {
        callDepth += 1
        if callDepth > Renderer.maxCallDepth {
            callDepth -= 1
            throw ChatTemplateError(kind: .value, message: "maximum recursion depth exceeded (\(Renderer.maxCallDepth) nested macro or loop calls)")
        }
    }

    init(context: [String: JinjaValue], now: Date) {
        let globals = Scope(parent: nil)
        self.now = now
        for (name, fn) in Builtins.globalFunctions() { globals.variables[name] = .function(fn) }
        contextScope = Scope(parent: globals)
        for (k, v) in context { contextScope.variables[k] = Value(v) }
    }

    func run(_ nodes: [Node]) throws -> String {
        var out = ""
        _ = try render(nodes, Scope(parent: contextScope), &out)
        return out
    }

    // MARK: statements

    func render(_ nodes: [Node], _ scope: Scope, _ out: inout String) throws -> Flow {
        for node in nodes {
            do {
                let flow = try renderNode(node, scope, &out)
                if flow != .normal { return flow }
            } catch var error as ChatTemplateError {
                if error.line == nil { error.line = node.pos.line }
                throw error
            }
        }
        return .normal
    }

    private func renderNode(_ node: Node, _ scope: Scope, _ out: inout String) throws -> Flow {
        switch node.kind {
        case .text(let text):
            out += text
        case .output(let expr):
            out += PyRepr.str(try eval(expr, scope))
        case .ifNode(let branches, let elseBody):
            for branch in branches where PyOps.truthy(try eval(branch.test, scope)) {
                return try render(branch.body, scope, &out)
            }
            return try render(elseBody, scope, &out)
        case .forNode(let loop):
            try renderFor(loop, try eval(loop.iterable, scope), scope, depth0: 0, &out)
        case .assign(let target, let expr):
            try assign(target, try eval(expr, scope), scope)
        case .assignBlock(let target, let filter, let body):
            var buffer = ""
            _ = try render(body, Scope(parent: scope), &buffer)
            var value = Value.string(buffer)
            if let filter { value = try applyFilterChain(filter, input: value, scope) }
            try assign(target, value, scope)
        case .macro(let definition):
            scope.variables[definition.name] = .macro(MacroBox(definition, closure: scope))
        case .callBlock(let callExpr, let caller):
            guard case .call(let calleeExpr, let args) = callExpr.kind else { break }
            let callee = try eval(calleeExpr, scope)
            var arguments = try evalArgs(args, scope)
            arguments.keyword.append(("caller", .macro(MacroBox(caller, closure: scope))))
            out += PyRepr.str(try call(callee, arguments))
        case .filterBlock(let filter, let body):
            var buffer = ""
            _ = try render(body, Scope(parent: scope), &buffer)
            out += PyRepr.str(try applyFilterChain(filter, input: .string(buffer), scope))
        case .with(let assignments, let body):
            let inner = Scope(parent: scope)
            for a in assignments { try assign(a.target, try eval(a.value, scope), inner) }
            return try render(body, inner, &out)
        case .scoped(let body):
            _ = try render(body, Scope(parent: scope), &out)
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        }
        return .normal
    }

    private func renderFor(_ loop: ForNode, _ iterable: Value, _ scope: Scope, depth0: Int, _ out: inout String) throws {
        var items = try PyOps.iterate(iterable)
        if let filter = loop.filter {
            var kept: [Value] = []
            for item in items {
                let probe = Scope(parent: scope)
                try assign(loop.target, item, probe)
                if PyOps.truthy(try eval(filter, probe)) { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try render(loop.elseBody, Scope(parent: scope), &out)
            return
        }
        var recurse: ((Value) throws -> Value)?
        if loop.recursive {
            recurse = { [unowned self] value in
                try self.enterCall()
                defer { self.callDepth -= 1 }
                var buffer = ""
                try self.renderFor(loop, value, scope, depth0: depth0 + 1, &buffer)
                return .string(buffer)
            }
        }
        let box = LoopBox(items: items, depth0: depth0, recurse: recurse)
        for (i, item) in items.enumerated() {
            box.index0 = i
            let iteration = Scope(parent: scope)
            iteration.variables["loop"] = .loop(box)
            try assign(loop.target, item, iteration)
            if try render(loop.body, iteration, &out) == .breakLoop { break }
        }
    }

    func assign(_ target: Target, _ value: Value, _ scope: Scope) throws {
        switch target {
        case .name(let name):
            scope.variables[name] = value
        case .tuple(let targets):
            let items = try PyOps.iterate(value)
            guard items.count == targets.count else {
                if items.count > targets.count {
                    throw PyOps.valueError("too many values to unpack (expected \(targets.count))")
                }
                throw PyOps.valueError("not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            for (t, v) in zip(targets, items) { try assign(t, v, scope) }
        case .namespaceAttr(let name, let attr):
            guard let ns = scope.lookup(name), case .namespace(let box) = ns else {
                throw ChatTemplateError(kind: .type, message: "cannot assign attribute on non-namespace object")
            }
            box.attributes.set(.string(attr), value)
        }
    }

    // MARK: expressions

    func eval(_ expr: Expr, _ scope: Scope) throws -> Value {
        switch expr.kind {
        case .constant(let c):
            switch c {
            case .none: return .none
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        case .name(let name):
            return scope.lookup(name) ?? .undefinedName(name)
        case .list(let items):
            return .list(try items.map { try eval($0, scope) })
        case .tuple(let items):
            return .tuple(try items.map { try eval($0, scope) })
        case .dict(let entries):
            var dict = PyDict()
            for entry in entries {
                let key = try eval(entry.key, scope)
                try Renderer.checkHashable(key)
                dict.set(key, try eval(entry.value, scope))
            }
            return .dict(dict)
        case .getattr(let object, let name):
            return try getAttribute(try eval(object, scope), name)
        case .getitem(let object, let key):
            let target = try eval(object, scope)
            if case .slice(let a, let b, let c) = key.kind {
                return try slice(target, try a.map { try eval($0, scope) }, try b.map { try eval($0, scope) },
                                 try c.map { try eval($0, scope) })
            }
            return try getItem(target, try eval(key, scope))
        case .slice:
            throw ChatTemplateError(kind: .syntax, message: "slice outside a subscript", line: expr.pos.line)
        case .call(let callee, let args):
            let function = try eval(callee, scope)
            return try call(function, try evalArgs(args, scope))
        case .filter(let input, let name, let args):
            guard let input else {
                throw ChatTemplateError(kind: .syntax, message: "filter without input", line: expr.pos.line)
            }
            guard Builtins.filterNames.contains(name) else {
                throw ChatTemplateError(kind: .unknownFilter, message: "No filter named '\(name)' found.", line: expr.pos.line)
            }
            return try applyFilter(name, try eval(input, scope), try evalArgs(args, scope), line: expr.pos.line)
        case .test(let input, let name, let args):
            guard Builtins.testNames.contains(name) else {
                throw ChatTemplateError(kind: .unknownTest, message: "No test named '\(name)' found.", line: expr.pos.line)
            }
            return .bool(try applyTest(name, try eval(input, scope), try evalArgs(args, scope), line: expr.pos.line))
        case .not(let x):
            return .bool(!PyOps.truthy(try eval(x, scope)))
        case .negate(let x):
            return try PyOps.negate(try eval(x, scope))
        case .plus(let x):
            return try PyOps.plus(try eval(x, scope))
        case .binary(let op, let a, let b):
            return try PyOps.binary(op, try eval(a, scope), try eval(b, scope))
        case .and(let a, let b):
            let left = try eval(a, scope)
            return PyOps.truthy(left) ? try eval(b, scope) : left
        case .or(let a, let b):
            let left = try eval(a, scope)
            return PyOps.truthy(left) ? left : try eval(b, scope)
        case .concat(let items):
            var text = ""
            for item in items { text += PyRepr.str(try eval(item, scope)) }
            return .string(text)
        case .compare(let first, let operands):
            var left = try eval(first, scope)
            for operand in operands {
                let right = try eval(operand.rhs, scope)
                if !(try Renderer.compare(operand.op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let test, let then, let otherwise):
            if PyOps.truthy(try eval(test, scope)) { return try eval(then, scope) }
            if let otherwise { return try eval(otherwise, scope) }
            return .undefinedHint("the inline if-expression on line \(expr.pos.line) evaluated to false and no else section was defined.")
        }
    }

    static func compare(_ op: CompareKind, _ a: Value, _ b: Value) throws -> Bool {
        switch op {
        case .eq: return PyOps.equals(a, b)
        case .ne: return !PyOps.equals(a, b)
        case .lt: return try PyOps.compare(a, b, "<") == -1
        case .le: let r = try PyOps.compare(a, b, "<="); return r == -1 || r == 0
        case .gt: return try PyOps.compare(a, b, ">") == 1
        case .ge: let r = try PyOps.compare(a, b, ">="); return r == 1 || r == 0
        case .in: return try PyOps.contains(b, a)
        case .notIn: return !(try PyOps.contains(b, a))
        }
    }

    static func checkHashable(_ v: Value) throws {
        switch v {
        case .list, .dict, .iterator, .loop: throw PyOps.typeError("unhashable type: '\(v.typeName)'")
        case .tuple(let items): try items.forEach(checkHashable)
        default: break
        }
    }

    func evalArgs(_ args: CallArgs, _ scope: Scope) throws -> CallArguments {
        var result = CallArguments()
        result.positional = try args.positional.map { try eval($0, scope) }
        if let star = args.starArgs { result.positional += try PyOps.iterate(try eval(star, scope)) }
        for kw in args.keyword { result.keyword.append((kw.name, try eval(kw.value, scope))) }
        if let starKw = args.starKwargs {
            let value = try eval(starKw, scope)
            guard case .dict(let d) = value else { throw PyOps.typeError("argument after ** must be a mapping, not \(value.typeName)") }
            for (k, v) in zip(d.keys, d.values) {
                guard let key = k.stringContent else { throw PyOps.typeError("keywords must be strings") }
                result.keyword.append((key, v))
            }
        }
        return result
    }

    func applyFilterChain(_ expr: Expr, input: Value, _ scope: Scope) throws -> Value {
        guard case .filter(let inner, let name, let args) = expr.kind else { return try eval(expr, scope) }
        let value = try inner.map { try applyFilterChain($0, input: input, scope) } ?? input
        return try applyFilter(name, value, try evalArgs(args, scope), line: expr.pos.line)
    }

    // MARK: calls

    func call(_ callee: Value, _ args: CallArguments) throws -> Value {
        switch callee {
        case .function(let f):
            return try f.body(self, args)
        case .macro(let m):
            return try callMacro(m, args)
        case .loop(let l):
            guard let recurse = l.recurse else {
                throw PyOps.typeError("Tried to call non recursive loop. Maybe you forgot the 'recursive' modifier.")
            }
            guard args.positional.count == 1, args.keyword.isEmpty else {
                throw PyOps.typeError("loop() takes exactly one argument")
            }
            return try recurse(args.positional[0])
        case .undefined(let u):
            throw u.error
        default:
            throw PyOps.typeError("'\(callee.typeName)' object is not callable")
        }
    }

    private func callMacro(_ macro: MacroBox, _ args: CallArguments) throws -> Value {
        try enterCall()
        defer { callDepth -= 1 }
        let def = macro.definition
        let scope = Scope(parent: macro.closure)
        var kwargs = args.keyword
        let paramCount = def.params.count
        var provided: [Value?] = Array(args.positional.prefix(paramCount))
        var foundCaller = false
        for name in def.params.dropFirst(provided.count) {
            if let i = kwargs.firstIndex(where: { $0.0 == name }) {
                provided.append(kwargs.remove(at: i).1)
            } else {
                provided.append(nil)
            }
            if name == "caller" { foundCaller = true }
        }
        if def.usesCaller && !foundCaller {
            if let i = kwargs.firstIndex(where: { $0.0 == "caller" }) {
                scope.variables["caller"] = kwargs.remove(at: i).1
            } else {
                scope.variables["caller"] = .undefined(UndefinedInfo(hint: "No caller defined", name: .string("caller")))
            }
        }
        if def.catchesKwargs {
            var d = PyDict()
            for (k, v) in kwargs { d.set(.string(k), v) }
            scope.variables["kwargs"] = .dict(d)
        } else if let first = kwargs.first {
            if first.0 == "caller" {
                throw PyOps.typeError("macro '\(def.name)' was invoked with two values for the special caller argument. This is most likely a bug.")
            }
            throw PyOps.typeError("macro '\(def.name)' takes no keyword argument '\(first.0)'")
        }
        if def.catchesVarargs {
            scope.variables["varargs"] = .tuple(Array(args.positional.dropFirst(paramCount)))
        } else if args.positional.count > paramCount {
            throw PyOps.typeError("macro '\(def.name)' takes not more than \(paramCount) argument(s)")
        }
        let firstDefault = paramCount - def.defaults.count
        for (i, name) in def.params.enumerated() {
            if let value = provided[i] {
                scope.variables[name] = value
            } else if i >= firstDefault {
                scope.variables[name] = try eval(def.defaults[i - firstDefault], scope)
            } else {
                scope.variables[name] = .undefined(UndefinedInfo(hint: "parameter '\(name)' was not provided", name: .string(name)))
            }
        }
        var out = ""
        _ = try render(def.body, scope, &out)
        return .string(out)
    }

    // MARK: attribute and item access

    static func unsafeAttribute(_ object: Value, _ name: String) -> Value {
        .undefined(UndefinedInfo(hint: "access to attribute '\(name)' of '\(object.typeName)' object is unsafe.",
                                 objectType: object.objectTypeRepr, name: .string(name), kind: .security))
    }

    private static func missing(_ object: Value, _ key: Value) -> Value {
        .undefined(UndefinedInfo(hint: nil, objectType: object.objectTypeRepr, name: key))
    }

    /// `object.name`
    func getAttribute(_ object: Value, _ name: String) throws -> Value {
        if case .undefined(let u) = object { throw u.error }
        if let method = try Methods.attribute(of: object, name) { return method }
        if name.hasPrefix("_") && Methods.hasPythonAttribute(object, name) { return Renderer.unsafeAttribute(object, name) }
        switch object {
        case .dict(let d):
            return d[string: name] ?? Renderer.missing(object, .string(name))
        case .namespace(let ns):
            return ns.attributes[string: name] ?? Renderer.missing(object, .string(name))
        case .loop(let loop):
            return loopAttribute(loop, name) ?? Renderer.missing(object, .string(name))
        default:
            return Renderer.missing(object, .string(name))
        }
    }

    /// `object[key]`
    func getItem(_ object: Value, _ key: Value) throws -> Value {
        if case .undefined(let u) = object { throw u.error }
        switch object {
        case .dict(let d):
            if let v = d[key] { return v }
        case .list(let items), .tuple(let items):
            if let i = PyOps.integer(key) {
                let index = i < 0 ? i + items.count : i
                if index >= 0 && index < items.count { return items[index] }
                return Renderer.missing(object, key)
            }
        case .string(let s), .markup(let s):
            if let i = PyOps.integer(key) {
                let a = s.scalars
                let index = i < 0 ? i + a.count : i
                if index >= 0 && index < a.count {
                    let c = String(a[index])
                    if case .markup = object { return .markup(c) }
                    return .string(c)
                }
                return Renderer.missing(object, key)
            }
        case .namespace(let ns):
            if let name = key.stringContent, let v = ns.attributes[string: name] { return v }
        case .loop(let loop):
            if let name = key.stringContent, let v = loopAttribute(loop, name) { return v }
        default:
            break
        }
        if let name = key.stringContent {
            if let method = try Methods.attribute(of: object, name) { return method }
        }
        return Renderer.missing(object, key)
    }

    private func loopAttribute(_ loop: LoopBox, _ name: String) -> Value? {
        switch name {
        case "index": return .int(loop.index0 + 1)
        case "index0": return .int(loop.index0)
        case "revindex": return .int(loop.length - loop.index0)
        case "revindex0": return .int(loop.length - loop.index0 - 1)
        case "first": return .bool(loop.index0 == 0)
        case "last": return .bool(loop.index0 == loop.length - 1)
        case "length": return .int(loop.length)
        case "depth": return .int(loop.depth0 + 1)
        case "depth0": return .int(loop.depth0)
        case "previtem":
            return loop.index0 > 0 ? loop.items[loop.index0 - 1] : .undefinedHint("there is no previous item")
        case "nextitem":
            return loop.index0 + 1 < loop.length ? loop.items[loop.index0 + 1] : .undefinedHint("there is no next item")
        case "cycle":
            return .function(FunctionBox("cycle") { _, args in
                guard !args.positional.isEmpty else { throw PyOps.typeError("no items for cycling given") }
                return args.positional[loop.index0 % args.positional.count]
            })
        case "changed":
            return .function(FunctionBox("changed") { _, args in
                let value = args.positional
                if let last = loop.lastChanged, last.count == value.count, zip(last, value).allSatisfy({ PyOps.equals($0, $1) }) {
                    return .bool(false)
                }
                loop.lastChanged = value
                return .bool(true)
            })
        default: return nil
        }
    }

    /// Python slicing of lists, tuples and strings.
    func slice(_ object: Value, _ start: Value?, _ stop: Value?, _ step: Value?) throws -> Value {
        if case .undefined(let u) = object { throw u.error }
        func bound(_ v: Value?) throws -> Int? {
            guard let v else { return nil }
            if case .none = v { return nil }
            if case .undefined(let u) = v { throw u.error }
            guard let i = PyOps.integer(v) else {
                throw PyOps.typeError("slice indices must be integers or None or have an __index__ method")
            }
            return i
        }
        let stepValue = try bound(step) ?? 1
        if stepValue == 0 { throw PyOps.valueError("slice step cannot be zero") }
        func indices(_ count: Int) throws -> [Int] {
            let lower = stepValue > 0 ? 0 : -1
            let upper = stepValue > 0 ? count : count - 1
            func clamp(_ v: Int?, _ defaultValue: Int) -> Int {
                guard var x = v else { return defaultValue }
                if x < 0 { x += count; if x < lower { x = lower } } else if x > upper { x = upper }
                return x
            }
            let s = clamp(try bound(start), stepValue > 0 ? lower : upper)
            let e = clamp(try bound(stop), stepValue > 0 ? upper : lower)
            var result: [Int] = []
            var i = s
            while stepValue > 0 ? i < e : i > e {
                result.append(i)
                i += stepValue
            }
            return result
        }
        switch object {
        case .list(let items): return .list(try indices(items.count).map { items[$0] })
        case .tuple(let items): return .tuple(try indices(items.count).map { items[$0] })
        case .string(let s):
            let a = s.scalars
            return .string(String(scalars: try indices(a.count).map { a[$0] }))
        case .markup(let s):
            let a = s.scalars
            return .markup(String(scalars: try indices(a.count).map { a[$0] }))
        default:
            let sliceRepr = "slice(\([start, stop, step].map { $0.map(PyRepr.repr) ?? "None" }.joined(separator: ", ")))"
            return .undefined(UndefinedInfo(hint: "\(object.objectTypeRepr) has no element \(sliceRepr)"))
        }
    }
}
