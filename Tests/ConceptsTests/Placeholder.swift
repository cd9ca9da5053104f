import XCTest
final class ConceptsTestsPlaceholder: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
