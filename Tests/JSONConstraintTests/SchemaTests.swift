// Schema mode: documents jsonschema accepts must be accepted and complete, documents it rejects must
// not; refused keywords must be named in the error; the OpenAI request shapes; key handling details.

import Foundation
import XCTest
@testable import JSONConstraint

final class SchemaTests: XCTestCase {
    func testSchemaFixturesAgainstJSONSchema() throws {
        let cases = try Fixtures.cases()
        XCTAssertGreaterThan(cases.schemas.count, 30)
        var valid = 0, invalid = 0
        for c in cases.schemas {
            let schema: JSONSchema
            do { schema = try JSONSchema(jsonString: c.schema_text) } catch {
                XCTFail("\(c.name): \(error)")
                continue
            }
            let start = JSONPrefixState(schema: schema)
            for hex in c.valid {
                let bytes = Hex.decode(hex)
                let (n, s) = feedPrefix(start, bytes)
                XCTAssertEqual(n, bytes.count, "\(c.name): refused byte \(n) of valid \(text(bytes))")
                if n == bytes.count { XCTAssertTrue(s.isComplete, "\(c.name): valid \(text(bytes)) not complete") }
                valid += 1
            }
            for hex in c.invalid {
                let bytes = Hex.decode(hex)
                XCTAssertFalse(acceptsDocument(start, bytes), "\(c.name): accepted invalid \(text(bytes))")
                invalid += 1
            }
        }
        XCTAssertGreaterThan(valid, 400)
        XCTAssertGreaterThan(invalid, 400)
    }

    func testUnsupportedKeywordsAreRefusedByName() throws {
        let cases = try Fixtures.cases()
        for u in cases.unsupported {
            do {
                _ = try JSONSchema(jsonString: u.schema_text)
                XCTFail("compiled unsupported schema \(u.schema_text)")
            } catch let e as JSONSchemaError {
                if let keyword = u.keyword {
                    XCTAssertEqual(e.keyword, keyword, "\(u.schema_text): \(e)")
                    XCTAssertTrue(e.description.contains(keyword))
                }
            }
        }
    }

    func testMalformedSchemaTextIsAnError() {
        for bad in ["", "{", #"{"type":"string",}"#, #"{"enum":["\ud800"]}"#, "[1]", "3"] {
            XCTAssertThrowsError(try JSONSchema(jsonString: bad), bad) { error in
                XCTAssertTrue(error is JSONSchemaError, "\(bad): \(error)")
            }
        }
    }

