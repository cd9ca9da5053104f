// JSONSchema.swift — the public face of schema compilation, errors, and the OpenAI request shapes.
//
// `JSONSchema(json:)` compiles a JSON Schema (the subset listed below) into tables for the automaton.
// `JSONSchema(openAIJSONSchema:)` takes the `json_schema` member of an OpenAI `response_format`
// (`{"name":..., "schema":{...}, "strict":true}`), and `ResponseFormat(json:)` the whole
// `response_format` object (`text`, `json_object`, `json_schema`).
//
// Supported: type (one name or a list), properties, required, additionalProperties (true, false or
// a schema; absent means any value), items (a schema or boolean), minItems, maxItems, minLength,
// maxLength, enum, const (any JSON values, matched as their compact text), anyOf / oneOf whose
// alternatives can be told apart by the first byte of the value (see SchemaCompiler), allOf with a
// single member, $ref to anything inside the document ("#", "#/$defs/x", "#/definitions/x", any
// JSON pointer), $defs, definitions, uniqueItems: false.
// Ignored and listed in `ignoredKeywords`: format, pattern (generated strings may not match them),
// annotations (title, description, default, examples, ...) and keywords the spec does not know.
// Refused with JSONSchemaError naming the keyword: minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, multipleOf, patternProperties, propertyNames, minProperties, maxProperties,
// dependentRequired, dependentSchemas, dependencies, prefixItems, additionalItems, contains,
// minContains, maxContains, uniqueItems: true, not, if/then/else, unevaluatedProperties,
// unevaluatedItems, $dynamicRef, $recursiveRef, contentSchema — unless Options.ignoreUnsupported.

import Foundation

/// Why a schema could not be compiled. `keyword` names the offending keyword when there is one.
public struct JSONSchemaError: Error, CustomStringConvertible, Sendable {
    public var keyword: String?
    /// JSON pointer-like location of the schema that has the problem.
    public var path: String
    public var message: String

    public var description: String {
        let at = path.isEmpty ? "#" : path
        if let keyword { return "schema keyword '\(keyword)' at \(at): \(message)" }
        return "schema at \(at): \(message)"
    }
}

/// A compiled JSON Schema, ready to constrain a JSONPrefixState. Cheap to copy and share.
public struct JSONSchema: Sendable {
    public struct Options: Sendable {
        /// Drop refused keywords instead of throwing (they are then listed in `ignoredKeywords`, and
        /// generated documents may violate them).
        public var ignoreUnsupported: Bool
        public init(ignoreUnsupported: Bool = false) { self.ignoreUnsupported = ignoreUnsupported }
    }

    let tables: SchemaTables
    /// Keywords that were present but not enforced (format, pattern, unknown keywords, and with
    /// `ignoreUnsupported` the refused ones), without duplicates, in the order first met.
    public let ignoredKeywords: [String]
    /// The `name` of an OpenAI json_schema wrapper, when built from one.
    public internal(set) var name: String?
    /// The `strict` flag of an OpenAI json_schema wrapper, when present (enforcement is the same either way).
    public internal(set) var strict: Bool?

    init(tables: SchemaTables, ignoredKeywords: [String]) {
        self.tables = tables
        self.ignoredKeywords = ignoredKeywords
    }

    /// Compiles a JSON Schema document.
    public init(json: Data, options: Options = Options()) throws {
        let value: JSONValue
        do { value = try JSONReader.parse(json) } catch let e as JSONParseError {
            throw JSONSchemaError(keyword: nil, path: "", message: e.description)
        }
        try self.init(value: value, options: options)
    }

    public init(jsonString: String, options: Options = Options()) throws {
        try self.init(json: Data(jsonString.utf8), options: options)
    }

    init(value: JSONValue, options: Options) throws {
        var compiler = SchemaCompiler(document: value, options: options)
        let tables = try compiler.compileDocument()
        self.init(tables: tables, ignoredKeywords: compiler.ignored)
    }

    /// Compiles the `json_schema` object of an OpenAI response_format:
    /// `{"name": "...", "schema": {...}, "strict": true}`. A missing `schema` means "any JSON object".
    public init(openAIJSONSchema json: Data, options: Options = Options()) throws {
        let value: JSONValue
        do { value = try JSONReader.parse(json) } catch let e as JSONParseError {
            throw JSONSchemaError(keyword: nil, path: "", message: e.description)
        }
        try self.init(openAIValue: value, options: options)
    }

    init(openAIValue value: JSONValue, options: Options) throws {
        guard case .object = value else {
            throw JSONSchemaError(keyword: "json_schema", path: "", message: "must be an object")
        }
        let schemaValue = value["schema"] ?? .object([("type", .string("object"))])
        try self.init(value: schemaValue, options: options)
        if case .string(let n)? = value["name"] { name = n }
        if case .bool(let s)? = value["strict"] { strict = s }
    }

    /// Any JSON object at the top level, any values inside: OpenAI's `json_object` mode.
    public static let anyObject: JSONSchema = try! JSONSchema(value: .object([("type", .string("object"))]),
                                                             options: Options())
    /// Any JSON value at all.
    public static let anyValue: JSONSchema = try! JSONSchema(value: .bool(true), options: Options())
}

/// An OpenAI `response_format` request member.
public enum ResponseFormat: Sendable {
    case text
    case jsonObject
    case jsonSchema(JSONSchema)

    /// Reads `{"type":"text"}`, `{"type":"json_object"}` or
    /// `{"type":"json_schema","json_schema":{"name":...,"schema":{...},"strict":true}}`.
    public init(json: Data, options: JSONSchema.Options = JSONSchema.Options()) throws {
        let value: JSONValue
        do { value = try JSONReader.parse(json) } catch let e as JSONParseError {
            throw JSONSchemaError(keyword: "response_format", path: "", message: e.description)
        }
        guard case .string(let type)? = value["type"] else {
            throw JSONSchemaError(keyword: "response_format", path: "", message: "needs a string 'type'")
        }
        switch type {
        case "text": self = .text
        case "json_object": self = .jsonObject
        case "json_schema":
            guard let inner = value["json_schema"] else {
                throw JSONSchemaError(keyword: "json_schema", path: "", message: "type json_schema needs a 'json_schema' object")
            }
            self = .jsonSchema(try JSONSchema(openAIValue: inner, options: options))
        default:
            throw JSONSchemaError(keyword: "response_format", path: "", message: "unknown type '\(type)'")
        }
    }

    /// The automaton to constrain decoding with, or nil for plain text.
    public func initialState(limits: JSONLimits = JSONLimits()) -> JSONPrefixState? {
        switch self {
        case .text: return nil
        case .jsonObject: return JSONPrefixState(schema: .anyObject, limits: limits)
        case .jsonSchema(let s): return JSONPrefixState(schema: s, limits: limits)
        }
    }
}
