// SHA-256 against Python's hashlib (Tests/ModelFilesTests/Fixtures/sha256_cases.json): lengths around the
// 55/56/64-byte padding edges, fed whole and in random pieces (the hub client hashes downloads in chunks).
import Foundation
import XCTest
@testable import ModelFiles

final class SHA256Tests: XCTestCase {
    func testMatchesHashlibWholeAndInPieces() throws {
        let cases = try XCTUnwrap(try TestFiles.json("sha256_cases.json")["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 10)
        var rng = SplitMix64(state: 99)
        for c in cases {
            let n = try XCTUnwrap(c["n"] as? Int), want = try XCTUnwrap(c["sha256"] as? String)
            let bytes = (0..<n).map { UInt8($0 % 251) }
            func hex(_ d: [UInt8]) -> String { d.map { String(format: "%02x", $0) }.joined() }
            XCTAssertEqual(hex(SHA256.digest(bytes)), want, "n = \(n)")
            XCTAssertEqual(hex(SHA256.digest(Data(bytes))), want, "n = \(n) as Data")
            var s = SHA256(), i = 0
            while i < n {
                let k = min(n - i, 1 + rng.below(130))
                s.update(bytes[i..<(i + k)])
                i += k
            }
            XCTAssertEqual(hex(s.finalize()), want, "n = \(n) in pieces")
        }
    }
}
