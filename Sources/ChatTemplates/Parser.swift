// The parser: tokens to the syntax tree, following jinja2's grammar (parser.py) rule for rule so
// that precedence and the odd corners match: filters bind tighter than arithmetic (`a + b|trim`
// trims b only), `x if c` without else, `is not`, `not in`, chained comparisons, adjacent string
// literals concatenating, `for ... if ...`, `{% set ns.x = ... %}`, block `set`, macros, call blocks.
// Like jinja2, an unknown filter or test is an error at parse time unless it sits inside an `if`
// (or inline if), where it only fails when evaluated.

struct Parser {
    private var tokens: [Token]
    private var index = 0
    /// Innermost-last: the end tags each open block is waiting for.
    private var endTokenStack: [[String]] = []
    /// Innermost-last: the names of the open block tags.
    private var tagStack: [String] = []
    /// Innermost-last: whether the current frame is "soft" (inside `if`): unknown filters fail late.
    private var softFrames: [Bool] = [false]
    private var loopDepth = 0
    /// Nesting of expressions and blocks being parsed; bounded so a pathological template fails
    /// with an error instead of overflowing the stack.
    private var nesting = 0
    private static let maxNesting = 200

    private mutating func nested<T>(_ body: (inout Parser) throws -> T) throws -> T {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > Parser.maxNesting { throw fail("template nesting too deep (more than \(Parser.maxNesting) levels)") }
        return try body(&self)
    }

    init(tokens: [Token]) { self.tokens = tokens }

    static func parse(_ source: String) throws -> [Node] {
        var parser = Parser(tokens: try Lexer.tokenize(source))
        return try parser.parseTemplate()
    }

    // MARK: token helpers

    private var current: Token { tokens[index] }
    private var look: Token { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() -> Token {
        let t = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    private func isName(_ value: String) -> Bool { current.kind == .name && current.text == value }
    private func isOp(_ op: String) -> Bool { current.kind == .op && current.text == op }

    private func fail(_ message: String, _ pos: SourcePos? = nil) -> ChatTemplateError {
        let p = pos ?? current.pos
        return ChatTemplateError(kind: .syntax, message: message, line: p.line, column: p.column)
    }

    private func unexpected(expected: String) -> ChatTemplateError {
        if current.kind == .eof {
            return fail("unexpected end of template, expected '\(expected)'.")
        }
        return fail("expected token '\(expected)', got \(current.describe)")
    }

    @discardableResult
    private mutating func expectOp(_ op: String) throws -> Token {
        guard isOp(op) else { throw unexpected(expected: op) }
        return advance()
    }

    @discardableResult
    private mutating func expectName(_ value: String? = nil) throws -> Token {
        guard current.kind == .name, value == nil || current.text == value else {
            throw unexpected(expected: value ?? "name")
        }
        return advance()
    }

    private mutating func expectKind(_ kind: TokenKind, _ description: String) throws {
        guard current.kind == kind else { throw unexpected(expected: description) }
        _ = advance()
    }

    private mutating func skipName(_ value: String) -> Bool {
        if isName(value) { _ = advance(); return true }
        return false
    }

    private mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) { _ = advance(); return true }
        return false
    }

    private mutating func inFrame<T>(soft: Bool, _ body: (inout Parser) throws -> T) rethrows -> T {
        softFrames.append(soft)
        defer { softFrames.removeLast() }
        return try body(&self)
    }

    // MARK: statements

    mutating func parseTemplate() throws -> [Node] {
        let body = try subparse(endTokens: nil)
        if current.kind != .eof { throw fail("unexpected \(current.describe)") }
        return body
    }

    private mutating func subparse(endTokens: [String]?) throws -> [Node] {
        var body: [Node] = []
        if let endTokens { endTokenStack.append(endTokens) }
        defer { if endTokens != nil { endTokenStack.removeLast() } }
        while current.kind != .eof {
            let token = current
            switch token.kind {
            case .data:
                _ = advance()
                body.append(Node(kind: .text(token.text), pos: token.pos))
            case .variableBegin:
                _ = advance()
                let expr = try parseTuple(withCondexpr: true)
                try expectKind(.variableEnd, "end of print statement")
                body.append(Node(kind: .output(expr), pos: token.pos))
            case .blockBegin:
                _ = advance()
                if let endTokens, current.kind == .name, endTokens.contains(current.text) {
                    return body
                }
                let statement = try parseStatement()
                body.append(contentsOf: statement)
                try expectKind(.blockEnd, "end of statement block")
            default:
                throw fail("internal parsing error: unexpected \(token.describe)")
            }
        }
        return body
    }

