import XCTest
final class CLIPTestsPlaceholder: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
