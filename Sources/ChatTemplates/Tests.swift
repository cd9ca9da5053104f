// The tests (`value is name(args)`), as jinja2 3.1 defines them in tests.py: `number` counts
// booleans, `integer` does not, `sequence` holds for strings and dicts, `iterable` holds for
// Undefined (it iterates as empty), `none` only for None, and so on.

extension Renderer {
    func applyTest(_ name: String, _ value: Value, _ args: CallArguments, line: Int) throws -> Bool {
        func one() throws -> Value {
            let b = try ArgBinder(name, args, ["other"], required: 1)
            return b[0]!
        }
        func none() throws { _ = try ArgBinder(name, args, []) }
        switch name {
        case "odd", "even":
            try none()
            let r = try PyOps.binary(.mod, value, .int(2))
            return PyOps.equals(r, .int(name == "odd" ? 1 : 0))
        case "divisibleby":
            let n = try one()
            return PyOps.equals(try PyOps.binary(.mod, value, n), .int(0))
        case "defined": try none(); return !value.isUndefined
        case "undefined": try none(); return value.isUndefined
        case "filter":
            try none()
            return value.stringContent.map { Builtins.filterNames.contains($0) } ?? false
        case "test":
            try none()
            return value.stringContent.map { Builtins.testNames.contains($0) } ?? false
        case "none":
            try none()
            if case .none = value { return true }
            return false
        case "boolean":
            try none()
            if case .bool = value { return true }
            return false
        case "false":
            try none()
            if case .bool(false) = value { return true }
            return false
        case "true":
            try none()
            if case .bool(true) = value { return true }
            return false
        case "integer":
            try none()
            if case .int = value { return true }
            return false
        case "float":
            try none()
            if case .double = value { return true }
            return false
        case "number":
            try none()
            return PyOps.number(value) != nil
        case "lower", "upper":
            try none()
            return Methods.classify(PyRepr.str(value), "is" + name)
        case "string":
            try none()
            return value.stringContent != nil
        case "mapping":
            try none()
            if case .dict = value { return true }
            return false
        case "sequence":
            try none()
            switch value {
            case .string, .markup, .list, .tuple, .dict, .undefined: return true
            default: return false
            }
        case "iterable":
            try none()
            switch value {
            case .string, .markup, .list, .tuple, .dict, .iterator, .undefined, .loop: return true
            default: return false
            }
        case "callable":
            try none()
            switch value {
            case .function, .macro, .loop, .undefined: return true
            default: return false
            }
        case "sameas":
            let other = try one()
            switch (value, other) {
            case (.none, .none): return true
            case let (.bool(a), .bool(b)): return a == b
            case let (.int(a), .int(b)): return a == b && (-5...256).contains(a)
            case let (.namespace(a), .namespace(b)): return a === b
            case let (.loop(a), .loop(b)): return a === b
            case let (.macro(a), .macro(b)): return a === b
            case let (.function(a), .function(b)): return a === b
            case let (.iterator(a), .iterator(b)): return a === b
            default: return false
            }
        case "escaped":
            try none()
            if case .markup = value { return true }
            return false
        case "in":
            return try PyOps.contains(try one(), value)
        case "==", "eq", "equalto": return PyOps.equals(value, try one())
        case "!=", "ne": return !PyOps.equals(value, try one())
        case ">", "gt", "greaterthan": return try Renderer.compare(.gt, value, try one())
        case ">=", "ge": return try Renderer.compare(.ge, value, try one())
        case "<", "lt", "lessthan": return try Renderer.compare(.lt, value, try one())
        case "<=", "le": return try Renderer.compare(.le, value, try one())
        default:
            throw ChatTemplateError(kind: .unknownTest, message: "No test named '\(name)'.", line: line)
        }
    }
}