    private mutating func parseStatements(_ endTokens: [String], dropNeedle: Bool = false) throws -> [Node] {
        _ = skipOp(":")
        try expectKind(.blockEnd, "end of statement block")
        let body = try subparse(endTokens: endTokens)
        if current.kind == .eof { throw failUnknownTag(nil, alsoLookingFor: endTokens) }
        if dropNeedle { _ = advance() }
        return body
    }

    private func failUnknownTag(_ name: String?, alsoLookingFor extra: [String]? = nil) -> ChatTemplateError {
        var message = name.map { "Encountered unknown tag '\($0)'." } ?? "Unexpected end of template."
        let stack = endTokenStack + (extra.map { [$0] } ?? [])
        if let looking = stack.last {
            let list = looking.map { "'\($0)'" }.joined(separator: " or ")
            if let name, stack.contains(where: { $0.contains(name) }) {
                message += " You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for \(list)."
            } else {
                message += " Jinja was looking for the following tags: \(list)."
            }
        }
        if let tag = tagStack.last {
            message += " The innermost block that needs to be closed is '\(tag)'."
        }
        return fail(message)
    }

    private mutating func parseStatement() throws -> [Node] {
        try nested { try $0.parseStatementBody() }
    }

    private static let statementTags: Set<String> = [
        "for", "if", "set", "macro", "call", "filter", "with", "print", "break", "continue", "generation",
        "block", "extends", "include", "import", "from", "autoescape",
    ]

    private mutating func parseStatementBody() throws -> [Node] {
        let token = current
        guard token.kind == .name else { throw fail("tag name expected") }
        // jinja2 names the enclosing block, not the unknown tag, as the one to close.
        guard Parser.statementTags.contains(token.text) else { throw failUnknownTag(token.text) }
        tagStack.append(token.text)
        defer { tagStack.removeLast() }
        switch token.text {
        case "for": return [try parseFor()]
        case "if": return [try parseIf()]
        case "set": return [try parseSet()]
        case "macro": return [try parseMacro()]
        case "call": return [try parseCallBlock()]
        case "filter": return [try parseFilterBlock()]
        case "with": return [try parseWith()]
        case "print":
            _ = advance()
            var nodes: [Node] = []
            while current.kind != .blockEnd {
                if !nodes.isEmpty { try expectOp(",") }
                let e = try parseExpression()
                nodes.append(Node(kind: .output(e), pos: e.pos))
            }
            return nodes
        case "break", "continue":
            _ = advance()
            guard loopDepth > 0 else { throw fail("'\(token.text)' outside loop", token.pos) }
            return [Node(kind: token.text == "break" ? .breakLoop : .continueLoop, pos: token.pos)]
        case "generation":
            _ = advance()
            let body = try inFrame(soft: false) { try $0.parseStatements(["endgeneration"], dropNeedle: true) }
            return [Node(kind: .scoped(body), pos: token.pos)]
        default:  // block, extends, include, import, from, autoescape
            throw ChatTemplateError(kind: .unsupported, message: "the '\(token.text)' tag is not supported",
                                    line: token.pos.line, column: token.pos.column)
        }
    }

    private mutating func parseFor() throws -> Node {
        let start = try expectName("for")
        let target = try parseAssignTarget(extraEndRules: ["in"])
        try expectName("in")
        let iterable = try parseTuple(withCondexpr: false, extraEndRules: ["recursive"])
        var filter: Expr?
        if skipName("if") { filter = try parseExpression() }
        let recursive = skipName("recursive")
        loopDepth += 1
        let body = try inFrame(soft: false) { try $0.parseStatements(["endfor", "else"]) }
        loopDepth -= 1
        var elseBody: [Node] = []
        if advance().text != "endfor" {
            elseBody = try parseStatements(["endfor"], dropNeedle: true)
        }
        return Node(kind: .forNode(ForNode(target: target, iterable: iterable, filter: filter, body: body,
                                           elseBody: elseBody, recursive: recursive)), pos: start.pos)
    }

