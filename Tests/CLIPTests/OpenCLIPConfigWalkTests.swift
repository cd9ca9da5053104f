// Every open_clip model config ex2 ships either loads or is refused naming the feature it lacks. A config
// that loads must ask for exactly the tensors open_clip's own model has (names and shapes from
// scripts/fixtures/openclip_config_walk.py, open_clip on the meta device): the loader is run on
// placeholder weights of those shapes, so a missing, misnamed, misshaped or left-over tensor fails here.
import Foundation
import ModelFiles
import XCTest
@testable import CLIP

final class OpenCLIPConfigWalkTests: XCTestCase {
    private struct File: Decodable {
        struct Model: Decodable {
            struct Entry: Decodable {
                let name: String
                let shape: [Int]
                init(from decoder: Decoder) throws {
                    var c = try decoder.unkeyedContainer()
                    name = try c.decode(String.self)
                    shape = try c.decode([Int].self)
                }
            }
            let tensors: [Entry]?
            let error: String?
        }
        let models: [String: Model]
    }

    /// EX2_WALK_ALL=1 builds every config: all 116 that load passed on 2026-12-03 (10 min 49 s, 18 GB peak on 2 cores).
    /// EX2_WALK_ALL=PREFIX builds, whatever their size, only the configs whose name starts with PREFIX (ViTamin-XL).
    static let buildLimit = ProcessInfo.processInfo.environment["EX2_WALK_ALL"] == "1" ? Int.max : 500_000_000
    static let buildAllPrefix = ProcessInfo.processInfo.environment["EX2_WALK_ALL"].flatMap { $0 == "1" || $0.isEmpty ? nil : $0 }

    func testEveryShippedConfigLoadsOrIsRefusedByName() throws {
        let gz = try Data(contentsOf: try Fixtures.url("openclip_walk.json.gz"))
        let file = try JSONDecoder().decode(File.self, from: Data(try Gzip.decompress([UInt8](gz))))
        let names = OpenCLIPRegistry.modelNames
        XCTAssertEqual(names.count, 144, "open_clip 3.3 ships 144 model configs")
        XCTAssertEqual(Set(names), Set(file.models.keys), "the shipped configs and open_clip's list differ")
        var loaded: [String] = [], large: [String] = [], refused: [String: String] = [:]
        for name in names {
            let arch: CLIPArchitecture
            do {
                arch = try OpenCLIPRegistry.modelConfig(name).architecture(name: name)
            } catch let e as CLIPError {
                guard case .unsupportedArchitecture = e else { XCTFail("\(name): \(e) is not an 'unsupported' refusal"); continue }
                // The reason names the config key or tower that is missing.
                XCTAssertTrue(["vision_cfg.", "text_cfg.", "model_cfg.", "timm"].contains { e.reason.contains($0) }, "\(name): \(e.reason)")
                refused[name] = e.reason
                continue
            }
            guard let tensors = file.models[name]?.tensors else {
                XCTFail("\(name): ex2 builds it, but open_clip could not (\(file.models[name]?.error ?? "?"))")
                continue
            }
            // Placeholder weights cost what real ones do; the largest towers (ViT-H/g/bigG, ConvNeXt-XXL) share their
            // block code and naming with the smaller ones checked here, so they are decoded but not built.
            let params = tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
            if params > Self.buildLimit, !(Self.buildAllPrefix.map { name.hasPrefix($0) } ?? false) { large.append(name); continue }
            let source = ShapeOnlyWeights(shapes: Dictionary(tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a }))
            do {
                _ = try CLIPWeightNames.load(arch, from: source, file: name)
                loaded.append(name)
            } catch {
                XCTFail("\(name): \(error)")
            }
        }
        print("open_clip config walk: \(loaded.count + large.count) of \(names.count) supported (\(loaded.count) built on placeholder weights of open_clip's tensor names and shapes, \(large.count) larger than \(Self.buildLimit / 1_000_000)M parameters decoded only: \(large.joined(separator: ", "))); \(refused.count) refused")
        XCTAssertEqual(loaded.count + large.count + refused.count, names.count)
        // Floors, so a regression that quietly refuses configs fails (raise them as families arrive).
        XCTAssertGreaterThanOrEqual(loaded.count + large.count, 116)
        XCTAssertGreaterThanOrEqual(loaded.count, 66)
    }
}
