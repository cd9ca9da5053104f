// The syntax tree the parser builds and the renderer walks: expressions (jinja2's expression
// nodes) and statements (output, if, for, set, macro, call, filter blocks, with, break/continue).

enum Constant: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

enum BinaryOp: String, Sendable {
    case add = "+", sub = "-", mul = "*", div = "/", floorDiv = "//", mod = "%", pow = "**"
}

enum CompareKind: String, Sendable {
    case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=", `in` = "in", notIn = "not in"
}

struct Expr: Sendable {
    var kind: ExprKind
    var pos: SourcePos
}

struct KeywordArg: Sendable {
    var name: String
    var value: Expr
}

struct CallArgs: Sendable {
    var positional: [Expr] = []
    var keyword: [KeywordArg] = []
    var starArgs: Expr?
    var starKwargs: Expr?
}

struct DictEntry: Sendable {
    var key: Expr
    var value: Expr
}

struct CompareOperand: Sendable {
    var op: CompareKind
    var rhs: Expr
}

indirect enum ExprKind: Sendable {
    case constant(Constant)
    case name(String)
    case list([Expr])
    case tuple([Expr])
    case dict([DictEntry])
    case getattr(Expr, String)
    case getitem(Expr, Expr)
    /// Only as the subscript of `getitem`.
    case slice(Expr?, Expr?, Expr?)
    case call(Expr, CallArgs)
    /// A nil input means "the body of the enclosing filter block / set block".
    case filter(Expr?, String, CallArgs)
    case test(Expr, String, CallArgs)
    case not(Expr)
    case negate(Expr)
    case plus(Expr)
    case binary(BinaryOp, Expr, Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case concat([Expr])
    case compare(Expr, [CompareOperand])
    case conditional(test: Expr, then: Expr, otherwise: Expr?)
}

indirect enum Target: Sendable {
    case name(String)
    case tuple([Target])
    /// `ns.attr` — assignment to a namespace attribute.
    case namespaceAttr(String, String)
}

struct Node: Sendable {
    var kind: NodeKind
    var pos: SourcePos
}

struct IfBranch: Sendable {
    var test: Expr
    var body: [Node]
}

struct ForNode: Sendable {
    var target: Target
    var iterable: Expr
    var filter: Expr?
    var body: [Node]
    var elseBody: [Node]
    var recursive: Bool
}

struct MacroDef: Sendable {
    var name: String
    var params: [String]
    /// Defaults of the last `defaults.count` parameters.
    var defaults: [Expr]
    var body: [Node]
    /// Whether the body uses `varargs`, `kwargs`, `caller` (jinja2 only accepts extra arguments then).
    var catchesVarargs: Bool
    var catchesKwargs: Bool
    var usesCaller: Bool
}

struct WithAssignment: Sendable {
    var target: Target
    var value: Expr
}

indirect enum NodeKind: Sendable {
    case text(String)
    case output(Expr)
    case ifNode([IfBranch], elseBody: [Node])
    case forNode(ForNode)
    case assign(Target, Expr)
    case assignBlock(Target, filter: Expr?, body: [Node])
    case macro(MacroDef)
    /// `{% call(params) expr %}body{% endcall %}`: `caller` is a macro made of the body.
    case callBlock(call: Expr, caller: MacroDef)
    case filterBlock(filter: Expr, body: [Node])
    case with([WithAssignment], body: [Node])
    /// A body rendered in its own scope (`{% generation %}` from transformers' AssistantTracker).
    case scoped([Node])
    case breakLoop
    case continueLoop
}
