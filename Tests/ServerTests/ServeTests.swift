// `ex2 serve`: the scheduler against the engine's own generation (continuous batching and the prefix
// cache must not change what a sequence decodes), then the server as a subprocess driven by the real
// `openai` Python client (scripts/test-support/serve_client_check.py), `ex2 inspect` end to end against
// it, loopback-only binding, and SIGTERM finishing the request in flight.
import EX2
import Foundation
import EX2TestSupport
import Llama
import XCTest
@testable import Server

final class ServeTests: XCTestCase {
    static let root = TestSupport.repositoryRoot
    static let smol = root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")

    func smolModel() throws -> LanguageModel {
        guard FileManager.default.fileExists(atPath: Self.smol.path) else {
            throw XCTSkip("SKIPPED: \(Self.smol.path) is missing (scripts/setup.sh fetches it)")
        }
        return try LanguageModel(spec: Self.smol.path)
    }

    func collect(_ s: AsyncStream<GenerationEvent>) async -> (String, String, Int) {
        var text = "", reason = "", n = 0
        for await e in s {
            switch e {
            case .text(let t, _): text += t
            case let .finished(r, _, c, _): reason = r; n = c
            }
        }
        return (text, reason, n)
    }

    /// Greedy continuations from the scheduler, submitted together (so they batch and join mid-flight),
    /// equal the engine's Generator run one prompt at a time; the prefix cache changes nothing.
    func testContinuousBatchingAndPrefixCacheDecodeLikeTheEngine() async throws {
        let lm = try smolModel()
        let shared = "<|im_start|>system\nYou are a knowledgeable teacher. Answer the questions in JSON format.<|im_end|>\n<|im_start|>user\n"
        let prompts = ["Describe a beagle.", "Describe a pug in one sentence.", "What colour is a tench?", "Name three birds.",
                       "Is a zebra striped?"].map { lm.encode(shared + $0 + "<|im_end|>\n<|im_start|>assistant\n", addSpecialTokens: false) }
        let params = SamplingParameters(temperature: 0, maxNewTokens: 12)
        let gen = Generator(model: lm.model, stopTokens: lm.stopTokens)
        let expected = prompts.map { gen.generate(prompts: [$0], seeds: [0], params: params)[0] }
        for cacheMB in [0, 64] {
            let s = Scheduler(model: lm.model, tokenizer: lm.tokenizer, stopTokens: lm.stopTokens, adapters: [:], parallel: 3,
                              capacity: 512, prefixCacheBytes: cacheMB << 20)
            // Requests sharing an opening wait for the first one's prefill instead of each prefilling it.
            s.sharedPrefixWait = 16
            var streams: [AsyncStream<GenerationEvent>] = []
            for p in prompts { streams.append(try s.submit(GenerationJob(prompt: p, adapter: nil, params: params, seed: 1)).events) }
            for (i, st) in streams.enumerated() {
                let (text, reason, n) = await collect(st)
                XCTAssertEqual(text, lm.responseText(expected[i]), "prompt \(i), prefix cache \(cacheMB) MiB")
                XCTAssertEqual(reason, expected[i].finishReason == .eos ? "stop" : "length")
                XCTAssertEqual(n, expected[i].tokens.count)
            }
            if cacheMB > 0 {
                // The first starts alone; the other four wait for its prefill and reuse the shared prefix.
                let shared = prompts.dropFirst().map { PrefixCache.commonPrefix($0, prompts[0]) }.min()!
                XCTAssertGreaterThan(shared, 16)
                XCTAssertGreaterThanOrEqual(s.stats.cachedTokens, 4 * shared, "the shared system prefix was reused")
                // Cached keys and values serve only the adapter (here: the base model) that computed them.
                XCTAssertGreaterThanOrEqual(s.prefixCache.matchLength(prompts[0], maxLength: prompts[0].count), shared)
                XCTAssertEqual(s.prefixCache.matchLength(prompts[0], adapter: "lora", maxLength: prompts[0].count), 0)
            } else {
                XCTAssertEqual(s.stats.cachedTokens, 0)
            }
        }
    }

