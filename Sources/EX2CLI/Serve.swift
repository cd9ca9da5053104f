// `ex2 serve`: an OpenAI-compatible server over one local model (and LoRA adapters by name), so that
// the judge (`ex2 inspect --base-url`) and remote describing run with no network.
import ArgumentParser
import EX2
import Foundation
import Llama
import Server

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a local model over the OpenAI API (chat and legacy completions, streaming, JSON mode, adapters by name).",
        discussion: """
            Binds 127.0.0.1 unless --host says otherwise. Requests share one decoding loop (continuous \
            batching, up to --parallel sequences) and reuse the keys and values of prompt prefixes they share \
            with earlier requests. The request's "model" picks the base (its name: the file name without \
            extension, or --served-name) or an adapter (--adapter NAME=DIR). SIGTERM or Ctrl-C finishes the \
            requests in flight, then exits.
            """)

    @Option(help: "The model: a .gguf file, an HF model directory, or an HF hub id (downloaded into the HF cache when missing).")
    var model: String
    @OptionGroup var policyRevision: PolicyRevision
    @Option(help: "A PEFT LoRA adapter served under a name: NAME=DIR (repeatable).")
    var adapter: [String] = []
    @Option(help: "The name the base model is served under (default: the file or folder name).")
    var servedName: String?
    @Option(help: "Address to bind (127.0.0.1: this machine only).") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port).") var port = 8000
    @Option(help: "Require this Bearer token on every request (except /health).") var apiKey: String?
    @Option(help: "Sequences decoded together.") var parallel = 8
    @Option(help: "Tokens of context per sequence (capped by the model's).") var contextSize = 4096
    @Option(help: "Memory for cached prompt prefixes, in MiB (0: no prefix cache).") var prefixCacheMb = 1024
    @Option(help: "Largest max_tokens a request may ask for.") var maxTokensLimit = 4096
    @Option(help: "Write the bound port to this file once listening.") var portFile: String?

    func validate() throws {
        guard parallel >= 1 && parallel <= 256 else { throw ValidationError("--parallel must be between 1 and 256") }
        guard contextSize >= 16, prefixCacheMb >= 0, maxTokensLimit >= 1 else { throw ValidationError("check --context-size, --prefix-cache-mb and --max-tokens-limit") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
    }

    func run() async throws {
        let lm = try LanguageModel(spec: model)
        var adapters: [String: LoRAState] = [:]
        for a in adapter {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex else { throw ValidationError("--adapter takes NAME=DIR, got \(a)") }
            let name = String(a[..<eq]), dir = URL(fileURLWithPath: String(a[a.index(after: eq)...]))
            adapters[name] = try PEFTAdapter.load(dir, model: lm.model.config)
        }
        var options = ServeOptions()
        options.host = host; options.port = port; options.apiKey = apiKey; options.parallel = parallel
        options.contextSize = contextSize; options.prefixCacheMB = prefixCacheMb; options.limits.maxTokens = maxTokensLimit
        let name = servedName ?? URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent
        if adapters[name] != nil { throw ValidationError("adapter name \(name) is the base model's name; choose another") }
        let served = try ServedModel(name: name, model: lm.model, tokenizer: lm.tokenizer, stopTokens: lm.stopTokens,
                                     adapters: adapters, options: options)
        let server = OpenAIServer(served: served, options: options)
        let portFile = portFile, host = host
        try await server.run { bound in
            FileHandle.standardError.write(Data("ex2 serve: \(name) on http://\(host):\(bound)/v1 (\(parallel) parallel sequences)\n".utf8))
            if let portFile { try? "\(bound)\n".write(toFile: portFile, atomically: true, encoding: .utf8) }
        }
    }
}
