// `ex2 serve`: an OpenAI-compatible HTTP server (Hummingbird 2) over one local model and its LoRA
// adapters, served by name as vLLM's --lora-modules: POST /v1/chat/completions (the model's own chat
// template; streaming as server-sent events; response_format honoured by constrained decoding),
// POST /v1/completions, GET /v1/models, GET /health. Every request feeds the one scheduler.
import ChatTemplates
import Foundation
import Hummingbird
import JSONConstraint
import Llama
import NIOCore
import Tokenizers

public struct ServeOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8000
    public var apiKey: String?
    public var parallel = 8
    public var contextSize = 4096
    public var prefixCacheMB = 1024
    public var limits = ServeLimits()
    public init() {}
}

public final class ServedModel: @unchecked Sendable {  // reason: immutable after init; the trie is built once under a lock
    public let name: String
    public let model: DecoderModel
    public let tokenizer: any Tokenizer
    public let template: ChatTemplate?
    public let adapterNames: [String]
    public let scheduler: Scheduler
    let stopTokens: Set<Int>
    private var trieStorage: TokenTrie?
    private let trieLock = NSLock()

    public init(name: String, model: DecoderModel, tokenizer: any Tokenizer, stopTokens: Set<Int>, adapters: [String: LoRAState],
                options: ServeOptions) throws {
        self.name = name; self.model = model; self.tokenizer = tokenizer; self.stopTokens = stopTokens
        template = try tokenizer.chatTemplate.map { try ChatTemplate($0) }
        adapterNames = adapters.keys.sorted()
        let capacity = min(options.contextSize, model.config.maxPositions)
        scheduler = Scheduler(model: model, tokenizer: tokenizer, stopTokens: stopTokens, adapters: adapters,
                              parallel: options.parallel, capacity: capacity, prefixCacheBytes: options.prefixCacheMB << 20)
    }

    /// The vocabulary's byte trie for constrained decoding, built on first use.
    var trie: TokenTrie {
        trieLock.lock(); defer { trieLock.unlock() }
        if let t = trieStorage { return t }
        let V = model.config.vocabSize
        let bytes = (0..<V).map { tokenizer.tokenBytes($0) ?? [] }
        let t = TokenTrie(tokens: bytes, excluding: stopTokens)
        trieStorage = t
        return t
    }

    func tokenString(_ id: Int) -> String {
        if let b = tokenizer.tokenBytes(id) { return String(decoding: b, as: UTF8.self) }
        return tokenizer.piece(for: id) ?? ""
    }

    func specialString(_ id: Int?) -> String { id.flatMap { tokenizer.piece(for: $0) } ?? "" }

    /// The prompt tokens of a chat request: the model's chat template, then the tokenizer without added specials.
    func chatPrompt(_ messages: [(role: String, content: String)]) throws -> [Int] {
        guard let template else {
            throw APIError(400, "model \(name) has no chat template (tokenizer.chat_template); use /v1/completions", param: "messages")
        }
        let text: String
        do {
            text = try template.render(messages: messages.map { ChatTemplates.ChatMessage(role: $0.role, content: $0.content) },
                                       addGenerationPrompt: true, bosToken: specialString(tokenizer.bosTokenId),
                                       eosToken: specialString(tokenizer.eosTokenId))
        } catch {
            throw APIError(400, "the chat template refused these messages: \(error)", param: "messages")
        }
        return tokenizer.encode(text, addSpecialTokens: false)
    }
}

public final class OpenAIServer: Sendable {
    public let served: ServedModel
    public let options: ServeOptions

    public init(served: ServedModel, options: ServeOptions) {
        self.served = served; self.options = options
    }

