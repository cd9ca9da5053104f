// Python string formatting for templates: printf-style `"%s" % x` (also the `format` filter)
// and `str.format(...)` with the common parts of the format-spec mini-language.

import Foundation

enum PyFormat {
    // MARK: printf-style

    static func percent(_ format: String, _ args: Value) throws -> String {
        var positional: [Value]
        var mapping: PyDict?
        switch args {
        case .tuple(let items): positional = items
        case .dict(let d): positional = [args]; mapping = d
        default: positional = [args]
        }
        let f = format.scalars
        var out = ""
        var argIndex = 0
        func nextArg() throws -> Value {
            guard argIndex < positional.count else { throw PyOps.typeError("not enough arguments for format string") }
            argIndex += 1
            return positional[argIndex - 1]
        }
        var i = 0
        while i < f.count {
            let c = f[i]
            guard c == "%" else { out.unicodeScalars.append(c); i += 1; continue }
            i += 1
            guard i < f.count else { throw PyOps.valueError("incomplete format") }
            var value: Value?
            if f[i] == "(" {
                guard let mapping else { throw PyOps.typeError("format requires a mapping") }
                var depth = 1
                let start = i + 1
                i += 1
                while i < f.count, depth > 0 {
                    if f[i] == "(" { depth += 1 } else if f[i] == ")" { depth -= 1 }
                    i += 1
                }
                let key = String(scalars: f[start..<(i - 1)])
                guard let v = mapping[string: key] else { throw ChatTemplateError(kind: .value, message: PyText.repr(key)) }
                value = v
            }
            var flags = Set<Unicode.Scalar>()
            while i < f.count, "-+ #0".unicodeScalars.contains(f[i]) { flags.insert(f[i]); i += 1 }
            var width: Int?
            if i < f.count, f[i] == "*" {
                guard let w = PyOps.integer(try nextArg()) else { throw PyOps.typeError("* wants int") }
                width = w; i += 1
            } else {
                var w = 0, any = false
                while i < f.count, f[i].isASCII, let d = Int(String(f[i])) { w = w * 10 + d; i += 1; any = true }
                if any { width = w }
            }
            var precision: Int?
            if i < f.count, f[i] == "." {
                i += 1
                if i < f.count, f[i] == "*" {
                    guard let p = PyOps.integer(try nextArg()) else { throw PyOps.typeError("* wants int") }
                    precision = p; i += 1
                } else {
                    var p = 0
                    while i < f.count, f[i].isASCII, let d = Int(String(f[i])) { p = p * 10 + d; i += 1 }
                    precision = p
                }
            }
            while i < f.count, "hlL".unicodeScalars.contains(f[i]) { i += 1 }
            guard i < f.count else { throw PyOps.valueError("incomplete format") }
            let type = f[i]
            i += 1
            if type == "%" { out += "%"; continue }
            let arg = try value ?? nextArg()
            if case .undefined(let u) = arg, type != "s" { throw u.error }
            var body: String
            var numeric = false
            var negative = false
            switch type {
            case "s", "r", "a":
                body = type == "s" ? PyRepr.str(arg) : PyRepr.repr(arg)
                if let precision { body = String(scalars: body.scalars.prefix(precision)) }
            case "d", "i", "u":
                numeric = true
                let n: Int
                if let x = PyOps.integer(arg) { n = x }
                else if case .double(let d) = arg, d.isFinite { n = Int(d) }
                else { throw PyOps.typeError("%\(type) format: a real number is required, not \(arg.typeName)") }
                negative = n < 0
                body = String(n.magnitude)
                if let precision, body.count < precision { body = String(repeating: "0", count: precision - body.count) + body }
            case "x", "X", "o":
                numeric = true
                guard let n = PyOps.integer(arg) else { throw PyOps.typeError("%\(type) format: an integer is required, not \(arg.typeName)") }
                negative = n < 0
                body = String(n.magnitude, radix: type == "o" ? 8 : 16, uppercase: type == "X")
                if flags.contains("#") { body = (type == "o" ? "0o" : (type == "X" ? "0X" : "0x")) + body }
            case "e", "E", "f", "F", "g", "G":
                numeric = true
                guard let d = PyOps.number(arg) else { throw PyOps.typeError("must be real number, not \(arg.typeName)") }
                negative = d < 0 || (d == 0 && d.sign == .minus)
                body = cFloat(abs(d), type: type, precision: precision ?? 6, alternate: flags.contains("#"))
            case "c":
                if let n = PyOps.integer(arg), let s = Unicode.Scalar(UInt32(max(0, n))) { body = String(s) }
                else if let s = arg.stringContent, s.unicodeScalars.count == 1 { body = s }
                else { throw PyOps.typeError("%c requires int or char") }
            default:
                throw PyOps.valueError("unsupported format character '\(type)' (0x\(String(type.value, radix: 16)))")
            }
            var sign = ""
            if numeric {
                if negative { sign = "-" } else if flags.contains("+") { sign = "+" } else if flags.contains(" ") { sign = " " }
            }
            let total = sign.count + body.unicodeScalars.count
            if let width, width > total {
                let pad = width - total
                if flags.contains("-") {
                    body = sign + body + String(repeating: " ", count: pad)
                } else if flags.contains("0") && numeric {
                    body = sign + String(repeating: "0", count: pad) + body
                } else {
                    body = String(repeating: " ", count: pad) + sign + body
                }
            } else {
                body = sign + body
            }
            out += body
        }
        if mapping == nil && argIndex < positional.count {
            throw PyOps.typeError("not all arguments converted during string formatting")
        }
        return out
    }

