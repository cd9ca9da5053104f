// The one error type of the module: syntax errors (with line and column), `raise_exception`
// messages from the template (verbatim), and runtime errors (undefined values, type errors,
// unknown filters or tests) with the line they happened on.

public struct ChatTemplateError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The template text does not parse (jinja2's TemplateSyntaxError / TemplateAssertionError).
        case syntax
        /// The template called `raise_exception(message)`; `message` is its argument verbatim.
        case raised
        /// A value that is undefined was used in a way that needs a value (jinja2's UndefinedError).
        case undefined
        /// A filter the template names does not exist.
        case unknownFilter
        /// A test (`is name`) the template names does not exist.
        case unknownTest
        /// An operation on values of the wrong type (Python's TypeError).
        case type
        /// A bad value (Python's ValueError, ZeroDivisionError, bad JSON, ...).
        case value
        /// The sandbox refused an operation (jinja2's SecurityError).
        case security
        /// A jinja2 feature this implementation does not provide.
        case unsupported
    }

    public var kind: Kind
    /// The message alone: for `.raised`, exactly the string the template passed.
    public var message: String
    /// 1-based line in the template source, when known.
    public var line: Int?
    /// 1-based column (in Unicode scalars), when known (syntax errors).
    public var column: Int?

    public init(kind: Kind, message: String, line: Int? = nil, column: Int? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String {
        if kind == .raised { return message }
        var where_ = ""
        if let line {
            where_ = column.map { " (line \(line), column \($0))" } ?? " (line \(line))"
        }
        switch kind {
        case .syntax: return "template syntax error\(where_): \(message)"
        default: return "template error\(where_): \(message)"
        }
    }
}