    private mutating func parseIf() throws -> Node {
        let start = try expectName("if")
        return try inFrame(soft: true) { p in
            var branches: [IfBranch] = []
            var elseBody: [Node] = []
            while true {
                let test = try p.parseTuple(withCondexpr: false)
                let body = try p.parseStatements(["elif", "else", "endif"])
                branches.append(IfBranch(test: test, body: body))
                let token = p.advance()
                if token.text == "elif" { continue }
                if token.text == "else" {
                    elseBody = try p.parseStatements(["endif"], dropNeedle: true)
                }
                break
            }
            return Node(kind: .ifNode(branches, elseBody: elseBody), pos: start.pos)
        }
    }

    private mutating func parseSet() throws -> Node {
        let start = advance()
        let target = try parseAssignTarget(withNamespace: true)
        if skipOp("=") {
            let value = try parseTuple(withCondexpr: true)
            return Node(kind: .assign(target, value), pos: start.pos)
        }
        let filter = try parseFilter(nil, startInline: false)
        let body = try inFrame(soft: false) { try $0.parseStatements(["endset"], dropNeedle: true) }
        return Node(kind: .assignBlock(target, filter: filter, body: body), pos: start.pos)
    }

    private mutating func parseSignature() throws -> (params: [String], defaults: [Expr]) {
        var params: [String] = []
        var defaults: [Expr] = []
        try expectOp("(")
        while !isOp(")") {
            if !params.isEmpty { try expectOp(",") }
            let name = try expectName()
            if skipOp("=") {
                defaults.append(try parseExpression())
            } else if !defaults.isEmpty {
                throw fail("non-default argument follows default argument", name.pos)
            }
            params.append(name.text)
        }
        try expectOp(")")
        return (params, defaults)
    }

    private mutating func parseMacro() throws -> Node {
        let start = advance()
        let name = try expectName()
        let (params, defaults) = try parseSignature()
        let savedDepth = loopDepth
        loopDepth = 0
        let body = try inFrame(soft: false) { try $0.parseStatements(["endmacro"], dropNeedle: true) }
        loopDepth = savedDepth
        return Node(kind: .macro(makeMacro(name.text, params, defaults, body)), pos: start.pos)
    }

    private func makeMacro(_ name: String, _ params: [String], _ defaults: [Expr], _ body: [Node]) -> MacroDef {
        var names = Set<String>()
        NameCollector.collect(body, into: &names)
        return MacroDef(name: name, params: params, defaults: defaults, body: body,
                        catchesVarargs: names.contains("varargs") && !params.contains("varargs"),
                        catchesKwargs: names.contains("kwargs") && !params.contains("kwargs"),
                        usesCaller: names.contains("caller") && !params.contains("caller"))
    }

    private mutating func parseCallBlock() throws -> Node {
        let start = advance()
        var params: [String] = []
        var defaults: [Expr] = []
        if isOp("(") { (params, defaults) = try parseSignature() }
        let call = try parseExpression()
        guard case .call = call.kind else { throw fail("expected call", start.pos) }
        let savedDepth = loopDepth
        loopDepth = 0
        let body = try inFrame(soft: false) { try $0.parseStatements(["endcall"], dropNeedle: true) }
        loopDepth = savedDepth
        return Node(kind: .callBlock(call: call, caller: makeMacro("caller", params, defaults, body)), pos: start.pos)
    }

    private mutating func parseFilterBlock() throws -> Node {
        let start = advance()
        guard let filter = try parseFilter(nil, startInline: true) else { throw fail("expected a filter") }
        let body = try inFrame(soft: false) { try $0.parseStatements(["endfilter"], dropNeedle: true) }
        return Node(kind: .filterBlock(filter: filter, body: body), pos: start.pos)
    }

