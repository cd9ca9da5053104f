// The OpenAI wire format as `ex2 serve` reads it: chat and legacy completion requests checked field by
// field (a bad field is a 400 naming it, as OpenAI answers), and the error bodies
// {"error": {"message", "type", "param", "code"}}.
import Foundation
import Llama

public struct APIError: Error, Sendable {
    public var status: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?

    public init(_ status: Int, _ message: String, type: String = "invalid_request_error", param: String? = nil, code: String? = nil) {
        self.status = status; self.message = message; self.type = type; self.param = param; self.code = code
    }

    public var body: Data {
        let err: [String: Any] = ["message": message, "type": type, "param": param ?? NSNull(), "code": code ?? NSNull()]
        return (try? JSONSerialization.data(withJSONObject: ["error": err], options: [.sortedKeys])) ?? Data()
    }

    static func invalid(_ param: String, _ message: String) -> APIError { APIError(400, message, param: param, code: "invalid_value") }
}

public struct ServeLimits: Sendable {
    public var maxBodyBytes = 4 << 20
    public var maxTokens = 4096
    public var maxN = 8
    public var maxStop = 4
    public var maxTopLogprobs = 20
    public init() {}
}

/// A checked request, either API.
public struct CompletionRequest: @unchecked Sendable {  // reason: responseFormat holds JSON values read once
    public var model: String
    public var messages: [(role: String, content: String)]?
    public var prompt: String?
    public var params: SamplingParameters
    public var n = 1
    public var seed: UInt64?
    public var stop: [String] = []
    public var stream = false
    public var includeUsage = false
    public var logprobs = false
    public var topLogprobs = 0
    public var presencePenalty: Float = 0
    public var frequencyPenalty: Float = 0
    /// The response_format object as sent (nil or {"type": "text"}: free text).
    public var responseFormat: [String: Any]?

    static func number(_ obj: [String: Any], _ key: String) throws -> Double? {
        guard let v = obj[key], !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber else { throw APIError.invalid(key, "'\(key)' must be a number") }
        return n.doubleValue
    }

    static func integer(_ obj: [String: Any], _ key: String) throws -> Int? {
        guard let d = try number(obj, key) else { return nil }
        guard d == d.rounded(), abs(d) < 9e15 else { throw APIError.invalid(key, "'\(key)' must be an integer") }
        return Int(d)
    }

