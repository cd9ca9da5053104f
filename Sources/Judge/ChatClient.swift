// One OpenAI chat-completions call with the retry policy of a long unattended job: 429 (honouring
// Retry-After), 5xx, timeouts, dropped connections and truncated bodies are retried with exponential
// backoff and full jitter; other 4xx answers (a wrong key, an unknown model, a bad request) stop the
// run at once, since asking again cannot help. The API key goes only into the Authorization header:
// never into errors, logs or files.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

public struct ChatEndpoint: Sendable {
    public var baseURL: String
    public var apiKey: String?
    public var timeout: Double
    public var maxRetries: Int
    /// Backoff before retry n (0-based) is uniform in [0, min(cap, base * 2^n)].
    public var backoffBase: Double = 0.5
    public var backoffCap: Double = 30

    public init(baseURL: String, apiKey: String?, timeout: Double = 60, maxRetries: Int = 8) {
        var url = baseURL
        while url.hasSuffix("/") { url.removeLast() }
        self.baseURL = url; self.apiKey = apiKey; self.timeout = timeout; self.maxRetries = maxRetries
    }

    public static let openAI = "https://api.openai.com/v1"

    /// The key from OPENAI_API_KEY, else from a `.env` file in `directory` (KEY=VALUE lines, as python-dotenv reads).
    public static func apiKey(environment: [String: String] = ProcessInfo.processInfo.environment,
                              directory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> String? {
        if let k = environment["OPENAI_API_KEY"], !k.isEmpty { return k }
        return DotEnv.read(directory.appendingPathComponent(".env"))["OPENAI_API_KEY"]
    }

    public static func baseURL(flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                               directory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> String {
        if let flag { return flag }
        if let e = environment["OPENAI_BASE_URL"], !e.isEmpty { return e }
        if let e = DotEnv.read(directory.appendingPathComponent(".env"))["OPENAI_BASE_URL"], !e.isEmpty { return e }
        return openAI
    }
}

/// `.env` files as python-dotenv reads the common cases: `KEY=VALUE`, `export KEY=VALUE`, quotes, comments.
public enum DotEnv {
    public static func read(_ url: URL) -> [String: String] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [:] }
        var out: [String: String] = [:]
        for raw in text.split(whereSeparator: \.isNewline) {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if let q = value.first, q == "\"" || q == "'", let end = value.dropFirst().firstIndex(of: q) {
                value = String(value[value.index(after: value.startIndex)..<end])
            } else if let hash = value.range(of: " #") {
                value = value[..<hash.lowerBound].trimmingCharacters(in: .whitespaces)
            }
            out[key] = value
        }
        return out
    }
}

public enum JudgeError: Error, CustomStringConvertible {
    /// An answer that retrying cannot change (400, 401, 403, 404, 422...).
    case rejected(status: Int, message: String, url: String)
    case exhausted(attempts: Int, last: String)
    case badSettings(String)
    case journal(path: String, message: String)
    case descriptions(path: String, message: String)

    public var description: String {
        switch self {
        case let .rejected(status, message, url):
            let hint: String
            switch status {
            case 401, 403: hint = " (check OPENAI_API_KEY or the .env file; the key itself is never shown)"
            case 404: hint = " (check --model and --base-url)"
            default: hint = ""
            }
            return "the judge at \(url) refused the request with HTTP \(status): \(message)\(hint)"
        case let .exhausted(attempts, last):
            return "no answer after \(attempts) attempts (last: \(last)); rerun the same command to ask what is missing"
        case .badSettings(let m): return m
        case let .journal(path, message): return "\(path): \(message)"
        case let .descriptions(path, message): return "\(path): \(message)"
        }
    }
}

/// What one attempt ended with, for retry decisions and counting.
public enum AttemptOutcome: Sendable, Equatable {
    case ok
    case retryable(String)
}

public final class ChatClient: Sendable {
    public let endpoint: ChatEndpoint
    let http: HTTPClient

    public init(endpoint: ChatEndpoint) {
        self.endpoint = endpoint
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(10), read: .seconds(Int64(max(1, endpoint.timeout))))
        config.decompression = .enabled(limit: .ratio(20))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    public func shutdown() async { try? await http.shutdown() }

    /// Posts `body` to /chat/completions until a 200 with a full body comes back, then returns the body.
    /// `onRetry(reason)` is told of every failed attempt.
    public func post(_ body: Data, path: String = "/chat/completions",
                     onRetry: @Sendable (String) -> Void = { _ in }) async throws -> Data {
        var attempt = 0
        while true {
            try Task.checkCancellation()
            let delay: Double
            let reason: String
            do {
                var req = HTTPClientRequest(url: endpoint.baseURL + path)
                req.method = .POST
                req.headers.add(name: "Content-Type", value: "application/json")
                req.headers.add(name: "Accept", value: "application/json")
                req.headers.add(name: "User-Agent", value: "ex2-inspect")
                if let key = endpoint.apiKey { req.headers.add(name: "Authorization", value: "Bearer \(key)") }
                req.body = .bytes(ByteBuffer(bytes: body))
                let response = try await http.execute(req, timeout: .milliseconds(Int64(endpoint.timeout * 1000)))
                let buf = try await response.body.collect(upTo: 16 << 20)
                let data = Data(buf.readableBytesView)
                let status = Int(response.status.code)
                if status == 200 { return data }
                let message = Self.errorMessage(data)
                if status == 429 || status >= 500 || status == 408 {
                    reason = "HTTP \(status)\(message.isEmpty ? "" : ": \(message)")"
                    let retryAfter = response.headers.first(name: "Retry-After").flatMap(Self.parseRetryAfter)
                    delay = retryAfter ?? backoff(attempt)
                } else {
                    throw JudgeError.rejected(status: status, message: message.isEmpty ? "(no message)" : message,
                                              url: endpoint.baseURL + path)
                }
            } catch let e as JudgeError {
                throw e
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                reason = Self.describeTransport(error)
                delay = backoff(attempt)
            }
            attempt += 1
            onRetry(reason)
            if attempt > endpoint.maxRetries { throw JudgeError.exhausted(attempts: attempt, last: reason) }
            try await Task.sleep(nanoseconds: UInt64(max(0, delay) * 1e9))
        }
    }

    func backoff(_ attempt: Int) -> Double {
        let ceiling = min(endpoint.backoffCap, endpoint.backoffBase * pow(2, Double(attempt)))
        return Double.random(in: 0...ceiling)
    }

    /// Retry-After as seconds or an HTTP date, capped at 10 minutes.
    static func parseRetryAfter(_ value: String) -> Double? {
        let v = value.trimmingCharacters(in: .whitespaces)
        if let s = Double(v), s >= 0 { return min(s, 600) }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        if let d = f.date(from: v) { return min(max(0, d.timeIntervalSinceNow), 600) }
        return nil
    }

    /// The message of an OpenAI-style error body, else the start of the body.
    static func errorMessage(_ data: Data) -> String {
        if let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let err = obj["error"] as? [String: Any], let m = err["message"] as? String {
            return m
        }
        let text = String(decoding: data.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text
    }

    static func describeTransport(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            if e == .deadlineExceeded || e == .readTimeout { return "timeout" }
            if e == .remoteConnectionClosed { return "connection closed by the server" }
            return "HTTP client error: \(e)"
        }
        return "transport error: \(error)"
    }
}
