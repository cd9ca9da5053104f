// Checks the Swift jinja2 subset against renderings made by transformers' own chat-template code
// (scripts/fixtures/chat_template_fixtures.py writes Fixtures/chat_templates.json): six real model
// templates (SmolLM2, Qwen2.5, Gemma 3, Llama 3.1, Llama 3.2, Mistral Nemo) over many conversations, and
// small synthetic templates covering the filters, tests, loops, macros and whitespace rules.
// Every rendering must be byte-identical; every case where jinja2 raised must throw here, with
// the same message for raise_exception, undefined values, type errors and unknown filters, and
// the same line for syntax errors.

import ChatTemplates
import Foundation
import XCTest

private struct FixtureFile {
    let root: JinjaValue
    let directory: URL

    static let shared: Result<FixtureFile, Error> = Result {
        guard let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw ChatTemplateError(kind: .value, message: "Fixtures folder missing from the test bundle")
        }
        let data = try Data(contentsOf: dir.appendingPathComponent("chat_templates.json"))
        return FixtureFile(root: try JinjaValue(jsonData: data), directory: dir)
    }

    static func load() throws -> FixtureFile { try shared.get() }

    /// The fixed local time the generator pinned strftime_now to.
    var now: Date {
        let text = root["now_local"]?.stringValue ?? ""
        let parts = text.split(whereSeparator: { "-T:".contains($0) }).compactMap { Int($0) }
        var components = DateComponents()
        components.year = parts[0]; components.month = parts[1]; components.day = parts[2]
        components.hour = parts[3]; components.minute = parts[4]; components.second = parts[5]
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .current
        return calendar.date(from: components)!
    }

    func templateSource(_ name: String) throws -> String {
        guard let file = root["templates"]?[name]?["file"]?.stringValue else {
            throw ChatTemplateError(kind: .value, message: "no template \(name) in the fixture")
        }
        return try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
    }
}

/// Byte equality: Swift's `==` on String treats canonically equivalent text (é and e + U+0301) as equal.
private func sameBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