    static func cFloat(_ d: Double, type: Unicode.Scalar, precision: Int, alternate: Bool) -> String {
        if d.isNaN { return type.properties.isUppercase ? "NAN" : "nan" }
        if d.isInfinite { return type.properties.isUppercase ? "INF" : "inf" }
        return String(format: "%\(alternate ? "#" : "").\(precision)\(type)", d)
    }

    // MARK: str.format

    static func format(_ format: String, _ args: CallArguments, renderer: Renderer) throws -> String {
        let f = format.scalars
        var out = ""
        var auto = 0
        var i = 0
        while i < f.count {
            let c = f[i]
            if c == "}" {
                guard i + 1 < f.count, f[i + 1] == "}" else { throw PyOps.valueError("Single '}' encountered in format string") }
                out += "}"; i += 2; continue
            }
            guard c == "{" else { out.unicodeScalars.append(c); i += 1; continue }
            if i + 1 < f.count, f[i + 1] == "{" { out += "{"; i += 2; continue }
            var depth = 1
            var j = i + 1
            while j < f.count, depth > 0 {
                if f[j] == "{" { depth += 1 } else if f[j] == "}" { depth -= 1 }
                if depth > 0 { j += 1 }
            }
            guard j < f.count else { throw PyOps.valueError("expected '}' before end of string") }
            let field = f[(i + 1)..<j]
            i = j + 1
            // field_name[!conv][:spec]
            var name = Scalars(), conversion: Unicode.Scalar?, spec = Scalars()
            var k = field.startIndex
            var bracket = false
            while k < field.endIndex {
                let ch = field[k]
                if ch == "[" { bracket = true } else if ch == "]" { bracket = false }
                if !bracket && (ch == "!" || ch == ":") { break }
                name.append(ch); k += 1
            }
            if k < field.endIndex, field[k] == "!" {
                guard k + 1 < field.endIndex else { throw PyOps.valueError("end of string while looking for conversion specifier") }
                conversion = field[k + 1]; k += 2
            }
            if k < field.endIndex, field[k] == ":" { spec = Array(field[(k + 1)...]) }
            // Nested replacement fields in the spec.
            let specText = try PyFormat.format(String(scalars: spec), args, renderer: renderer)
            var value = try resolveField(name, args, &auto, renderer: renderer)
            switch conversion {
            case nil: break
            case "r", "a": value = .string(PyRepr.repr(value))
            case "s": value = .string(PyRepr.str(value))
            default: throw PyOps.valueError("Unknown conversion specifier \(conversion!)")
            }
            out += try formatValue(value, spec: specText)
        }
        return out
    }

    private static func resolveField(_ name: Scalars, _ args: CallArguments, _ auto: inout Int, renderer: Renderer) throws -> Value {
        var k = 0
        var first = Scalars()
        while k < name.count, name[k] != ".", name[k] != "[" { first.append(name[k]); k += 1 }
        var value: Value
        if first.isEmpty {
            guard auto < args.positional.count else { throw ChatTemplateError(kind: .value, message: "Replacement index \(auto) out of range for positional args tuple") }
            value = args.positional[auto]; auto += 1
        } else if let n = Int(String(scalars: first)) {
            guard n < args.positional.count else { throw ChatTemplateError(kind: .value, message: "Replacement index \(n) out of range for positional args tuple") }
            value = args.positional[n]
        } else {
            let key = String(scalars: first)
            guard let v = args.keyword.first(where: { $0.0 == key })?.1 else { throw ChatTemplateError(kind: .value, message: PyText.repr(key)) }
            value = v
        }
        while k < name.count {
            if name[k] == "." {
                k += 1
                var attr = Scalars()
                while k < name.count, name[k] != ".", name[k] != "[" { attr.append(name[k]); k += 1 }
                value = try renderer.getAttribute(value, String(scalars: attr))
            } else if name[k] == "[" {
                k += 1
                var key = Scalars()
                while k < name.count, name[k] != "]" { key.append(name[k]); k += 1 }
                k += 1
                let keyText = String(scalars: key)
                value = try renderer.getItem(value, Int(keyText).map { Value.int($0) } ?? .string(keyText))
            } else {
                break
            }
            if case .undefined(let u) = value { throw u.error }
        }
        return value
    }

    /// format(value, spec) for str, int and float values.
    static func formatValue(_ value: Value, spec: String) throws -> String {
        if spec.isEmpty { return PyRepr.str(value) }
        var s = spec.scalars
        var fill: Unicode.Scalar = " "
        var align: Unicode.Scalar?
        if s.count >= 2, "<>^=".unicodeScalars.contains(s[1]) { fill = s[0]; align = s[1]; s.removeFirst(2) }
        else if let first = s.first, "<>^=".unicodeScalars.contains(first) { align = first; s.removeFirst() }
        var sign: Unicode.Scalar = "-"
        if let first = s.first, "+- ".unicodeScalars.contains(first) { sign = first; s.removeFirst() }
        var alternate = false
        if s.first == "#" { alternate = true; s.removeFirst() }
        if s.first == "0" { if align == nil { fill = "0"; align = "=" }; s.removeFirst() }
        var width = 0
        while let first = s.first, let d = Int(String(first)) { width = width * 10 + d; s.removeFirst() }
        var grouping: Unicode.Scalar?
        if let first = s.first, first == "," || first == "_" { grouping = first; s.removeFirst() }
        var precision: Int?
        if s.first == "." {
            s.removeFirst()
            var p = 0
            while let first = s.first, let d = Int(String(first)) { p = p * 10 + d; s.removeFirst() }
            precision = p
        }
        let type: Unicode.Scalar? = s.first
        if s.count > 1 { throw PyOps.valueError("Invalid format specifier '\(spec)'") }

        var body: String
        var negative = false
        var numeric = true
        switch value {
        case .string(let str), .markup(let str):
            guard type == nil || type == "s" else { throw PyOps.valueError("Unknown format code '\(type!)' for object of type 'str'") }
            numeric = false
            body = precision.map { String(scalars: str.scalars.prefix($0)) } ?? str
        case .int, .bool:
            let n = PyOps.integer(value)!
            negative = n < 0
            switch type {
            case nil, "d", "n":
                body = String(n.magnitude)
            case "x", "X", "o", "b":
                let radix = type == "o" ? 8 : (type == "b" ? 2 : 16)
                body = String(n.magnitude, radix: radix, uppercase: type == "X")
                if alternate { body = "0" + String(type!) + body }
            case "c":
                body = Unicode.Scalar(UInt32(n)).map { String($0) } ?? ""
            case "e", "E", "f", "F", "g", "G", "%":
                return try formatValue(.double(Double(n)), spec: spec)
            default:
                throw PyOps.valueError("Unknown format code '\(type!)' for object of type 'int'")
            }
            if let grouping, type == nil || type == "d" { body = group(body, grouping) }
        case .double(let d):
            negative = d < 0 || (d == 0 && d.sign == .minus)
            let m = abs(d)
            switch type {
            case nil:
                body = precision.map { cFloat(m, type: "g", precision: max($0, 1), alternate: alternate) } ?? PyText.floatRepr(m)
            case "e", "E", "f", "F", "g", "G":
                body = cFloat(m, type: type!, precision: precision ?? 6, alternate: alternate)
            case "%":
                body = cFloat(m * 100, type: "f", precision: precision ?? 6, alternate: alternate) + "%"
            default:
                throw PyOps.valueError("Unknown format code '\(type!)' for object of type 'float'")
            }
            if let grouping {
                let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
                body = group(String(parts[0]), grouping) + (parts.count > 1 ? "." + parts[1] : "")
            }
        default:
            guard type == nil else { throw PyOps.typeError("unsupported format string passed to \(value.typeName).__format__") }
            numeric = false
            body = PyRepr.str(value)
        }
        var signText = ""
        if numeric {
            if negative { signText = "-" } else if sign == "+" { signText = "+" } else if sign == " " { signText = " " }
        }
        let length = signText.count + body.unicodeScalars.count
        guard width > length else { return signText + body }
        let pad = width - length
        let fillText = { (n: Int) in String(repeating: String(fill), count: n) }
        switch align ?? (numeric ? ">" : "<") {
        case "<": return signText + body + fillText(pad)
        case "^": return fillText(pad / 2) + signText + body + fillText(pad - pad / 2)
        case "=": return signText + fillText(pad) + body
        default: return fillText(pad) + signText + body
        }
    }

    private static func group(_ digits: String, _ separator: Unicode.Scalar) -> String {
        let chars = Array(digits)
        var out = ""
        for (i, c) in chars.enumerated() {
            if i > 0 && (chars.count - i) % 3 == 0 { out.unicodeScalars.append(separator) }
            out.append(c)
        }
        return out
    }
}
