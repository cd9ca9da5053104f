import XCTest
final class LlamaTestsPlaceholder: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
