// Fixture lookup and comparison helpers for the CLIP tests. Expected values come from
// scripts/fixtures/clip_fixtures.py (transformers and open_clip on the same random weights).
import Foundation
import XCTest

enum Fixtures {
    static var root: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
                throw XCTSkip("CLIPTests fixtures are missing: run scripts/fixtures/clip_fixtures.py")
            }
            return url
        }
    }

    static func url(_ name: String) throws -> URL { try root.appendingPathComponent(name) }

    static func json<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: url(name)))
    }
}

struct ExpectedModel: Decodable {
    let token_ids: [[Int]]
    let image_embeds: [[Double]]
    let text_embeds: [[Double]]
    let logits_per_image: [[Double]]
    let logit_scale: Double
    let images: [String]
    let texts: [String]?
}

struct ExpectedTiny: Decodable {
    let hf_tiny: ExpectedModel
    let openclip_tiny: ExpectedModel
}

struct ExpectedB32: Decodable { let b32: ExpectedModel }

func cosine(_ a: [Float], _ b: [Double]) -> Double {
    var ab = 0.0, aa = 0.0, bb = 0.0
    for (x, y) in zip(a, b) { ab += Double(x) * y; aa += Double(x) * Double(x); bb += y * y }
    return ab / (aa.squareRoot() * bb.squareRoot())
}

/// Each row's cosine to its reference must reach `minCosine`, and norms agree to `normTolerance` (relative).
func assertEmbeddings(_ got: [[Float]], _ want: [[Double]], minCosine: Double = 0.99999, normTolerance: Double = 1e-4,
                      _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, "\(what): count", file: file, line: line)
    for (i, (g, w)) in zip(got, want).enumerated() {
        XCTAssertEqual(g.count, w.count, "\(what)[\(i)]: dimension", file: file, line: line)
        let c = cosine(g, w)
        XCTAssertGreaterThanOrEqual(c, minCosine, "\(what)[\(i)]: cosine \(c)", file: file, line: line)
        let ng = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let nw = w.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        XCTAssertEqual(ng, nw, accuracy: nw * normTolerance, "\(what)[\(i)]: norm", file: file, line: line)
    }
}

func assertLogits(_ got: [[Float]], _ want: [[Double]], relative: Double = 1e-3, _ what: String,
                  file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, "\(what): rows", file: file, line: line)
    for (g, w) in zip(got, want) {
        XCTAssertEqual(g.count, w.count, "\(what): columns", file: file, line: line)
        for (x, y) in zip(g, w) {
            XCTAssertEqual(Double(x), y, accuracy: max(abs(y) * relative, 1e-6), "\(what)", file: file, line: line)
        }
    }
}