    func testStopStringsAndJSONModeAlwaysParse() async throws {
        let lm = try smolModel()
        let served = try ServedModel(name: "smol", model: lm.model, tokenizer: lm.tokenizer, stopTokens: lm.stopTokens,
                                     adapters: [:], options: ServeOptions())
        let server = OpenAIServer(served: served, options: ServeOptions())
        var req = try CompletionRequest(json: ["messages": [["role": "user", "content": "Give me a JSON object describing a beagle."]],
                                               "response_format": ["type": "json_object"], "max_tokens": 24, "temperature": 1, "seed": 3],
                                        chat: true, limits: ServeLimits(), defaultModel: "smol")
        for seed in 0..<6 {
            req.seed = UInt64(seed)
            let prompt = try served.chatPrompt(req.messages!)
            var job = GenerationJob(prompt: prompt, adapter: nil, params: req.params, seed: UInt64(seed))
            job.constraint = try server.constraint(req)
            let (text, _, n) = await collect(try served.scheduler.submit(job).events)
            XCTAssertLessThanOrEqual(n, 24)
            let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8))
            XCTAssertTrue(obj is [String: Any], "seed \(seed): not a JSON object: \(text.debugDescription)")
        }
        var job = GenerationJob(prompt: lm.encode("1, 2, 3, 4,", addSpecialTokens: false), adapter: nil,
                                params: SamplingParameters(temperature: 0, maxNewTokens: 16), seed: 0)
        job.stop = [" 7"]
        let (text, reason, _) = await collect(try served.scheduler.submit(job).events)
        XCTAssertEqual(reason, "stop")
        XCTAssertFalse(text.contains(" 7"), text)
    }

    // MARK: the server as a subprocess

    func python() throws -> String {
        let venv = Self.root.appendingPathComponent(".venv-test/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: venv) else {
            throw XCTSkip("SKIPPED: \(venv) is missing (scripts/setup.sh installs the openai client there)")
        }
        return venv
    }

    final class ServeProcess {
        let process = Process()
        let port: Int
        let log: URL
        init(binary: URL, args: [String], dir: URL) throws {
            let portFile = dir.appendingPathComponent("port")
            log = dir.appendingPathComponent("serve.log")
            try Data().write(to: log)
            process.executableURL = binary
            process.arguments = ["serve", "--port", "0", "--port-file", portFile.path] + args
            let h = try FileHandle(forWritingTo: log)
            process.standardOutput = h
            process.standardError = h
            try process.run()
            if let p = TestSupport.waitForPort(file: portFile, process: process, timeout: 120) {
                port = p
                return
            }
            process.terminate()
            throw NSError(domain: "ServeTests", code: 1, userInfo: [NSLocalizedDescriptionKey: "ex2 serve did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")"])
        }
        deinit { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        var baseURL: String { "http://127.0.0.1:\(port)/v1" }
    }

    func run(_ exe: String, _ args: [String], cwd: URL? = nil, env: [String: String] = [:]) throws -> (Int32, String) {
        try TestSupport.run(URL(fileURLWithPath: exe), args, cwd: cwd, env: env)
    }

    func tempDir(_ name: String) throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func testOpenAIClientAgainstServe() throws {
        _ = try smolModel()
        let py = try python(), bin = try TestSupport.ex2Executable()
        let dir = try tempDir("serve")
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = Self.root.appendingPathComponent("Tests/LlamaTests/Fixtures/train/peft_smollm2/adapter").path
        let serve = try ServeProcess(binary: bin, args: ["--model", Self.smol.path, "--served-name", "smol", "--adapter", "tuned=\(adapter)",
                                                          "--api-key", "sk-local-test", "--parallel", "4", "--context-size", "2048",
                                                          "--max-tokens-limit", "256"], dir: dir)
        // Loopback only: the listening socket's local address is 127.0.0.1 (0100007F in /proc/net/tcp).
        let hexPort = String(format: "%04X", serve.port)
        let tcp = try String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)
        let listening = tcp.split(separator: "\n").filter { $0.contains(":\(hexPort) ") && $0.split(separator: " ")[3] == "0A" }
        XCTAssertFalse(listening.isEmpty)
        for l in listening { XCTAssertTrue(l.split(separator: " ")[1].hasPrefix("0100007F:"), String(l)) }
        let (status, out) = try run(py, [Self.root.appendingPathComponent("scripts/test-support/serve_client_check.py").path,
                                         "--base-url", serve.baseURL, "--model", "smol", "--adapter-model", "tuned",
                                         "--api-key", "sk-local-test", "--json-prompts", "24", "--any-key-order"])
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains(", 0 failed"), out)
        print(out.split(separator: "\n").suffix(3).joined(separator: "\n"))
    }

    /// Stage 2 through a completions endpoint: every (concept, template) gets its description, in the
    /// reference's format, and the same seed gives the same file.
    func testDescribeThroughARemoteCompletionsEndpoint() throws {
        _ = try smolModel()
        let bin = try TestSupport.ex2Executable()
        let dir = try tempDir("remote-describe")
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(binary: bin, args: ["--model", Self.smol.path, "--served-name", "policy", "--parallel", "8"], dir: dir)
        try TestSupport.conceptFolders(["beagle", "pug"], in: dir)
        var files: [Data] = []
        for run in 0..<2 {
            let out = dir.appendingPathComponent("d\(run).json")
            let (status, text) = try self.run(bin.path, ["describe", "--base-url", serve.baseURL, "--model", "policy",
                                                         "--dataset", "folder:" + dir.appendingPathComponent("concepts").path,
                                                         "--output", out.path, "--max-new-tokens", "8", "--seed", "7"])
            XCTAssertEqual(status, 0, text)
            let descs = try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as! [[String]]
            XCTAssertEqual(descs.map(\.count), [25, 25])
            XCTAssertGreaterThan(descs.joined().filter { !$0.isEmpty }.count, 40, "\(descs)")
            files.append(try Data(contentsOf: out))
        }
        XCTAssertEqual(files[0], files[1], "the same seed samples the same descriptions")
        // A policy name the server does not have is refused with the server's message, not retried.
        let (status, text) = try run(bin.path, ["describe", "--base-url", serve.baseURL, "--model", "nope",
                                                "--dataset", "folder:" + dir.appendingPathComponent("concepts").path,
                                                "--output", dir.appendingPathComponent("x.json").path])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(text.contains("404") && text.contains("does not exist"), text)
    }

    func testInspectEndToEndAgainstServeAndSIGTERMFinishesInFlight() throws {
        _ = try smolModel()
        let bin = try TestSupport.ex2Executable()
        let dir = try tempDir("inspect-serve")
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(binary: bin, args: ["--model", Self.smol.path, "--served-name", "judge", "--parallel", "4"], dir: dir)
        try TestSupport.conceptFolders(["beagle", "pug"], in: dir)
        let descs = [["A photo of a beagle.", "A beagle with long floppy ears and a white-tipped tail."],
                     ["Click to enlarge", "A pug with a wrinkled black face and a curled tail."]]
        try JSONSerialization.data(withJSONObject: descs).write(to: dir.appendingPathComponent("d.json"))
        for mode in ["local", "reference"] {
            let (status, out) = try run(bin.path, ["inspect", "--descriptions", dir.appendingPathComponent("d.json").path,
                                                   "--dataset", "folder:" + dir.appendingPathComponent("concepts").path,
                                                   "--output", dir.appendingPathComponent("\(mode).json").path, "--base-url", serve.baseURL,
                                                   "--model", "judge", "--judge-mode", mode, "--attributes"], cwd: dir)
            XCTAssertEqual(status, 0, out)
            let lines = try String(contentsOf: dir.appendingPathComponent("\(mode).json.jsonl"), encoding: .utf8).split(separator: "\n").dropFirst()
            let entries = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            let knowledge = entries.filter { $0["kind"] as? String == "knowledge" }
            XCTAssertEqual(knowledge.count, 4, out)
            if mode == "local" {
                // The schema fixes the answer's shape: every answer parses, and P(Yes) comes from the logprobs.
                XCTAssertEqual(knowledge.filter { $0["status"] as? String == "answered" }.count, 4, out)
                XCTAssertEqual(knowledge.filter { $0["p_yes"] is Double }.count, 4, out)
            }
            XCTAssertTrue(out.contains("overall"), out)
        }
        // SIGTERM while a streamed request is in flight: the request still completes, then the server exits 0.
        let py = try python()
        let script = """
            import sys, openai
            c = openai.OpenAI(base_url=sys.argv[1], api_key="x", max_retries=0, timeout=60)
            s = c.chat.completions.create(model="judge", messages=[{"role": "user", "content": "Count to fifty."}],
                                          max_tokens=64, temperature=0, stream=True)
            n = 0
            for ch in s:
                if n == 0: print("first", flush=True)
                n += 1
                if ch.choices and ch.choices[0].finish_reason: print("finished", ch.choices[0].finish_reason, flush=True)
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: py)
        p.arguments = ["-c", script, serve.baseURL]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("first") {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            seen += d
        }
        kill(serve.process.processIdentifier, SIGTERM)
        seen += out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        serve.process.waitUntilExit()
        XCTAssertTrue(String(decoding: seen, as: UTF8.self).contains("finished"), String(decoding: seen, as: UTF8.self))
        XCTAssertEqual(serve.process.terminationStatus, 0)
    }
}
