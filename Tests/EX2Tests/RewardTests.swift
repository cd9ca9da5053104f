// The reward against outside oracles: the formula against NumPy on random embeddings, and `ex2 score`'s
// library call on a few real stamps photos with a tiny random CLIP against transformers computing the same
// thing (scripts/fixtures/reward_fixtures.py). Plus the errors a user meets with bad descriptions files
// and unreadable images.
import CLIP
import Concepts
import EX2
import Foundation
import XCTest

enum RewardFixtures {
    static var root: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
                throw XCTSkip("EX2Tests fixtures are missing: run scripts/fixtures/reward_fixtures.py")
            }
            return url
        }
    }

    static func json<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: root.appendingPathComponent(name)))
    }
}

struct FormulaFixture: Decodable {
    let scale: Double
    let image_embeds: [[[Double]]]
    let text_embeds: [[Double]]
    let classes: [Int]
    let rewards: [Double]
    let zero_shot_predictions: [[Int]]
}

struct ScoreFixture: Decodable {
    let concepts: [String]
    let images: [[String]]
    let descriptions: [[String]]
    let token_ids: [[Int]]
    let scale: Double
    let rewards_all_images: [[Double]]
    let rewards_first_2_images: [[Double]]
    let zero_shot_predictions: [[Int]]
    let zero_shot_accuracy: Double
}

/// |got - want| <= relative * |want|, with a floor of 1e-3 * scale for rewards near zero (a cosine error of
/// 1e-5 on a reward that happens to be 0.01 is not a relative error of 1e-3 of anything meaningful).
func assertRewards(_ got: [Float], _ want: [Double], relative: Double = 1e-3, floor: Double, _ what: String,
                   file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, "\(what): count", file: file, line: line)
    for (i, (g, w)) in zip(got, want).enumerated() {
        XCTAssertEqual(Double(g), w, accuracy: max(relative * abs(w), floor), "\(what)[\(i)]", file: file, line: line)
    }
}

final class RewardTableTests: XCTestCase {
    func testRewardMatchesNumPy() throws {
        let f = try RewardFixtures.json("reward_formula.json", as: FormulaFixture.self)
        let table = try RewardTable(imageEmbeddings: f.image_embeds.map { $0.map { $0.map(Float.init) } }, scale: Float(f.scale))
        XCTAssertEqual(table.imageCounts, f.image_embeds.map(\.count))
        let got = try table.rewards(textEmbeddings: f.text_embeds.map { $0.map(Float.init) }, classes: f.classes)
        assertRewards(got, f.rewards, relative: 1e-5, floor: 1e-5 * f.scale, "rewards")
    }

    func testZeroShotMatchesNumPy() throws {
        let f = try RewardFixtures.json("reward_formula.json", as: FormulaFixture.self)
        let texts = f.text_embeds.map { $0.map(Float.init) }
        let prototypes = Scoring.classPrototypes(texts: texts, classes: f.classes, classCount: f.image_embeds.count)
        for (c, images) in f.image_embeds.enumerated() {
            let images32 = images.map { $0.map(Float.init) }
            XCTAssertEqual(Scoring.classify(images32, prototypes: prototypes), f.zero_shot_predictions[c], "class \(c) images")
        }
        XCTAssertGreaterThan(Set(f.zero_shot_predictions.joined()).count, 1, "the fixture must not predict one class for all")
    }

    func testBadRequestsAreRejected() throws {
        let table = try RewardTable(imageEmbeddings: [[[1, 0, 0]], [], [[0, 1, 0], [0, 0, 2]]], scale: 10)
        XCTAssertEqual(try table.rewards(textEmbeddings: [[0, 3, 4]], classes: [2]), [10 * (0.6 + 0.8) / 2])
        XCTAssertThrowsError(try table.rewards(textEmbeddings: [[1, 0, 0]], classes: [3])) {
            XCTAssertEqual($0 as? RewardError, .classOutOfRange(index: 3, position: 0, classCount: 3))
        }
        XCTAssertThrowsError(try table.rewards(textEmbeddings: [[1, 0, 0]], classes: [1])) {
            XCTAssertEqual($0 as? RewardError, .classWithoutImages(classIndex: 1, name: "1"))
        }
        XCTAssertThrowsError(try table.rewards(textEmbeddings: [[1, 0]], classes: [0])) {
            XCTAssertEqual($0 as? RewardError, .dimensionMismatch(what: "text embedding 0", got: 2, expected: 3))
        }
        XCTAssertThrowsError(try table.rewards(textEmbeddings: [[1, 0, 0]], classes: [0, 0])) {
            XCTAssertEqual($0 as? RewardError, .countMismatch(descriptions: 1, classes: 2))
        }
        XCTAssertThrowsError(try RewardTable(imageEmbeddings: [[[1, 0, 0], [1, 0]]], scale: 1)) {
            XCTAssertTrue("\($0)".contains("image embedding 1 of class 0"), "\($0)")
        }
    }
}