    public init(json: [String: Any], chat: Bool, limits: ServeLimits, defaultModel: String) throws {
        if let m = json["model"], !(m is NSNull) {
            guard let s = m as? String else { throw APIError.invalid("model", "'model' must be a string") }
            model = s
        } else {
            model = defaultModel
        }
        if chat {
            guard let raw = json["messages"] else { throw APIError(400, "'messages' is a required property", param: "messages", code: "missing_required_parameter") }
            guard let list = raw as? [Any], !list.isEmpty else { throw APIError.invalid("messages", "'messages' must be a non-empty array") }
            messages = try list.enumerated().map { i, m in
                guard let d = m as? [String: Any], let role = d["role"] as? String else {
                    throw APIError.invalid("messages[\(i)]", "messages[\(i)] must be an object with a string 'role'")
                }
                guard ["system", "user", "assistant", "developer", "tool"].contains(role) else {
                    throw APIError.invalid("messages[\(i)].role", "messages[\(i)].role '\(role)' is not one of system, user, assistant, developer, tool")
                }
                let content: String
                switch d["content"] {
                case let s as String: content = s
                case let parts as [Any]:
                    content = try parts.map { p -> String in
                        guard let pd = p as? [String: Any], (pd["type"] as? String) == "text", let t = pd["text"] as? String else {
                            throw APIError.invalid("messages[\(i)].content", "only text content parts are supported")
                        }
                        return t
                    }.joined()
                case nil, is NSNull: content = ""
                default: throw APIError.invalid("messages[\(i)].content", "messages[\(i)].content must be a string or a list of text parts")
                }
                return (role == "developer" ? "system" : role, content)
            }
        } else {
            switch json["prompt"] {
            case let s as String: prompt = s
            case let l as [Any] where l.count == 1 && l[0] is String: prompt = l[0] as? String
            case nil: throw APIError(400, "'prompt' is a required property", param: "prompt", code: "missing_required_parameter")
            default: throw APIError.invalid("prompt", "'prompt' must be a string (one prompt per request)")
            }
        }
        let temperature = try Self.number(json, "temperature") ?? 1
        guard temperature >= 0 && temperature <= 2 else { throw APIError.invalid("temperature", "'temperature' must be between 0 and 2") }
        let topP = try Self.number(json, "top_p") ?? 1
        guard topP > 0 && topP <= 1 else { throw APIError.invalid("top_p", "'top_p' must be in (0, 1]") }
        let topK = try Self.integer(json, "top_k") ?? 0
        guard topK >= 0 else { throw APIError.invalid("top_k", "'top_k' must be >= 0") }
        let maxTokens = try Self.integer(json, "max_completion_tokens") ?? Self.integer(json, "max_tokens") ?? (chat ? min(limits.maxTokens, 1024) : 16)
        guard maxTokens >= 1 else { throw APIError.invalid("max_tokens", "'max_tokens' must be at least 1") }
        guard maxTokens <= limits.maxTokens else {
            throw APIError.invalid("max_tokens", "'max_tokens' is \(maxTokens); this server allows at most \(limits.maxTokens)")
        }
        params = SamplingParameters(temperature: Float(temperature), topK: topK, topP: Float(topP), maxNewTokens: maxTokens)
        n = try Self.integer(json, "n") ?? 1
        guard n >= 1 && n <= limits.maxN else { throw APIError.invalid("n", "'n' must be between 1 and \(limits.maxN)") }
        if let s = try Self.integer(json, "seed") { seed = UInt64(bitPattern: Int64(s)) }
        switch json["stop"] {
        case nil, is NSNull: break
        case let s as String: stop = [s]
        case let l as [Any]:
            guard l.count <= limits.maxStop, l.allSatisfy({ $0 is String }) else {
                throw APIError.invalid("stop", "'stop' must be a string or at most \(limits.maxStop) strings")
            }
            stop = l.compactMap { $0 as? String }
        default: throw APIError.invalid("stop", "'stop' must be a string or a list of strings")
        }
        if let s = json["stream"], !(s is NSNull) {
            guard let b = s as? Bool else { throw APIError.invalid("stream", "'stream' must be a boolean") }
            stream = b
        }
        includeUsage = ((json["stream_options"] as? [String: Any])?["include_usage"] as? Bool) ?? false
        if chat {
            logprobs = (json["logprobs"] as? Bool) ?? false
            topLogprobs = try Self.integer(json, "top_logprobs") ?? 0
            guard topLogprobs >= 0 && topLogprobs <= limits.maxTopLogprobs else {
                throw APIError.invalid("top_logprobs", "'top_logprobs' must be between 0 and \(limits.maxTopLogprobs)")
            }
            if topLogprobs > 0 && !logprobs { throw APIError.invalid("top_logprobs", "'top_logprobs' needs 'logprobs': true") }
        } else if let l = try Self.integer(json, "logprobs") {
            guard l >= 0 && l <= 5 else { throw APIError.invalid("logprobs", "'logprobs' must be between 0 and 5") }
            logprobs = true
            topLogprobs = l
        }
        presencePenalty = Float(try Self.number(json, "presence_penalty") ?? 0)
        frequencyPenalty = Float(try Self.number(json, "frequency_penalty") ?? 0)
        guard abs(presencePenalty) <= 2, abs(frequencyPenalty) <= 2 else {
            throw APIError.invalid("presence_penalty", "'presence_penalty' and 'frequency_penalty' must be between -2 and 2")
        }
        if let rf = json["response_format"], !(rf is NSNull) {
            guard let d = rf as? [String: Any], let t = d["type"] as? String else {
                throw APIError.invalid("response_format", "'response_format' must be an object with a 'type'")
            }
            guard ["text", "json_object", "json_schema"].contains(t) else {
                throw APIError.invalid("response_format.type", "'response_format.type' must be text, json_object or json_schema")
            }
            if t != "text" { responseFormat = d }
        }
    }
}