private func assertSameBytes(_ got: String, _ expected: String, _ message: String,
                             file: StaticString = #filePath, line: UInt = #line)
{
    if !sameBytes(got, expected) {
        XCTFail("\(message)\n--- expected\n\(expected.debugDescription)\n--- got\n\(got.debugDescription)", file: file, line: line)
    }
}

private func array(_ v: JinjaValue?) -> [JinjaValue] {
    if case .array(let items)? = v { return items }
    return []
}

private func context(_ v: JinjaValue?) -> [String: JinjaValue] {
    guard case .object(let pairs)? = v else { return [:] }
    var dict: [String: JinjaValue] = [:]
    for (k, value) in pairs { dict[k] = value }
    return dict
}

final class ChatTemplatesTests: XCTestCase {
    /// Renders `source` with `ctx` and compares with the case's expectation; returns whether it held.
    @discardableResult
    private func check(_ name: String, source: String, ctx: [String: JinjaValue], case record: JinjaValue,
                       now: Date, file: StaticString = #filePath, line: UInt = #line) -> Bool
    {
        if let expected = record["expected"]?.stringValue {
            do {
                let template = try ChatTemplate(source)
                let output = try template.render(ctx, now: now)
                if !sameBytes(output, expected) {
                    XCTFail("\(name): rendering differs\n--- expected\n\(expected.debugDescription)\n--- got\n\(output.debugDescription)",
                            file: file, line: line)
                    return false
                }
                return true
            } catch {
                XCTFail("\(name): threw \(error) but jinja2 rendered \(expected.debugDescription)", file: file, line: line)
                return false
            }
        }
        guard let expectedError = record["error"], let type = expectedError["type"]?.stringValue,
              let message = expectedError["message"]?.stringValue
        else {
            XCTFail("\(name): case has neither expected nor error", file: file, line: line)
            return false
        }
        do {
            let output = try ChatTemplate(source).render(ctx, now: now)
            XCTFail("\(name): rendered \(output.debugDescription) but jinja2 raised \(type): \(message)", file: file, line: line)
            return false
        } catch let error as ChatTemplateError {
            var problems: [String] = []
            let kinds: [ChatTemplateError.Kind]
            var compareMessage = true
            switch type {
            case "TemplateError": kinds = [.raised]
            case "UndefinedError": kinds = [.undefined]
            case "SecurityError": kinds = [.security]
            case "TemplateAssertionError": kinds = [.unknownFilter, .unknownTest]
            case "TemplateSyntaxError", "SyntaxError": kinds = [.syntax]; compareMessage = false
            case "TypeError": kinds = [.type]
            case "ValueError", "ZeroDivisionError": kinds = [.value]
            case "TemplateRuntimeError": kinds = [.type, .unknownFilter, .unknownTest]
            default: kinds = []
            }
            if !kinds.contains(error.kind) { problems.append("kind \(error.kind), expected one of \(kinds) for \(type)") }
            if compareMessage && !sameBytes(error.message, message) {
                problems.append("message \(error.message.debugDescription), expected \(message.debugDescription)")
            }
            if case .int(let expectedLine)? = expectedError["line"], error.line != expectedLine {
                problems.append("line \(error.line.map(String.init) ?? "nil"), expected \(expectedLine)")
            }
            if !problems.isEmpty {
                XCTFail("\(name): \(problems.joined(separator: "; ")) — error: \(error)", file: file, line: line)
                return false
            }
            return true
        } catch {
            XCTFail("\(name): threw a non-ChatTemplateError \(error)", file: file, line: line)
            return false
        }
    }

    func testRealModelTemplatesMatchTransformers() throws {
        let fixture = try FixtureFile.load()
        let cases = array(fixture.root["cases"])
        XCTAssertGreaterThan(cases.count, 50)
        var families = Set<String>()
        var passed = 0
        for record in cases {
            let name = record["name"]?.stringValue ?? "?"
            let templateName = record["template"]?.stringValue ?? "?"
            families.insert(templateName)
            let source = try fixture.templateSource(templateName)
            if check(name, source: source, ctx: context(record["context"]), case: record, now: fixture.now) { passed += 1 }
        }
        XCTAssertEqual(families, ["smollm2", "qwen2.5", "gemma3", "llama3.1", "llama3.2", "mistral-nemo"])
        XCTAssertEqual(passed, cases.count, "\(cases.count - passed) of \(cases.count) real-template cases failed")
    }

    func testSyntheticTemplatesMatchJinja2() throws {
        let fixture = try FixtureFile.load()
        let cases = array(fixture.root["synthetic"])
        XCTAssertGreaterThan(cases.count, 100)
        var passed = 0
        for record in cases {
            let name = record["name"]?.stringValue ?? "?"
            guard let source = record["source"]?.stringValue else { XCTFail("\(name): no source"); continue }
            if check(name, source: source, ctx: context(record["context"]), case: record, now: fixture.now) { passed += 1 }
        }
        XCTAssertEqual(passed, cases.count, "\(cases.count - passed) of \(cases.count) synthetic cases failed")
    }

    /// The convenience API passes what apply_chat_template passes (tools/documents None).
    func testConvenienceRenderMatchesFixture() throws {
        let fixture = try FixtureFile.load()
        var checked = 0
        for record in array(fixture.root["cases"]) {
            guard let expected = record["expected"]?.stringValue, let templateName = record["template"]?.stringValue,
                  case .none? = record["context"]?["tools"],
                  !(templateName == "llama3.2" && record["context"]?["date_string"] == nil)  // needs the pinned clock
            else { continue }
            let ctx = context(record["context"])
            let template = try ChatTemplate(try fixture.templateSource(templateName))
            var extra: [String: JinjaValue] = [:]
            for (k, v) in ctx where !["messages", "tools", "documents", "add_generation_prompt", "bos_token", "eos_token"].contains(k) {
                extra[k] = v
            }
            guard case .bool(let agp)? = ctx["add_generation_prompt"], let bos = ctx["bos_token"]?.stringValue,
                  let eos = ctx["eos_token"]?.stringValue
            else { continue }
            let output = try template.render(messages: array(ctx["messages"]), addGenerationPrompt: agp, bosToken: bos,
                                             eosToken: eos, extra: extra)
            assertSameBytes(output, expected, record["name"]?.stringValue ?? "")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 30)
    }

    func testChatMessageConvenience() throws {
        let fixture = try FixtureFile.load()
        let template = try ChatTemplate(try fixture.templateSource("smollm2"))
        let record = array(fixture.root["cases"]).first { $0["name"]?.stringValue == "smollm2/multi_turn_system/agp=true" }
        let expected = try XCTUnwrap(record?["expected"]?.stringValue)
        let messages = [
            ChatMessage(role: "system", content: "You are a helpful assistant. Answer briefly."),
            ChatMessage(role: "user", content: "What is the capital of France?"),
            ChatMessage(role: "assistant", content: "Paris."),
            ChatMessage(role: "user", content: "And of Italy?"),
        ]
        assertSameBytes(try template.render(messages: messages, addGenerationPrompt: true, bosToken: "<|im_start|>",
                                            eosToken: "<|im_end|>"), expected, "ChatMessage overload")
        let dicts: [[String: JinjaValue]] = messages.map { ["role": .string($0.role), "content": $0.content] }
        assertSameBytes(try template.render(messages: dicts, addGenerationPrompt: true, bosToken: "<|im_start|>",
                                            eosToken: "<|im_end|>"), expected, "dictionary overload")
        XCTAssertNotEqual(try template.render(messages: messages, addGenerationPrompt: false, bosToken: "", eosToken: ""),
                          expected)
    }

    func testSyntaxErrorsCarryLineAndColumn() {
        XCTAssertThrowsError(try ChatTemplate("line one\n  {{ 1 + }}")) { error in
            guard let e = error as? ChatTemplateError else { return XCTFail("wrong error type \(error)") }
            XCTAssertEqual(e.kind, .syntax)
            XCTAssertEqual(e.line, 2)
            XCTAssertEqual(e.column, 10)
            XCTAssertTrue(e.description.contains("line 2"), e.description)
        }
        XCTAssertThrowsError(try ChatTemplate("ab\ncd {% for x in y %}")) { error in
            let e = error as? ChatTemplateError
            XCTAssertEqual(e?.kind, .syntax)
            XCTAssertNotNil(e?.line)
            XCTAssertTrue(e?.message.contains("endfor") ?? false, e?.message ?? "")
        }
        XCTAssertThrowsError(try ChatTemplate("{{ 'unterminated }}")) { error in
            XCTAssertEqual((error as? ChatTemplateError)?.kind, .syntax)
            XCTAssertEqual((error as? ChatTemplateError)?.column, 4)
        }
    }

    func testUnknownFilterAndTestAreNamed() {
        XCTAssertThrowsError(try ChatTemplate("x\n{{ messages | frobnicate }}")) { error in
            guard let e = error as? ChatTemplateError else { return XCTFail("wrong error type") }
            XCTAssertEqual(e.kind, .unknownFilter)
            XCTAssertTrue(e.message.contains("frobnicate"), e.message)
            XCTAssertEqual(e.line, 2)
        }
        XCTAssertThrowsError(try ChatTemplate("{{ x is frobbed }}")) { error in
            XCTAssertEqual((error as? ChatTemplateError)?.kind, .unknownTest)
        }
        // Inside an if, jinja2 defers the check to when the filter is actually used.
        XCTAssertEqual(try ChatTemplate("{% if false %}{{ x|frobnicate }}{% endif %}ok").render([:]), "ok")
        XCTAssertThrowsError(try ChatTemplate("{% if true %}{{ x|frobnicate }}{% endif %}").render([:])) { error in
            XCTAssertEqual((error as? ChatTemplateError)?.kind, .unknownFilter)
            XCTAssertTrue((error as? ChatTemplateError)?.message.contains("frobnicate") ?? false)
        }
    }

    func testRaiseExceptionIsVerbatim() throws {
        let template = try ChatTemplate("{% if messages|length > 1 %}{{ raise_exception('Only ' ~ 1 ~ \" message, \\\"please\\\"\") }}{% endif %}ok")
        XCTAssertEqual(try template.render(["messages": ["a"]]), "ok")
        XCTAssertThrowsError(try template.render(["messages": ["a", "b"]])) { error in
            let e = error as? ChatTemplateError
            XCTAssertEqual(e?.kind, .raised)
            XCTAssertEqual(e?.message, "Only 1 message, \"please\"")
            XCTAssertEqual(e?.description, "Only 1 message, \"please\"")
        }
    }

    func testJSONReaderKeepsOrderAndTypes() throws {
        let v = try JinjaValue(jsonText: #"{"z": 1, "a": [1.0, 2, "x\u00e9\ud83d\ude00", null, true], "m": {"k": -0.5e1}}"#)
        guard case .object(let pairs) = v else { return XCTFail("not an object") }
        XCTAssertEqual(pairs.map(\.0), ["z", "a", "m"])
        XCTAssertEqual(v["a"], [1.0, 2, "xé😀", nil, true])
        if case .double(let d)? = v["a"].flatMap({ array($0).first }) { XCTAssertEqual(d, 1.0) } else { XCTFail("1.0 must stay a float") }
        XCTAssertEqual(v["m"]?["k"], .double(-5))
        XCTAssertEqual(v.jsonString(), #"{"z": 1, "a": [1.0, 2, "xé😀", null, true], "m": {"k": -5.0}}"#)
        XCTAssertThrowsError(try JinjaValue(jsonText: "{\"a\": }"))
        XCTAssertThrowsError(try JinjaValue(jsonText: "[1, 2"))
    }

    /// A runaway recursion or absurd nesting must end in an error, not a stack overflow. The thread
    /// gets 4 MiB, half of Linux's default: debug builds use ~20 KB of stack per macro level (release
    /// builds pass this test with 512 KiB).
    func testRunawayRecursionAndNestingFailCleanly() throws {
        final class Box: @unchecked Sendable { var errors: [ChatTemplateError?] = [] }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let deep = "{{ " + String(repeating: "(", count: 3000) + "1" + String(repeating: ")", count: 3000) + " }}"
            let nots = "{{ " + String(repeating: "not ", count: 3000) + "x }}"
            let blocks = String(repeating: "{% if true %}", count: 3000) + String(repeating: "{% endif %}", count: 3000)
            let sources = [
                "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                "{% for x in items recursive %}{{ loop(items) }}{% endfor %}",
                deep, nots, blocks,
            ]
            for source in sources {
                do {
                    _ = try ChatTemplate(source).render(["items": [1]])
                    box.errors.append(nil)
                } catch {
                    box.errors.append(error as? ChatTemplateError)
                }
            }
            done.signal()
        }
        thread.stackSize = 4 << 20
        thread.start()
        done.wait()
        XCTAssertEqual(box.errors.count, 5)
        XCTAssertEqual(box.errors.map { $0?.kind }, [.value, .value, .syntax, .syntax, .syntax])
        XCTAssertTrue(box.errors[0]?.message.contains("recursion") ?? false)
        // Legitimate recursion well inside the limit works.
        let countdown = try ChatTemplate("{% macro f(n) %}{{ n }}{% if n > 0 %},{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(50) }}")
        XCTAssertEqual(try countdown.render([:]), (0...50).reversed().map(String.init).joined(separator: ","))
    }

    func testTemplateIsReusableAndOrderOfObjectKeysMatters() throws {
        let template = try ChatTemplate("{% for k, v in obj.items() %}{{ k }}={{ v }};{% endfor %}{{ obj|tojson }}")
        XCTAssertEqual(try template.render(["obj": ["b": 1, "a": "x"]]), #"b=1;a=x;{"b": 1, "a": "x"}"#)
        XCTAssertEqual(try template.render(["obj": ["a": "x", "b": 1]]), #"a=x;b=1;{"a": "x", "b": 1}"#)
    }
}
