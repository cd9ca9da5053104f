// open_clip unescapes HTML twice before tokenizing; ex2's port of Python's html.unescape must give the
// same strings on the tricky cases (numeric remaps, dropped code points, names without ';', longest
// prefixes), recorded from Python 3.11 by scripts/fixtures/html_entities.py.
import Foundation
import XCTest
@testable import Tokenizers

final class HTMLUnescapeTests: XCTestCase {
    struct Case: Decodable { var `in`: String; var out: String; var twice: String }
    struct File: Decodable { var cases: [Case] }

    func testMatchesPythonHTMLUnescape() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/html_unescape_cases", withExtension: "json"))
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        XCTAssertTrue(HTMLUnescape.isAvailable)
        for c in cases {
            XCTAssertEqual(HTMLUnescape.unescape(c.in).unicodeScalars.map(\.value), c.out.unicodeScalars.map(\.value), c.in)
            XCTAssertEqual(HTMLUnescape.unescape(HTMLUnescape.unescape(c.in)), c.twice, c.in)
        }
    }
}
