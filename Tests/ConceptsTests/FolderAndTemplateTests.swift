// `folder:PATH` concept sets (one sub-folder per concept, images at any depth) and user query templates
// with Python str.format semantics.
import Foundation
import XCTest
@testable import Concepts

final class FolderDatasetTests: XCTestCase {
    func testConceptsAreSortedSubfoldersWithImagesAtAnyDepth() throws {
        let dir = try TempDir()
        let png = try Data(contentsOf: Fixture.url("images/tiny.png"))
        let jpg = try Data(contentsOf: Fixture.url("images/tiny.jpg"))
        try dir.write("set/zebra_finch/b.png", png)
        try dir.write("set/zebra_finch/deep/er/a.JPG", jpg)
        try dir.write("set/zebra_finch/notes.txt", text: "not an image")
        try dir.write("set/zebra_finch/.hidden.png", png)
        try dir.write("set/Apple/x.jpeg", jpg)
        try dir.write("set/apple/y.png", png)
        try dir.write("set/.cache/z.png", png)
        try dir.write("set/readme.png", png)
        let ds = try DatasetLoader.load(name: "folder:" + dir.url.appendingPathComponent("set").path, root: dir.url)
        // Code-point order, as Python's sorted(): upper case first.
        XCTAssertEqual(ds.classNames, ["Apple", "apple", "zebra finch"])
        let rel = ds.images.map { (String($0.url.path.dropFirst(dir.url.path.count + 5)), $0.label) }
        XCTAssertEqual(rel.map(\.0), ["Apple/x.jpeg", "apple/y.png", "zebra_finch/b.png", "zebra_finch/deep/er/a.JPG"])
        XCTAssertEqual(rel.map(\.1), [0, 1, 2, 2])
        XCTAssertNil(ds.split)
        XCTAssertEqual(ds.imagesForReward(classIndex: 2, limit: 1).map(\.lastPathComponent), ["b.png"])
        let set = try ds.rewardImages(limit: 0)
        XCTAssertEqual(set.perClass.map(\.count), [1, 1, 2])
        XCTAssertEqual(ds.concepts, [Concept(name: "Apple", index: 0), Concept(name: "apple", index: 1), Concept(name: "zebra finch", index: 2)])
    }

    func testRelativePathsResolveAgainstTheCurrentDirectory() throws {
        let dir = try TempDir()
        try dir.write("c/one/a.png", Data(contentsOf: Fixture.url("images/tiny.png")))
        let saved = FileManager.default.currentDirectoryPath
        defer { _ = FileManager.default.changeCurrentDirectoryPath(saved) }
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir.url.path))
        let ds = try DatasetLoader.load(name: "folder:c", root: URL(fileURLWithPath: "/nonexistent"))
        XCTAssertEqual(ds.classNames, ["one"])
        XCTAssertEqual(ds.images.count, 1)
    }

    func testBadFoldersAreReported() throws {
        let dir = try TempDir()
        XCTAssertThrowsError(try DatasetLoader.load(name: "folder:" + dir.url.appendingPathComponent("nope").path, root: dir.url)) { error in
            guard case ConceptsError.missing(_, let path, let layout) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("/nope"))
            XCTAssertTrue(layout.contains("one sub-folder per concept"))
        }
        try dir.write("flat/a.png", Data(contentsOf: Fixture.url("images/tiny.png")))
        XCTAssertThrowsError(try DatasetLoader.load(name: "folder:" + dir.url.appendingPathComponent("flat").path, root: dir.url)) { error in
            guard case ConceptsError.malformed = error else { return XCTFail("\(error)") }
        }
        try dir.write("flat/empty/readme.txt", text: "no images here")
        XCTAssertThrowsError(try DatasetLoader.load(name: "folder:" + dir.url.appendingPathComponent("flat").path, root: dir.url)) { error in
            guard case ConceptsError.emptyConcept(_, 0, "empty") = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try DatasetLoader.load(name: "folder:" + dir.url.path, root: dir.url, split: "train")) { error in
            guard case ConceptsError.unknownSplit = error else { return XCTFail("\(error)") }
        }
    }
}

final class QueryTemplateTests: XCTestCase {
    func testUserTemplatesFollowPythonFormat() throws {
        let dir = try TempDir()
        try dir.write("t.json", text: #"["A {} in {{braces}}.", "Describe {0}!"]"#)
        let t = try QueryTemplates.load(dir.url.appendingPathComponent("t.json"))
        let prompts = t.prompts(classNames: ["cat", "dog"])
        XCTAssertEqual(prompts.map(\.text), ["A cat in {braces}.\n\n", "Describe cat!\n\n", "A dog in {braces}.\n\n", "Describe dog!\n\n"])
        XCTAssertEqual(prompts.map(\.classIndex), [0, 0, 1, 1])
    }

    func testBadTemplatesAreRejected() throws {
        for bad in ["no placeholder", "two {} {}", "named {name}", "open {", "close }", "{} and {0}"] {
            XCTAssertThrowsError(try QueryTemplates([bad], source: "mine.json"), bad) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("mine.json") && text.contains("template 0"), text)
            }
        }
        XCTAssertThrowsError(try QueryTemplates([], source: "mine.json"))
        let dir = try TempDir()
        try dir.write("t.json", text: #"{"not": "a list"}"#)
        XCTAssertThrowsError(try QueryTemplates.load(dir.url.appendingPathComponent("t.json")))
        XCTAssertThrowsError(try QueryTemplates.load(dir.url.appendingPathComponent("absent.json"))) { error in
            XCTAssertTrue("\(error)".contains("absent.json"), "\(error)")
        }
    }
}

/// The demo concept set laid out by scripts/setup-data.sh: every concept loads and every photo decodes.
final class DemoStampsTests: XCTestCase {
    func testDemoStampsLoadAndDecode() throws {
        let data = ProcessInfo.processInfo.environment["EX2_DATA"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("data")
        let stamps = data.appendingPathComponent("stamps")
        guard FileManager.default.fileExists(atPath: stamps.path) else {
            throw XCTSkip("*** \(stamps.path) is absent: run scripts/setup-data.sh to lay out the demo concepts ***")
        }
        let ds = try DatasetLoader.load(name: "folder:" + stamps.path, root: data)
        XCTAssertGreaterThanOrEqual(ds.classNames.count, 8, "\(ds.classNames)")
        XCTAssertTrue(ds.classNames.contains("birds") && ds.classNames.contains("flowers"), "\(ds.classNames)")
        XCTAssertTrue(ds.images.allSatisfy { $0.url.pathExtension == "png" })
        let set = try ds.rewardImages(limit: 0)
        XCTAssertEqual(set.perClass.map(\.count), ds.imageCounts)
        XCTAssertTrue(set.skipped.isEmpty)
    }
}