    private mutating func parseWith() throws -> Node {
        let start = advance()
        var assignments: [WithAssignment] = []
        while current.kind != .blockEnd {
            if !assignments.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget()
            try expectOp("=")
            assignments.append(WithAssignment(target: target, value: try parseExpression()))
        }
        let body = try inFrame(soft: false) { try $0.parseStatements(["endwith"], dropNeedle: true) }
        return Node(kind: .with(assignments, body: body), pos: start.pos)
    }

    private mutating func parseAssignTarget(extraEndRules: [String]? = nil, withNamespace: Bool = false) throws -> Target {
        if withNamespace, current.kind == .name, look.kind == .op, look.text == "." {
            let ns = advance()
            _ = advance()
            let attr = try expectName()
            return .namespaceAttr(ns.text, attr.text)
        }
        let expr = try parseTuple(simplified: true, extraEndRules: extraEndRules)
        return try target(from: expr)
    }

    private func target(from expr: Expr) throws -> Target {
        switch expr.kind {
        case .name(let n): return .name(n)
        case .tuple(let items): return .tuple(try items.map { try target(from: $0) })
        default:
            let what: String
            switch expr.kind {
            case .constant: what = "const"
            case .list: what = "list"
            case .dict: what = "dict"
            default: what = "expression"
            }
            throw fail("can't assign to '\(what)'", expr.pos)
        }
    }

    // MARK: expressions

    mutating func parseExpression(withCondexpr: Bool = true) throws -> Expr {
        try nested { withCondexpr ? try $0.parseCondexpr() : try $0.parseOr() }
    }

    private mutating func parseCondexpr() throws -> Expr {
        let start = current.pos
        var expr1 = try parseOr()
        while skipName("if") {
            let (test, otherwise) = try inFrame(soft: true) { p -> (Expr, Expr?) in
                let test = try p.parseOr()
                var otherwise: Expr?
                if p.skipName("else") { otherwise = try p.nested { try $0.parseCondexpr() } }
                return (test, otherwise)
            }
            expr1 = Expr(kind: .conditional(test: test, then: expr1, otherwise: otherwise), pos: start)
        }
        return expr1
    }

    private mutating func parseOr() throws -> Expr {
        var left = try parseAnd()
        while skipName("or") {
            let right = try parseAnd()
            left = Expr(kind: .or(left, right), pos: left.pos)
        }
        return left
    }

    private mutating func parseAnd() throws -> Expr {
        var left = try parseNot()
        while skipName("and") {
            let right = try parseNot()
            left = Expr(kind: .and(left, right), pos: left.pos)
        }
        return left
    }