    static let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    func errorResponse(_ e: APIError) -> Response {
        var headers = Self.jsonHeaders
        if e.status == 401 { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: .init(code: e.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: e.body)))
    }

    func json(_ obj: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.withoutEscapingSlashes])) ?? Data()
        return Response(status: status, headers: Self.jsonHeaders, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func authorize(_ request: Request) throws {
        guard let key = options.apiKey else { return }
        let header = request.headers[.authorization] ?? ""
        guard header == "Bearer \(key)" else {
            throw APIError(401, header.isEmpty ? "missing API key: send Authorization: Bearer KEY" : "incorrect API key provided",
                           code: "invalid_api_key")
        }
    }

    func readJSON(_ request: Request) async throws -> [String: Any] {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: options.limits.maxBodyBytes)
        } catch {
            throw APIError(413, "request body over \(options.limits.maxBodyBytes) bytes", code: "request_too_large")
        }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) else {
            throw APIError(400, "the request body is not valid JSON", code: "invalid_json")
        }
        guard let d = obj as? [String: Any] else { throw APIError(400, "the request body must be a JSON object", code: "invalid_json") }
        return d
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in
            let load = self.served.scheduler.load
            return self.json(["status": "ok", "active": load.active, "waiting": load.pending])
        }
        router.get("/v1/models") { request, _ in
            do { try self.authorize(request) } catch let e as APIError { return self.errorResponse(e) }
            let created = Int(Date().timeIntervalSince1970)
            let models = ([self.served.name] + self.served.adapterNames).map {
                ["id": $0, "object": "model", "created": created, "owned_by": "ex2"] as [String: Any]
            }
            return self.json(["object": "list", "data": models])
        }
        router.post("/v1/chat/completions") { request, _ in await self.handle(request, chat: true) }
        router.post("/v1/completions") { request, _ in await self.handle(request, chat: false) }
        return router
    }

    func handle(_ request: Request, chat: Bool) async -> Response {
        do {
            try authorize(request)
            let json = try await readJSON(request)
            let req = try CompletionRequest(json: json, chat: chat, limits: options.limits, defaultModel: served.name)
            return try await respond(req, chat: chat)
        } catch let e as APIError {
            return errorResponse(e)
        } catch {
            return errorResponse(APIError(500, "internal error: \(error)", type: "server_error"))
        }
    }

    func constraint(_ req: CompletionRequest) throws -> (any TokenConstraint)? {
        guard let rf = req.responseFormat else { return nil }
        let format: ResponseFormat
        do {
            format = try ResponseFormat(json: JSONSerialization.data(withJSONObject: rf))
        } catch let e as JSONSchemaError {
            throw APIError(e.keyword.map { ["pattern", "format", "$ref", "not", "allOf", "if"].contains($0) } == true ? 422 : 400,
                           "response_format: \(e.description)", param: "response_format", code: "invalid_schema")
        }
        guard let state = format.initialState() else { return nil }
        return JSONTokenConstraint(state: state, trie: served.trie, tokenizer: served.tokenizer)
    }

    func respond(_ req: CompletionRequest, chat: Bool) async throws -> Response {
        let adapter: String?
        if req.model == served.name { adapter = nil } else if served.adapterNames.contains(req.model) { adapter = req.model } else {
            throw APIError(404, "the model '\(req.model)' does not exist; this server has \(([served.name] + served.adapterNames).joined(separator: ", "))",
                           param: "model", code: "model_not_found")
        }
        let prompt = try chat ? served.chatPrompt(req.messages!) : served.tokenizer.encode(req.prompt!, addSpecialTokens: true)
        let limit = served.scheduler.capacity  // already capped by the model's context
        if prompt.count >= limit {
            throw APIError(400, "this model's maximum context length is \(limit) tokens; the prompt has \(prompt.count) tokens and no room is left for the completion",
                           param: "messages", code: "context_length_exceeded")
        }
        var params = req.params
        params.maxNewTokens = min(params.maxNewTokens, limit - prompt.count)
        let constraint = try constraint(req)
        let baseSeed = req.seed ?? UInt64.random(in: 0...UInt64.max)
        var streams: [(Int, AsyncStream<GenerationEvent>)] = []
        for i in 0..<req.n {
            var job = GenerationJob(prompt: prompt, adapter: adapter, params: params,
                                    seed: Generator.sequenceSeed(baseSeed, i))
            job.stop = req.stop
            job.topLogprobs = req.logprobs ? req.topLogprobs : nil
            job.constraint = constraint
            job.presencePenalty = req.presencePenalty
            job.frequencyPenalty = req.frequencyPenalty
            do {
                let (id, events) = try served.scheduler.submit(job)
                streams.append((id, events))
            } catch {
                for (id, _) in streams { served.scheduler.cancel(id) }
                throw APIError(503, "the server is overloaded: too many requests waiting; retry later", type: "server_error", code: "overloaded")
            }
        }
        let id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        let created = Int(Date().timeIntervalSince1970)
        if req.stream { return streamResponse(req, chat: chat, id: id, created: created, streams: streams) }

        var choices: [[String: Any]] = []
        var usage = (prompt: prompt.count, completion: 0, cached: 0)
        for (index, (_, events)) in streams.enumerated() {
            var text = "", reason = "stop", lps: [TokenLogprob] = []
            for await e in events {
                switch e {
                case let .text(t, lp): text += t; if let lp { lps.append(lp) }
                case let .finished(r, _, completion, cached):
                    reason = r; usage.completion += completion; usage.cached = max(usage.cached, cached)
                }
            }
            var choice: [String: Any] = ["index": index, "finish_reason": reason]
            if chat {
                choice["message"] = ["role": "assistant", "content": text]
                choice["logprobs"] = req.logprobs ? ["content": lps.map(logprobJSON)] : NSNull()
            } else {
                choice["text"] = text
                choice["logprobs"] = req.logprobs ? legacyLogprobs(lps) : NSNull()
            }
            choices.append(choice)
        }
        return json([
            "id": id, "object": chat ? "chat.completion" : "text_completion", "created": created, "model": req.model,
            "system_fingerprint": "ex2-serve", "choices": choices,
            "usage": usageJSON(usage.prompt, usage.completion, usage.cached),
        ])
    }

    func usageJSON(_ prompt: Int, _ completion: Int, _ cached: Int) -> [String: Any] {
        ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
         "prompt_tokens_details": ["cached_tokens": cached]]
    }

    func logprobJSON(_ l: TokenLogprob) -> [String: Any] {
        func entry(_ t: Int, _ lp: Float) -> [String: Any] {
            let s = served.tokenString(t)
            return ["token": s, "logprob": Double(lp), "bytes": Array((served.tokenizer.tokenBytes(t) ?? Array(s.utf8))).map(Int.init)]
        }
        var e = entry(l.token, l.logprob)
        e["top_logprobs"] = l.top.map { entry($0.token, $0.logprob) }
        return e
    }

    func legacyLogprobs(_ lps: [TokenLogprob]) -> [String: Any] {
        ["tokens": lps.map { served.tokenString($0.token) }, "token_logprobs": lps.map { Double($0.logprob) },
         "top_logprobs": lps.map { l in Dictionary(l.top.map { (served.tokenString($0.token), Double($0.logprob)) }, uniquingKeysWith: max) }]
    }

    func streamResponse(_ req: CompletionRequest, chat: Bool, id: String, created: Int,
                        streams: [(Int, AsyncStream<GenerationEvent>)]) -> Response {
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        let scheduler = served.scheduler
        let body = ResponseBody { writer in
            func send(_ obj: [String: Any]) async throws {
                let data = try JSONSerialization.data(withJSONObject: obj, options: [.withoutEscapingSlashes])
                var buf = ByteBuffer(string: "data: ")
                buf.writeBytes(data)
                buf.writeString("\n\n")
                try await writer.write(buf)
            }
            func chunk(_ index: Int, delta: [String: Any]?, text: String?, reason: String?, lp: TokenLogprob?) -> [String: Any] {
                var choice: [String: Any] = ["index": index, "finish_reason": reason ?? NSNull()]
                if chat {
                    choice["delta"] = delta ?? [:]
                    choice["logprobs"] = lp.map { ["content": [self.logprobJSON($0)]] } ?? NSNull()
                } else {
                    choice["text"] = text ?? ""
                    choice["logprobs"] = lp.map { self.legacyLogprobs([$0]) } ?? NSNull()
                }
                return ["id": id, "object": chat ? "chat.completion.chunk" : "text_completion", "created": created,
                        "model": req.model, "system_fingerprint": "ex2-serve", "choices": [choice]]
            }
            var promptTokens = 0, completion = 0, cached = 0
            do {
                for (index, (_, events)) in streams.enumerated() {
                    if chat { try await send(chunk(index, delta: ["role": "assistant", "content": ""], text: nil, reason: nil, lp: nil)) }
                    for await e in events {
                        switch e {
                        case let .text(t, lp):
                            if t.isEmpty && lp == nil { continue }
                            try await send(chunk(index, delta: ["content": t], text: t, reason: nil, lp: lp))
                        case let .finished(r, p, c, ca):
                            promptTokens = p; completion += c; cached = max(cached, ca)
                            try await send(chunk(index, delta: [:], text: "", reason: r, lp: nil))
                        }
                    }
                }
                if req.includeUsage {
                    try await send(["id": id, "object": chat ? "chat.completion.chunk" : "text_completion", "created": created,
                                    "model": req.model, "choices": [], "usage": self.usageJSON(promptTokens, completion, cached)])
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                // The client went away: stop decoding its sequences.
                for (sid, _) in streams { scheduler.cancel(sid) }
                throw error
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// Serves until SIGTERM or SIGINT; requests in flight finish first. `onListening(port)` is told the bound port.
    public func run(onListening: @escaping @Sendable (Int) -> Void) async throws {
        let app = Application(router: router(), configuration: .init(address: .hostname(options.host, port: options.port), serverName: "ex2-serve"),
                              onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) })
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }
}