    func testIgnoredKeywordsAreListed() throws {
        let s = try JSONSchema(jsonString: #"{"type":"string","format":"date","pattern":"^a","x-note":1,"title":"T"}"#)
        XCTAssertEqual(s.ignoredKeywords, ["format", "pattern", "x-note"])
        XCTAssertThrowsError(try JSONSchema(jsonString: #"{"type":"integer","minimum":0}"#))
        let lenient = try JSONSchema(jsonString: #"{"type":"integer","minimum":0}"#,
                                     options: JSONSchema.Options(ignoreUnsupported: true))
        XCTAssertEqual(lenient.ignoredKeywords, ["minimum"])
        XCTAssertTrue(acceptsDocument(JSONPrefixState(schema: lenient), Array("-5".utf8)))
    }

    func testOpenAIWrapperAndResponseFormat() throws {
        let wrapper = #"{"name":"person","strict":true,"schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}}"#
        let s = try JSONSchema(openAIJSONSchema: Data(wrapper.utf8))
        XCTAssertEqual(s.name, "person")
        XCTAssertEqual(s.strict, true)
        XCTAssertTrue(acceptsDocument(JSONPrefixState(schema: s), Array(#"{"a":1}"#.utf8)))
        XCTAssertFalse(acceptsDocument(JSONPrefixState(schema: s), Array(#"{"b":1}"#.utf8)))

        let rf = try ResponseFormat(json: Data(#"{"type":"json_schema","json_schema":\#(wrapper)}"#.utf8))
        guard case .jsonSchema(let inner) = rf else { return XCTFail("\(rf)") }
        XCTAssertEqual(inner.name, "person")
        XCTAssertNil(try ResponseFormat(json: Data(#"{"type":"text"}"#.utf8)).initialState())
        let obj = try XCTUnwrap(try ResponseFormat(json: Data(#"{"type":"json_object"}"#.utf8)).initialState())
        XCTAssertTrue(acceptsDocument(obj, Array(#"{"x":[1]}"#.utf8)))
        XCTAssertFalse(acceptsDocument(obj, Array("[1]".utf8)))
        XCTAssertThrowsError(try ResponseFormat(json: Data(#"{"type":"yaml"}"#.utf8)))
        XCTAssertThrowsError(try ResponseFormat(json: Data(#"{"type":"json_schema"}"#.utf8)))
        // No "schema" member: any object.
        let bare = try JSONSchema(openAIJSONSchema: Data(#"{"name":"x"}"#.utf8))
        XCTAssertTrue(acceptsDocument(JSONPrefixState(schema: bare), Array(#"{"k":null}"#.utf8)))
    }

    private func state(_ schema: String) throws -> JSONPrefixState {
        JSONPrefixState(schema: try JSONSchema(jsonString: schema))
    }

    func testPropertiesInAnyOrderEachOnce() throws {
        let s = try state(#"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a"],"additionalProperties":false}"#)
        XCTAssertTrue(acceptsDocument(s, Array(#"{"b":1,"a":2}"#.utf8)))
        XCTAssertFalse(s.accepts(Array(#"{"a":1,"a""#.utf8)), "a repeated declared key is refused at its closing quote")
        XCTAssertTrue(s.accepts(Array(#"{"a":1,"b""#.utf8)))
        XCTAssertFalse(s.accepts(Array(#"{"a":1,"b":2,"#.utf8)), "no key is left to write after a comma")
        XCTAssertFalse(s.accepts(Array(#"{"b":1}"#.utf8)), "} before the required key")
        XCTAssertFalse(s.accepts(Array(#"{"c"#.utf8)), "undeclared key refused as soon as it diverges")
        XCTAssertFalse(s.accepts(Array(#"{"a\u"#.utf8)), "declared-only keys take no \\u escapes")
    }

    func testKeysMatchedAfterDecodingWhenOtherKeysAreAllowed() throws {
        let s = try state(#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"}}"#)
        XCTAssertFalse(acceptsDocument(s, Array(#"{"\u0061":1}"#.utf8)), "\\u0061 is the declared key a, a string")
        XCTAssertTrue(acceptsDocument(s, Array(#"{"\u0061":"x"}"#.utf8)))
        XCTAssertTrue(acceptsDocument(s, Array(#"{"a\u0062":1}"#.utf8)))
        XCTAssertFalse(acceptsDocument(s, Array(#"{"a":"x","\u0061":"y"}"#.utf8)), "repeated declared key")
    }

    func testRecursiveSchemaDepth() throws {
        let s = try state(##"{"$defs":{"n":{"type":"array","items":{"$ref":"#/$defs/n"}}},"$ref":"#/$defs/n"}"##)
        XCTAssertTrue(acceptsDocument(s, Array("[[[],[[]]]]".utf8)))
        XCTAssertFalse(s.accepts(Array("[1".utf8)))
    }

    func testEnumLiteralsAndPrefixes() throws {
        let s = try state(#"{"enum":["ab","abc",10,100,true]}"#)
        for ok in [#""ab""#, #""abc""#, "10", "100", "true"] { XCTAssertTrue(acceptsDocument(s, Array(ok.utf8)), ok) }
        for bad in [#""a""#, #""abcd""#, "1", "1000", "tru", "false"] { XCTAssertFalse(acceptsDocument(s, Array(bad.utf8)), bad) }
        XCTAssertFalse(s.accepts(Array("2".utf8)))
        XCTAssertTrue(s.accepts(Array("1".utf8)))
        XCTAssertTrue(s.accepts(Array("10 ".utf8)))
    }

    func testUnsatisfiableOptionalPartsCannotBeStarted() throws {
        // "x" can never be completed (its required property is impossible), so its key is never offered.
        let s = try state(#"{"type":"object","properties":{"x":{"type":"object","properties":{"y":false},"required":["y"]},"z":{"type":"integer"}},"additionalProperties":false}"#)
        XCTAssertFalse(s.accepts(Array(#"{"x"#.utf8)))
        XCTAssertTrue(acceptsDocument(s, Array(#"{"z":1}"#.utf8)))
        let items = try state(#"{"type":"array","items":false}"#)
        XCTAssertFalse(items.accepts(Array("[1".utf8)))
        XCTAssertTrue(acceptsDocument(items, Array("[]".utf8)))
    }
}