    private mutating func parseNot() throws -> Expr {
        if isName("not") {
            let start = advance()
            return Expr(kind: .not(try nested { try $0.parseNot() }), pos: start.pos)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> Expr {
        let expr = try parseMath1()
        var ops: [CompareOperand] = []
        while true {
            if current.kind == .op, let kind = CompareKind(rawValue: current.text), kind != .in, kind != .notIn {
                _ = advance()
                ops.append(CompareOperand(op: kind, rhs: try parseMath1()))
            } else if skipName("in") {
                ops.append(CompareOperand(op: .in, rhs: try parseMath1()))
            } else if isName("not"), look.kind == .name, look.text == "in" {
                _ = advance(); _ = advance()
                ops.append(CompareOperand(op: .notIn, rhs: try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? expr : Expr(kind: .compare(expr, ops), pos: expr.pos)
    }

    private mutating func parseMath1() throws -> Expr {
        var left = try parseConcat()
        while isOp("+") || isOp("-") {
            let op: BinaryOp = advance().text == "+" ? .add : .sub
            let right = try parseConcat()
            left = Expr(kind: .binary(op, left, right), pos: left.pos)
        }
        return left
    }

    private mutating func parseConcat() throws -> Expr {
        var args = [try parseMath2()]
        while skipOp("~") { args.append(try parseMath2()) }
        return args.count == 1 ? args[0] : Expr(kind: .concat(args), pos: args[0].pos)
    }

    private mutating func parseMath2() throws -> Expr {
        var left = try parsePow()
        while current.kind == .op, ["*", "/", "//", "%"].contains(current.text) {
            let op = BinaryOp(rawValue: advance().text)!
            let right = try parsePow()
            left = Expr(kind: .binary(op, left, right), pos: left.pos)
        }
        return left
    }

    private mutating func parsePow() throws -> Expr {
        var left = try parseUnary()
        while skipOp("**") {
            let right = try parseUnary()
            left = Expr(kind: .binary(.pow, left, right), pos: left.pos)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> Expr {
        var node: Expr
        if isOp("-") {
            let start = advance()
            node = Expr(kind: .negate(try nested { try $0.parseUnary(withFilter: false) }), pos: start.pos)
        } else if isOp("+") {
            let start = advance()
            node = Expr(kind: .plus(try nested { try $0.parseUnary(withFilter: false) }), pos: start.pos)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    private mutating func parsePrimary() throws -> Expr {
        let token = current
        switch token.kind {
        case .name:
            _ = advance()
            switch token.text {
            case "true", "True": return Expr(kind: .constant(.bool(true)), pos: token.pos)
            case "false", "False": return Expr(kind: .constant(.bool(false)), pos: token.pos)
            case "none", "None": return Expr(kind: .constant(.none), pos: token.pos)
            default: return Expr(kind: .name(token.text), pos: token.pos)
            }
        case .string:
            var text = advance().text
            while current.kind == .string { text += advance().text }
            return Expr(kind: .constant(.string(text)), pos: token.pos)
        case .integer:
            _ = advance()
            return Expr(kind: .constant(.int(token.intValue)), pos: token.pos)
        case .float:
            _ = advance()
            return Expr(kind: .constant(.double(token.doubleValue)), pos: token.pos)
        case .op where token.text == "(":
            _ = advance()
            let node = try nested { try $0.parseTuple(explicitParentheses: true) }
            try expectOp(")")
            return node
        case .op where token.text == "[":
            return try parseList()
        case .op where token.text == "{":
            return try parseDict()
        default:
            if token.kind == .eof { throw fail("unexpected end of template") }
            throw fail("unexpected \(token.describe)")
        }
    }

    private func isTupleEnd(_ extraEndRules: [String]?) -> Bool {
        if current.kind == .variableEnd || current.kind == .blockEnd || isOp(")") { return true }
        if let extraEndRules, current.kind == .name, extraEndRules.contains(current.text) { return true }
        return false
    }

    private mutating func parseTuple(simplified: Bool = false, withCondexpr: Bool = true,
                                     extraEndRules: [String]? = nil, explicitParentheses: Bool = false) throws -> Expr
    {
        let start = current.pos
        var args: [Expr] = []
        var isTuple = false
        while true {
            if !args.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEndRules) { break }
            if simplified {
                args.append(try parsePrimary())
            } else {
                args.append(try parseExpression(withCondexpr: withCondexpr))
            }
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = args.first { return only }
            if !explicitParentheses { throw fail("Expected an expression, got \(current.describe)") }
        }
        return Expr(kind: .tuple(args), pos: start)
    }

    private mutating func parseList() throws -> Expr {
        let start = try expectOp("[")
        var items: [Expr] = []
        while !isOp("]") {
            if !items.isEmpty { try expectOp(",") }
            if isOp("]") { break }
            items.append(try parseExpression())
        }
        try expectOp("]")
        return Expr(kind: .list(items), pos: start.pos)
    }

    private mutating func parseDict() throws -> Expr {
        let start = try expectOp("{")
        var items: [DictEntry] = []
        while !isOp("}") {
            if !items.isEmpty { try expectOp(",") }
            if isOp("}") { break }
            let key = try parseExpression()
            try expectOp(":")
            items.append(DictEntry(key: key, value: try parseExpression()))
        }
        try expectOp("}")
        return Expr(kind: .dict(items), pos: start.pos)
    }

    private mutating func parsePostfix(_ node: Expr) throws -> Expr {
        var node = node
        while true {
            if isOp(".") || isOp("[") {
                node = try parseSubscript(node)
            } else if isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpr(_ node: Expr) throws -> Expr {
        var node = node
        while true {
            if isOp("|") {
                node = try parseFilter(node, startInline: false)!
            } else if isName("is") {
                node = try parseTest(node)
            } else if isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ node: Expr) throws -> Expr {
        let token = advance()
        if token.text == "." {
            let attr = current
            _ = advance()
            if attr.kind == .name {
                return Expr(kind: .getattr(node, attr.text), pos: node.pos)
            }
            if attr.kind == .integer {
                return Expr(kind: .getitem(node, Expr(kind: .constant(.int(attr.intValue)), pos: attr.pos)), pos: node.pos)
            }
            throw fail("expected name or number", attr.pos)
        }
        var args: [Expr] = []
        while !isOp("]") {
            if !args.isEmpty { try expectOp(",") }
            args.append(try parseSubscribed())
        }
        try expectOp("]")
        let arg = args.count == 1 ? args[0] : Expr(kind: .tuple(args), pos: token.pos)
        return Expr(kind: .getitem(node, arg), pos: node.pos)
    }

    private mutating func parseSubscribed() throws -> Expr {
        let start = current.pos
        var parts: [Expr?] = []
        if isOp(":") {
            _ = advance()
            parts.append(nil)
        } else {
            let node = try parseExpression()
            if !isOp(":") { return node }
            _ = advance()
            parts.append(node)
        }
        if isOp(":") {
            parts.append(nil)
        } else if !isOp("]") && !isOp(",") {
            parts.append(try parseExpression())
        } else {
            parts.append(nil)
        }
        if isOp(":") {
            _ = advance()
            if !isOp("]") && !isOp(",") {
                parts.append(try parseExpression())
            } else {
                parts.append(nil)
            }
        } else {
            parts.append(nil)
        }
        return Expr(kind: .slice(parts[0], parts[1], parts[2]), pos: start)
    }

    private mutating func parseCallArgs() throws -> CallArgs {
        let open = try expectOp("(")
        var args = CallArgs()
        var requireComma = false
        while !isOp(")") {
            if requireComma {
                try expectOp(",")
                if isOp(")") { break }
            }
            if isOp("*") {
                _ = advance()
                guard args.starArgs == nil, args.starKwargs == nil else { throw fail("invalid syntax for function call expression", open.pos) }
                args.starArgs = try parseExpression()
            } else if isOp("**") {
                _ = advance()
                guard args.starKwargs == nil else { throw fail("invalid syntax for function call expression", open.pos) }
                args.starKwargs = try parseExpression()
            } else if current.kind == .name, look.kind == .op, look.text == "=" {
                guard args.starKwargs == nil else { throw fail("invalid syntax for function call expression", open.pos) }
                let key = advance().text
                _ = advance()
                args.keyword.append(KeywordArg(name: key, value: try parseExpression()))
            } else {
                guard args.starArgs == nil, args.starKwargs == nil, args.keyword.isEmpty else {
                    throw fail("invalid syntax for function call expression", open.pos)
                }
                args.positional.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return args
    }

    private mutating func parseCall(_ node: Expr) throws -> Expr {
        let args = try parseCallArgs()
        return Expr(kind: .call(node, args), pos: node.pos)
    }

    private mutating func dottedName() throws -> (String, SourcePos) {
        let token = try expectName()
        var name = token.text
        while isOp(".") {
            _ = advance()
            name += "." + (try expectName()).text
        }
        return (name, token.pos)
    }

    private mutating func parseFilter(_ node: Expr?, startInline: Bool) throws -> Expr? {
        var node = node
        var inline = startInline
        var parsedAny = false
        while isOp("|") || inline {
            if !inline { _ = advance() }
            inline = false
            let (name, pos) = try dottedName()
            if !Builtins.filterNames.contains(name) && !(softFrames.last ?? false) {
                throw ChatTemplateError(kind: .unknownFilter, message: "No filter named '\(name)'.",
                                        line: pos.line, column: pos.column)
            }
            let args = isOp("(") ? try parseCallArgs() : CallArgs()
            node = Expr(kind: .filter(node, name, args), pos: node?.pos ?? pos)
            parsedAny = true
        }
        return parsedAny ? node : nil
    }

    private mutating func parseTest(_ node: Expr) throws -> Expr {
        _ = advance()  // 'is'
        var negated = false
        if isName("not") { _ = advance(); negated = true }
        let (name, pos) = try dottedName()
        if !Builtins.testNames.contains(name) && !(softFrames.last ?? false) {
            throw ChatTemplateError(kind: .unknownTest, message: "No test named '\(name)'.",
                                    line: pos.line, column: pos.column)
        }
        var args = CallArgs()
        if isOp("(") {
            args = try parseCallArgs()
        } else if [.name, .string, .integer, .float].contains(current.kind) || isOp("(") || isOp("[") || isOp("{"),
                  !isName("else"), !isName("or"), !isName("and")
        {
            if isName("is") { throw fail("You cannot chain multiple tests with is") }
            var arg = try parsePrimary()
            arg = try parsePostfix(arg)
            args.positional = [arg]
        }
        let test = Expr(kind: .test(node, name, args), pos: node.pos)
        return negated ? Expr(kind: .not(test), pos: node.pos) : test
    }
}

/// Collects every name an expression or statement list reads (used to see whether a macro body
/// refers to `varargs`, `kwargs` or `caller`).
enum NameCollector {
    static func collect(_ nodes: [Node], into names: inout Set<String>) {
        for node in nodes { collect(node, into: &names) }
    }

    static func collect(_ node: Node, into names: inout Set<String>) {
        switch node.kind {
        case .text, .breakLoop, .continueLoop: break
        case .output(let e): collect(e, into: &names)
        case .ifNode(let branches, let elseBody):
            for b in branches { collect(b.test, into: &names); collect(b.body, into: &names) }
            collect(elseBody, into: &names)
        case .forNode(let f):
            collect(f.iterable, into: &names)
            if let filter = f.filter { collect(filter, into: &names) }
            collect(f.body, into: &names)
            collect(f.elseBody, into: &names)
        case .assign(_, let e): collect(e, into: &names)
        case .assignBlock(_, let filter, let body):
            if let filter { collect(filter, into: &names) }
            collect(body, into: &names)
        case .macro(let m):
            m.defaults.forEach { collect($0, into: &names) }
            collect(m.body, into: &names)
        case .callBlock(let call, let caller):
            collect(call, into: &names)
            caller.defaults.forEach { collect($0, into: &names) }
            collect(caller.body, into: &names)
        case .filterBlock(let filter, let body):
            collect(filter, into: &names)
            collect(body, into: &names)
        case .with(let assignments, let body):
            assignments.forEach { collect($0.value, into: &names) }
            collect(body, into: &names)
        case .scoped(let body): collect(body, into: &names)
        }
    }

    static func collect(_ e: Expr?, into names: inout Set<String>) {
        guard let e else { return }
        switch e.kind {
        case .constant: break
        case .name(let n): names.insert(n)
        case .list(let items), .tuple(let items), .concat(let items): items.forEach { collect($0, into: &names) }
        case .dict(let entries): entries.forEach { collect($0.key, into: &names); collect($0.value, into: &names) }
        case .getattr(let o, _): collect(o, into: &names)
        case .getitem(let o, let k): collect(o, into: &names); collect(k, into: &names)
        case .slice(let a, let b, let c): collect(a, into: &names); collect(b, into: &names); collect(c, into: &names)
        case .call(let f, let args):
            collect(f, into: &names); collect(args, into: &names)
        case .filter(let input, _, let args):
            collect(input, into: &names); collect(args, into: &names)
        case .test(let input, _, let args):
            collect(input, into: &names); collect(args, into: &names)
        case .not(let x), .negate(let x), .plus(let x): collect(x, into: &names)
        case .binary(_, let a, let b), .and(let a, let b), .or(let a, let b):
            collect(a, into: &names); collect(b, into: &names)
        case .compare(let a, let ops):
            collect(a, into: &names); ops.forEach { collect($0.rhs, into: &names) }
        case .conditional(let t, let a, let b):
            collect(t, into: &names); collect(a, into: &names); collect(b, into: &names)
        }
    }

    static func collect(_ args: CallArgs, into names: inout Set<String>) {
        args.positional.forEach { collect($0, into: &names) }
        args.keyword.forEach { collect($0.value, into: &names) }
        collect(args.starArgs, into: &names)
        collect(args.starKwargs, into: &names)
    }
}
