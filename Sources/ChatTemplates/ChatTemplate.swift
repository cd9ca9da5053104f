// The public entry point: a chat template parsed once, rendered many times, the way transformers'
// apply_chat_template renders it (jinja2 ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, the loopcontrols extension, the `generation` tag, and the raise_exception /
// strftime_now globals and tojson filter transformers adds).

import Foundation

/// One chat message: a role, its content (a string, or a list of parts for multimodal
/// templates), and any further fields (`tool_calls`, `name`, `tool_call_id`, ...) in order.
public struct ChatMessage: Sendable {
    public var role: String
    public var content: JinjaValue
    public var fields: [(String, JinjaValue)]

    public init(role: String, content: String) {
        self.role = role
        self.content = .string(content)
        self.fields = []
    }

    public init(role: String, content: JinjaValue, fields: [(String, JinjaValue)] = []) {
        self.role = role
        self.content = content
        self.fields = fields
    }

    /// The message as the template sees it: {"role": ..., "content": ..., then the fields}.
    public var value: JinjaValue {
        .object([("role", .string(role)), ("content", content)] + fields)
    }
}

public struct ChatTemplate: Sendable {
    public let source: String
    let nodes: [Node]

    /// Parses the template; throws `ChatTemplateError` (kind `.syntax` with line and column for
    /// malformed text, `.unknownFilter` / `.unknownTest` for names jinja2 would reject at compile time).
    public init(_ source: String) throws {
        self.source = source
        self.nodes = try Parser.parse(source)
    }

    /// Renders with exactly these variables (plus the globals: range, dict, namespace, joiner,
    /// raise_exception, strftime_now).
    public func render(_ context: [String: JinjaValue]) throws -> String {
        try render(context, now: Date())
    }

    /// Renders with a fixed clock for `strftime_now`.
    public func render(_ context: [String: JinjaValue], now: Date) throws -> String {
        try Renderer(context: context, now: now).run(nodes)
    }

    /// Renders a conversation with the variables transformers' apply_chat_template passes:
    /// `messages`, `tools` (None unless given), `documents` (None), `add_generation_prompt`,
    /// `bos_token`, `eos_token`, then `extra` (which may override any of them).
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
                       extra: [String: JinjaValue] = [:]) throws -> String
    {
        try render(messages: messages.map(\.value), addGenerationPrompt: addGenerationPrompt,
                   bosToken: bosToken, eosToken: eosToken, extra: extra)
    }

    /// As above, with messages given as dictionaries; "role" and "content" come first, the other
    /// keys follow in sorted order.
    public func render(messages: [[String: JinjaValue]], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
                       extra: [String: JinjaValue] = [:]) throws -> String
    {
        let values: [JinjaValue] = messages.map { message in
            var pairs: [(String, JinjaValue)] = []
            for key in ["role", "content"] { if let v = message[key] { pairs.append((key, v)) } }
            for key in message.keys.sorted() where key != "role" && key != "content" { pairs.append((key, message[key]!)) }
            return .object(pairs)
        }
        return try render(messages: values, addGenerationPrompt: addGenerationPrompt, bosToken: bosToken,
                          eosToken: eosToken, extra: extra)
    }

    /// As above, with messages as ready-made values (e.g. parsed from a request body with
    /// `JinjaValue(jsonText:)`, which keeps key order).
    public func render(messages: [JinjaValue], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
                       extra: [String: JinjaValue] = [:]) throws -> String
    {
        var context: [String: JinjaValue] = [
            "messages": .array(messages),
            "tools": .none,
            "documents": .none,
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ]
        for (k, v) in extra { context[k] = v }
        return try render(context)
    }
}