final class ScoreTests: XCTestCase {
    var temp: URL!

    override func setUpWithError() throws {
        temp = FileManager.default.temporaryDirectory.appendingPathComponent("ex2-score-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: temp)
    }

    private func fixture() throws -> ScoreFixture { try RewardFixtures.json("score_expected.json", as: ScoreFixture.self) }

    private func write(_ text: String, _ name: String) throws -> URL {
        let url = temp.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    private func descriptionsFile(_ f: ScoreFixture) throws -> URL {
        let data = try JSONSerialization.data(withJSONObject: f.descriptions)
        return try write(String(decoding: data, as: UTF8.self), "descriptions.json")
    }

    private func request(descriptions: URL, stamps: URL? = nil, imagesPerClass: Int = 0, zeroShot: Bool = false,
                         skipUnreadable: Bool = false, cache: Bool = true) throws -> ScoreRequest {
        let root = try RewardFixtures.root
        let folder = stamps ?? root.appendingPathComponent("stamps")
        return ScoreRequest(vlm: root.appendingPathComponent("clip_tiny").path, dataset: "folder:\(folder.path)", dataRoot: nil,
                            descriptions: descriptions,
                            reward: RewardOptions(imagesPerClass: imagesPerClass, cacheDirectory: cache ? temp.appendingPathComponent("cache") : nil,
                                                  skipUnreadable: skipUnreadable),
                            zeroShot: zeroShot)
    }

    private func grouped(_ r: ScoreReport) -> [[Float]] {
        var out = [[Float]](repeating: [], count: r.classNames.count)
        for (e, v) in zip(r.descriptions.entries, r.rewards) { out[e.classIndex].append(v) }
        return out
    }

    private func assertGrouped(_ got: [[Float]], _ want: [[Double]], scale: Double, _ what: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, "\(what): classes", file: file, line: line)
        for (c, (g, w)) in zip(got, want).enumerated() {
            assertRewards(g, w, floor: 1e-5 * scale, "\(what) class \(c)", file: file, line: line)
        }
    }

    func testTokenizerMatchesTransformers() throws {
        let f = try fixture()
        let clip = try CLIPModel.load(spec: try RewardFixtures.root.appendingPathComponent("clip_tiny").path)
        let tok = try XCTUnwrap(clip.tokenizer, "vocab.json + merges.txt next to the weights give a tokenizer")
        XCTAssertEqual(f.descriptions.joined().map { tok.tokenIds($0, contextLength: 77) }, f.token_ids)
    }

    func testScoreMatchesTransformers() throws {
        let f = try fixture()
        let url = try descriptionsFile(f)
        let all = try Scoring.run(try request(descriptions: url, zeroShot: true))
        XCTAssertEqual(all.classNames, f.concepts)
        XCTAssertEqual(all.rewardImageCounts, f.images.map(\.count))
        XCTAssertEqual(Double(all.scale), f.scale, accuracy: 1e-6 * f.scale, "HF CLIP scores with exp(logit_scale)")
        assertGrouped(grouped(all), f.rewards_all_images, scale: f.scale, "all images")

        // Zero-shot, image by image: the folder lists each concept's images in sorted order, as the fixture.
        let z = try XCTUnwrap(all.zeroShot)
        var want: [Int] = [], labels: [Int] = []
        for (c, ps) in f.zero_shot_predictions.enumerated() { want += ps; labels += Array(repeating: c, count: ps.count) }
        XCTAssertEqual(z.labels, labels)
        XCTAssertEqual(z.predictions, want)
        XCTAssertEqual(z.accuracy, f.zero_shot_accuracy, accuracy: 1e-12)

        // The first 2 by sorted path (fruit's "Cherry_Stella.png" sorts before "apple_red.png"); the second
        // run reads the image embeddings back from the cache and must give the same numbers.
        for pass in 0..<2 {
            let two = try Scoring.run(try request(descriptions: url, imagesPerClass: 2))
            XCTAssertEqual(two.rewardImageCounts, [2, 2, 2, 2])
            assertGrouped(grouped(two), f.rewards_first_2_images, scale: f.scale, "first 2 images, pass \(pass)")
        }
        // Averaging over more images must matter, or the test above would not see a wrong N.
        XCTAssertGreaterThan(zip(f.rewards_all_images.joined(), f.rewards_first_2_images.joined()).map { abs($0 - $1) }.max()!, 0.05)
    }

    func testRewardModelForTheTrainer() throws {
        let f = try fixture()
        let root = try RewardFixtures.root
        let clip = try CLIPModel.load(spec: root.appendingPathComponent("clip_tiny").path)
        let dataset = try DatasetLoader.load(name: "folder:\(root.appendingPathComponent("stamps").path)", root: temp)
        let model = try RewardModel(clip: clip, dataset: dataset, options: RewardOptions(imagesPerClass: 256, cacheDirectory: nil))
        var texts: [String] = [], classes: [Int] = [], want: [Double] = []
        for (c, ds) in f.descriptions.enumerated().reversed() {
            texts += ds; classes += Array(repeating: c, count: ds.count); want += f.rewards_all_images[c]
        }
        assertRewards(try model.rewards(descriptions: texts, classes: classes), want, floor: 1e-5 * f.scale, "RewardModel.rewards")
        XCTAssertThrowsError(try model.rewards(descriptions: ["x"], classes: [4])) {
            XCTAssertEqual($0 as? RewardError, .classOutOfRange(index: 4, position: 0, classCount: 4))
        }
    }

    func testJSONLinesInputAndOutputShapes() throws {
        let f = try fixture()
        // Classes by index and by name, out of order, with a blank line and an extra key that is kept.
        var lines: [String] = []
        var expected: [Double] = []
        for (c, ds) in f.descriptions.enumerated().reversed() {
            for (j, d) in ds.enumerated() {
                let cls: Any = j % 2 == 0 ? c : f.concepts[c]
                let obj: [String: Any] = ["class": cls, "description": d, "id": "\(c)-\(j)"]
                lines.append(String(decoding: try JSONSerialization.data(withJSONObject: obj), as: UTF8.self))
                expected.append(f.rewards_all_images[c][j])
            }
            lines.append("")
        }
        let url = try write(lines.joined(separator: "\n"), "descriptions.jsonl")
        let r = try Scoring.run(try request(descriptions: url))
        XCTAssertEqual(r.descriptions.format, .jsonLines)
        assertRewards(r.rewards, expected, floor: 1e-5 * f.scale, "JSON Lines rewards")

        let out = String(decoding: try r.descriptions.render(rewards: r.rewards), as: UTF8.self)
        let objects = try out.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(objects.count, expected.count)
        for (o, w) in zip(objects, expected) {
            XCTAssertEqual(try XCTUnwrap(o["reward"] as? Double), w, accuracy: max(1e-3 * abs(w), 1e-5 * f.scale))
            XCTAssertNotNil(o["id"] as? String, "keys of the input are kept")
        }

        // The list format comes back as a list per class of numbers.
        let listReport = try Scoring.run(try request(descriptions: try descriptionsFile(f)))
        let lists = try JSONSerialization.jsonObject(with: listReport.descriptions.render(rewards: listReport.rewards)) as! [[Double]]
        XCTAssertEqual(lists.map(\.count), f.descriptions.map(\.count))
        for (g, w) in zip(lists.joined(), f.rewards_all_images.joined()) { XCTAssertEqual(g, w, accuracy: max(1e-3 * abs(w), 1e-5 * f.scale)) }
    }

    func testBadDescriptionFiles() throws {
        let f = try fixture()
        func failure(_ text: String?, _ name: String = "bad.json", zeroShot: Bool = false) throws -> String {
            let url = text == nil ? temp.appendingPathComponent("absent.json") : try write(text!, name)
            do {
                _ = try Scoring.run(try request(descriptions: url, zeroShot: zeroShot, cache: false))
                XCTFail("\(name): accepted \(text ?? "a missing file")")
                return ""
            } catch {
                XCTAssertTrue("\(error)".contains(url.path), "the message names the file: \(error)")
                return "\(error)"
            }
        }
        XCTAssertTrue(try failure(nil).contains("cannot read"))
        XCTAssertTrue(try failure("[[\"a\"], [\"b\"]").contains("invalid JSON"))
        XCTAssertTrue(try failure("[[\"a\"], [\"b\"]]").contains("has 2 class lists, but"))
        XCTAssertTrue(try failure("[[\"a\"], [\"b\"], [3], []]").contains("description 0 of class 2 ('fruit') is not a string"))
        XCTAssertTrue(try failure("[[\"a\"], \"b\", [], []]").contains("item 1 (class 'flowers') is not a list"))
        XCTAssertTrue(try failure("\"birds\"").contains("neither a JSON list nor a JSON object"))
        XCTAssertTrue(try failure("[[], [], [], []]").contains("holds no descriptions"))
        XCTAssertTrue(try failure("   \n").contains("holds no descriptions"))
        let jl = "descriptions.jsonl"
        XCTAssertTrue(try failure("{\"class\": 0, \"description\": \"x\"}\n{\"class\": \"dogs\", \"description\": \"y\"}", jl).contains("line 2: no class \"dogs\""))
        XCTAssertTrue(try failure("{\"class\": 4, \"description\": \"x\"}", jl).contains("line 1: no class 4"))
        XCTAssertTrue(try failure("{\"class\": 1.5, \"description\": \"x\"}", jl).contains("not a whole number"))
        XCTAssertTrue(try failure("{\"class\": 1}", jl).contains("line 1 has no \"description\""))
        XCTAssertTrue(try failure("{\"description\": \"x\"}", jl).contains("line 1 has no \"class\""))
        XCTAssertTrue(try failure("{\"class\": 1, \"description\": \"x\"}\n{oops", jl).contains("line 2 is not valid JSON"))

        // Zero-shot needs every class described; the message names the classes without descriptions.
        let partial = try write("[[\"a\"], [], [\"c\"], []]", "partial.json")
        XCTAssertThrowsError(try Scoring.run(try request(descriptions: partial, zeroShot: true, cache: false))) {
            XCTAssertEqual($0 as? ScoreError, .zeroShotNeedsEveryClass(missing: ["flowers", "trees"]))
        }
        _ = f
    }

    /// A broken image among a concept's photos: an error naming it, or (when asked) a skip, with the next
    /// image by sorted path taking its place among the first N.
    func testUnreadableImages() throws {
        let f = try fixture()
        let stamps = temp.appendingPathComponent("stamps")
        try FileManager.default.copyItem(at: try RewardFixtures.root.appendingPathComponent("stamps"), to: stamps)
        let broken = stamps.appendingPathComponent("birds/aaa_broken.png")  // sorts first among the birds
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]).write(to: broken)
        let url = try descriptionsFile(f)

