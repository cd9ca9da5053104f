// Miniature copies of the six dataset layouts (annotation files from scripts/fixtures/concepts_fixtures.py,
// tiny image files written here) must load into the very (image, label) lists that torchvision's dataset
// classes and the EX2 reference's own readers build from the same files, with the reference's class names
// and reward-image selection; broken layouts must fail with errors that name the path and the layout.
import Foundation
import XCTest
@testable import Concepts

final class DatasetLoaderTests: XCTestCase {
    struct Expected {
        let images: [String]
        let splits: [String: [(String, Int)]]
        let rewardLimit2: [String: [String: [String]]]
        let rewardAll: [String: [String: [String]]]
        let classNames: [String]
    }

    func expected() throws -> [String: Expected] {
        let root = try XCTUnwrap(try Fixture.json("layouts/expected.json") as? [String: Any])
        let datasets = try XCTUnwrap(root["datasets"] as? [String: [String: Any]])
        return try datasets.mapValues { d in
            let splits = try XCTUnwrap(d["splits"] as? [String: [[Any]]]).mapValues { rows in
                rows.map { ($0[0] as! String, $0[1] as! Int) }
            }
            return Expected(images: try XCTUnwrap(d["images"] as? [String]), splits: splits,
                            rewardLimit2: try XCTUnwrap(d["reward_limit_2"] as? [String: [String: [String]]]),
                            rewardAll: try XCTUnwrap(d["reward_all"] as? [String: [String: [String]]]),
                            classNames: try XCTUnwrap(d["classnames"] as? [String]))
        }
    }

