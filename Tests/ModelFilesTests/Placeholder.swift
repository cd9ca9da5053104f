import XCTest
final class ModelFilesTestsPlaceholder: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