        XCTAssertThrowsError(try Scoring.run(try request(descriptions: url, stamps: stamps, imagesPerClass: 2))) { error in
            guard case .unreadableImage(let path, _)? = error as? ConceptsError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, broken.path)
            XCTAssertTrue("\(error)".contains("skips unreadable images"), "the message says how to go on: \(error)")
        }
        let r = try Scoring.run(try request(descriptions: url, stamps: stamps, imagesPerClass: 2, zeroShot: true, skipUnreadable: true))
        XCTAssertEqual(r.skipped.map(\.url.path), [broken.path], "reported once, though both the reward and zero-shot met it")
        XCTAssertEqual(r.rewardImageCounts, [2, 2, 2, 2])
        assertGrouped(grouped(r), f.rewards_first_2_images, scale: f.scale, "first 2 readable images")
        XCTAssertEqual(r.zeroShot?.labels.count, f.images.joined().count, "the broken image is not classified")
    }
}

/// With SigLIP the reward is the mean of the model's own logits (scale x cosine + bias) over a class's
/// images: checked against transformers' logits_per_image for the tiny SigLIP of the CLIP tests.
final class SigLIPRewardTests: XCTestCase {
    func testRewardIsTheMeanOfSigLIPsLogits() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CLIPTests/Fixtures")
        struct Expected: Decodable {
            struct Text: Decodable { let text: String }
            struct Tiny: Decodable { let texts: [Text]; let logits_per_image: [[Double]]; let logit_bias: Double }
            let tiny: Tiny
        }
        let e = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixtures.appendingPathComponent("siglip/siglip_expected.json"))).tiny
        let images = ["chelsea_225x150_444_progressive.jpg", "coffee_333x517_420.jpg", "rocket_301x211_422.jpg"]
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("ex2-siglip-reward-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: root) }
        // Class "animal" holds images 0 and 1, class "rocket" image 2.
        for (i, file) in images.enumerated() {
            let dir = root.appendingPathComponent(i < 2 ? "animal" : "rocket")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            try fm.copyItem(at: fixtures.appendingPathComponent("images/\(file)"), to: dir.appendingPathComponent(file))
        }
        let vlm = try VLMLoader.load(spec: fixtures.appendingPathComponent("siglip/tiny").path)
        XCTAssertEqual(Double(vlm.logitBias), e.logit_bias, accuracy: 1e-6)
        let dataset = try DatasetLoader.load(name: "folder:\(root.path)", root: root)
        XCTAssertEqual(dataset.classNames, ["animal", "rocket"])
        let model = try RewardModel(clip: vlm, dataset: dataset, options: RewardOptions(imagesPerClass: 0, cacheDirectory: nil))
        let texts = e.texts.map(\.text)
        for c in 0..<2 {
            let got = try model.rewards(descriptions: texts, classes: Array(repeating: c, count: texts.count))
            for (j, g) in got.enumerated() {
                let rows = c == 0 ? [0, 1] : [2]
                let want = rows.map { e.logits_per_image[$0][j] }.reduce(0, +) / Double(rows.count)
                XCTAssertEqual(Double(g), want, accuracy: 2e-3 * max(1, abs(want)), "class \(c), text \(j)")
            }
        }
    }
}