    /// A data root holding every miniature layout with a real (tiny) JPEG at each image path.
    func makeRoot(_ expected: [String: Expected]) throws -> TempDir {
        let dir = try TempDir()
        let layouts = try Fixture.url("layouts")
        let walker = try XCTUnwrap(FileManager.default.enumerator(at: layouts, includingPropertiesForKeys: nil))
        for case let file as URL in walker where file.lastPathComponent != "expected.json" {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDir), !isDir.boolValue else { continue }
            let relative = String(file.path.dropFirst(layouts.path.count + 1))
            try dir.write(relative, Data(contentsOf: file))
        }
        let jpeg = try Data(contentsOf: Fixture.url("images/tiny.jpg"))
        for e in expected.values { for image in e.images { try dir.write(image, jpeg) } }
        return dir
    }

    func relative(_ url: URL, _ root: URL) -> String { String(url.path.dropFirst(root.path.count + 1)) }

    func testEveryLayoutAndSplitMatchesTheReferenceLoaders() throws {
        let expected = try expected()
        XCTAssertEqual(Set(expected.keys), Set(DatasetLoader.datasetNames))
        let dir = try makeRoot(expected)
        for (name, e) in expected {
            XCTAssertEqual(Set(e.splits.keys), Set(DatasetLoader.splits(of: name) ?? []), name)
            for (split, pairs) in e.splits {
                let ds = try DatasetLoader.load(name: name, root: dir.url, split: split)
                XCTAssertEqual(ds.split, split)
                XCTAssertEqual(ds.classNames, e.classNames, name)
                XCTAssertEqual(ds.images.map { relative($0.url, dir.url) }, pairs.map(\.0), "\(name) \(split) order")
                XCTAssertEqual(ds.images.map(\.label), pairs.map(\.1), "\(name) \(split) labels")
                XCTAssertTrue(ds.skipped.isEmpty)
                for (limit, table) in [(2, e.rewardLimit2[split]!), (-1, e.rewardAll[split]!), (0, e.rewardAll[split]!)] {
                    for c in 0 ..< ds.classNames.count {
                        let got = ds.imagesForReward(classIndex: c, limit: limit).map { relative($0, dir.url) }
                        XCTAssertEqual(got, table[String(c)] ?? [], "\(name) \(split) class \(c) limit \(limit)")
                    }
                }
            }
        }
    }

    func testDefaultSplitIsTheOneTheReferenceTrainsOn() throws {
        let expected = try expected()
        let dir = try makeRoot(expected)
        for (name, want) in [("pets", "trainval"), ("fgvc_aircraft", "trainval"), ("cub", "train"), ("flowers", "train"),
                             ("stanford_cars", "train"), ("stanford_dogs", "train")] {
            let ds = try DatasetLoader.load(name: name, root: dir.url)
            XCTAssertEqual(ds.split, want, name)
            XCTAssertEqual(ds.images.count, expected[name]!.splits[want]!.count, name)
        }
    }

    func testRootMayBeTheDatasetFolderItself() throws {
        let expected = try expected()
        let dir = try makeRoot(expected)
        for (name, folder) in [("flowers", "flowers-102"), ("cub", "cub/CUB_200_2011"), ("stanford_dogs", "stanford_dogs"),
                               ("fgvc_aircraft", "fgvc-aircraft-2013b")] {
            let ds = try DatasetLoader.load(name: name, root: dir.url.appendingPathComponent(folder), split: "test")
            XCTAssertEqual(ds.images.map { relative($0.url, dir.url) }, expected[name]!.splits["test"]!.map(\.0), name)
        }
    }

    func testBuiltInClassNamesAndPromptsMatchTheReference() throws {
        let expected = try expected()
        for (name, e) in expected { XCTAssertEqual(try ClassNames.builtIn(name), e.classNames, name) }
        let root = try XCTUnwrap(try Fixture.json("layouts/expected.json") as? [String: Any])
        let prompts = try XCTUnwrap(root["prompts_stanford_dogs"] as? [String: Any])
        let templates = try QueryTemplates.builtIn()
        XCTAssertEqual(templates.templates.count, 25)
        let got = templates.prompts(classNames: try ClassNames.builtIn("stanford_dogs"))
        XCTAssertEqual(got.count, prompts["count"] as? Int)
        for (index, value) in try XCTUnwrap(prompts["sample"] as? [String: [Any]]) {
            let i = Int(index)!
            XCTAssertEqual(got[i].text, value[0] as? String, "prompt \(i)")
            XCTAssertEqual(got[i].classIndex, value[1] as? Int, "prompt \(i)")
            XCTAssertEqual(got[i].templateIndex, i % 25)
        }
    }

    // MARK: - errors

    func testMissingAnnotationFilesNameThePathAndLayout() throws {
        let dir = try makeRoot(try expected())
        let cases: [(String, String, String)] = [
            ("cub", "cub/CUB_200_2011/train_test_split.txt", "train_test_split.txt"),
            ("flowers", "flowers-102/setid.mat", "setid.mat"),
            ("pets", "oxford-iiit-pet/annotations/trainval.txt", "trainval.txt"),
            ("stanford_cars", "stanford_cars/devkit/cars_meta.mat", "cars_meta.mat"),
            ("stanford_dogs", "stanford_dogs/train_list.mat", "train_list.mat"),
            ("fgvc_aircraft", "fgvc-aircraft-2013b/data/images_variant_trainval.txt", "images_variant"),
        ]
        for (name, file, layoutWord) in cases {
            try dir.remove(file)
            XCTAssertThrowsError(try DatasetLoader.load(name: name, root: dir.url)) { error in
                guard case ConceptsError.missing(_, let path, let layout) = error else { return XCTFail("\(name): \(error)") }
                XCTAssertEqual(path, dir.url.appendingPathComponent(file).path, name)
                XCTAssertTrue(layout.contains(layoutWord), name)
                XCTAssertTrue("\(error)".contains("Expected layout"), name)
            }
        }
        let empty = try TempDir()
        XCTAssertThrowsError(try DatasetLoader.load(name: "flowers", root: empty.url)) { error in
            XCTAssertEqual((error as? ConceptsError).map { "\($0)" }?.contains(empty.url.appendingPathComponent("flowers-102").path), true, "\(error)")
        }
    }

    func testMalformedAnnotationsAreReported() throws {
        let dir = try makeRoot(try expected())
        try dir.write("oxford-iiit-pet/annotations/test.txt", text: "Abyssinian_1 1 1 1\nbroken-line\n")
        XCTAssertThrowsError(try DatasetLoader.load(name: "pets", root: dir.url, split: "test")) { error in
            guard case ConceptsError.malformed(_, let path, let problem, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("annotations/test.txt"))
            XCTAssertTrue(problem.contains("line 2"), problem)
        }
        try dir.write("oxford-iiit-pet/annotations/test.txt", text: "Abyssinian_1 38 1 1\n")
        XCTAssertThrowsError(try DatasetLoader.load(name: "pets", root: dir.url, split: "test")) { error in
            XCTAssertEqual(error as? ConceptsError, .labelOutOfRange(dataset: "pets", path: dir.url.appendingPathComponent("oxford-iiit-pet/annotations/test.txt").path, label: 37, classCount: 37))
        }
        try dir.write("fgvc-aircraft-2013b/data/images_variant_test.txt", text: "1234567 Not A Plane\n")
        XCTAssertThrowsError(try DatasetLoader.load(name: "fgvc_aircraft", root: dir.url, split: "test")) { error in
            XCTAssertTrue("\(error)".contains("'Not A Plane' is not in variants.txt"), "\(error)")
        }
        try dir.write("fgvc-aircraft-2013b/data/variants.txt", text: "707-320\n727-200\n")
        XCTAssertThrowsError(try DatasetLoader.load(name: "fgvc_aircraft", root: dir.url, split: "test")) { error in
            guard case ConceptsError.classCountMismatch(_, _, 2, 100) = error else { return XCTFail("\(error)") }
        }
        try dir.write("flowers-102/setid.mat", text: String(repeating: "not a mat file ", count: 20))
        XCTAssertThrowsError(try DatasetLoader.load(name: "flowers", root: dir.url)) { error in
            guard case ConceptsError.malformed(_, let path, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("flowers-102/setid.mat"))
        }
        // A MAT file of the wrong kind: the variable it needs is absent.
        try dir.write("stanford_dogs/test_list.mat", Data(contentsOf: Fixture.url("mat/values.mat")))
        XCTAssertThrowsError(try DatasetLoader.load(name: "stanford_dogs", root: dir.url, split: "test")) { error in
            XCTAssertTrue("\(error)".contains("no variable 'file_list'"), "\(error)")
        }
        XCTAssertThrowsError(try DatasetLoader.load(name: "cub", root: dir.url, split: "val")) { error in
            XCTAssertEqual(error as? ConceptsError, .unknownSplit(dataset: "cub", split: "val", valid: ["train", "test"]))
        }
        XCTAssertThrowsError(try DatasetLoader.load(name: "imagenet", root: dir.url)) { error in
            XCTAssertEqual(error as? ConceptsError, .unknownDataset("imagenet"))
        }
    }

    func testMissingImagesFailOrAreSkippedOnRequest() throws {
        let expected = try expected()
        let dir = try makeRoot(expected)
        let pairs = expected["stanford_cars"]!.splits["test"]!
        try dir.remove(pairs[2].0)
        XCTAssertThrowsError(try DatasetLoader.load(name: "stanford_cars", root: dir.url, split: "test")) { error in
            guard case ConceptsError.missingImages(_, let paths, 1) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(paths, [dir.url.appendingPathComponent(pairs[2].0).path])
        }
        let ds = try DatasetLoader.load(name: "stanford_cars", root: dir.url, split: "test",
                                        options: .init(skipMissingImages: true))
        XCTAssertEqual(ds.skipped.map(\.url.path), [dir.url.appendingPathComponent(pairs[2].0).path])
        XCTAssertEqual(ds.images.count, pairs.count - 1)
    }

    func testUnreadableRewardImagesFailOrAreSkippedOnRequest() throws {
        let expected = try expected()
        let dir = try makeRoot(expected)
        let e = expected["fgvc_aircraft"]!
        let first = e.rewardAll["trainval"]!["0"]!
        XCTAssertGreaterThanOrEqual(first.count, 3)
        try dir.write(first[0], Data("not an image".utf8))
        let ds = try DatasetLoader.load(name: "fgvc_aircraft", root: dir.url)
        XCTAssertThrowsError(try ds.rewardImages(limit: 2, requireEveryClass: false)) { error in
            guard case ConceptsError.unreadableImage(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, dir.url.appendingPathComponent(first[0]).path)
        }
        let set = try ds.rewardImages(limit: 2, skipUnreadable: true, requireEveryClass: false)
        XCTAssertEqual(set.skipped.map(\.url.path), [dir.url.appendingPathComponent(first[0]).path])
        XCTAssertEqual(set.perClass[0].map { relative($0, dir.url) }, Array(first[1 ... 2]))
        XCTAssertEqual(set.perClass.count, 100)
        XCTAssertThrowsError(try ds.rewardImages(limit: 2, skipUnreadable: true)) { error in
            guard case ConceptsError.emptyConcept(_, 1, _) = error else { return XCTFail("\(error)") }
        }
    }
}
