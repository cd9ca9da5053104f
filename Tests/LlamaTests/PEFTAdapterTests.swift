// PEFT adapter directories (PEFTAdapter) and the LoRA parameter state (LoRAState): a lossless round trip
// of the adapter Python PEFT saved for the tiny Llama fixture, files Python can read back (config keys,
// tensor names, metadata), an atomic save over an old directory, every hostile input the reader must
// refuse with an AdapterError naming the file (and tensor), a seeded byte-mutation fuzz that must never
// crash, and the initialisation of a fresh state.
import Foundation
import ModelFiles
import Tensors
import XCTest
@testable import Llama

final class PEFTAdapterTests: XCTestCase {
    typealias Tensor = (name: String, dtype: DType, shape: [Int], data: Data)

    // MARK: fixtures and helpers

    var train: URL { TestPaths.fixtures.appendingPathComponent("train") }
    var fixtureAdapter: URL { train.appendingPathComponent("llama/adapter") }
    var fixtureHead: URL { train.appendingPathComponent("llama/value_head.safetensors") }

    func llamaConfig() throws -> DecoderConfig {
        try DecoderConfig(configJSON: train.appendingPathComponent("tiny-llama-gqa/model/config.json"))
    }

    func gemmaConfig() throws -> DecoderConfig {
        try DecoderConfig(configJSON: TestPaths.fixtures.appendingPathComponent("tiny-gemma3/config.json"))
    }

    /// A fresh empty directory, removed when the test ends.
    func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("PEFTAdapterTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A copy of the fixture adapter directory (config + weights), optionally with the value head inside it.
    func copyOfFixture(withHead: Bool = false) throws -> URL {
        let dir = try tempDir().appendingPathComponent("adapter")
        try FileManager.default.copyItem(at: fixtureAdapter, to: dir)
        if withHead { try FileManager.default.copyItem(at: fixtureHead, to: dir.appendingPathComponent(PEFTAdapter.valueHeadFile)) }
        return dir
    }

    func readTensors(_ url: URL) throws -> [Tensor] {
        let f = try SafetensorsFile(url: url)
        return try f.names.map { n in
            let t = f.tensors[n]!
            return (n, t.dtype, t.shape, try f.withData(n) { Data($0) })
        }
    }

    func rewriteTensors(_ url: URL, _ edit: (inout [Tensor]) throws -> Void) throws {
        var t = try readTensors(url)
        try edit(&t)
        try writeSafetensors(to: url, tensors: t, metadata: ["format": "pt"])
    }

    /// Replaces element `index` of F32 tensor `name` with `value`.
    func setElement(_ url: URL, _ name: String, _ index: Int, _ value: Float) throws {
        try rewriteTensors(url) { ts in
            let i = try XCTUnwrap(ts.firstIndex { $0.name == name }, "fixture has no \(name)")
            XCTAssertEqual(ts[i].dtype, .f32)
            var v = floatsOf(ts[i].data)
            v[index] = value
            ts[i].data = dataOf(v)
        }
    }

    func rewriteConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent(PEFTAdapter.configFile)
        var json = try loadJSON(url)
        edit(&json)
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(to: url)
    }

    func floatsOf(_ d: Data) -> [Float] {
        d.withUnsafeBytes { raw in (0..<(d.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }

    func dataOf(_ v: [Float]) -> Data { v.withUnsafeBytes { Data($0) } }

    func bits(_ s: LoRAState) -> [UInt32] { (0..<s.count).map { s.parameters[$0].bitPattern } }

    func values(_ s: LoRAState, _ offset: Int, _ count: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: s.parameters + offset, count: count))
    }

    /// Asserts `body` throws an AdapterError whose description contains every string of `needles`.
    func assertRefused<T>(_ what: String, _ needles: [String], file: StaticString = #filePath, line: UInt = #line,
                          _ body: () throws -> T) {
        do {
            _ = try body()
            XCTFail("\(what): was accepted, expected an AdapterError", file: file, line: line)
        } catch let e as AdapterError {
            for n in needles {
                XCTAssertTrue(e.description.contains(n), "\(what): error '\(e.description)' does not mention '\(n)'", file: file, line: line)
            }
        } catch {
            XCTFail("\(what): threw \(type(of: error)) '\(error)', expected an AdapterError", file: file, line: line)
        }
    }

    /// The PEFT tensor names of an adapter on every module of every layer.
    func expectedNames(layers: Int) -> Set<String> {
        var s = Set<String>()
        for l in 0..<layers {
            for t in LoRATarget.allCases {
                s.insert(PEFTAdapter.tensorName(layer: l, t, b: false))
                s.insert(PEFTAdapter.tensorName(layer: l, t, b: true))
            }
        }
        return s
    }

    // MARK: 1. round trip and the files written

    func testRoundTripIsBitExactAndWritesWhatPEFTWrites() throws {
        let c = try llamaConfig()
        let a = try PEFTAdapter.load(fixtureAdapter, model: c, valueHead: fixtureHead)
        XCTAssertEqual(a.config, LoRAConfig(rank: 4, alpha: 8, dropout: 0, targets: LoRATarget.allCases, useRSLoRA: false))
        XCTAssertEqual(a.slots.count, c.layers * 7)
        let H = c.hiddenSize, r = 4
        let vo = try XCTUnwrap(a.valueHeadOffset)

        // Loading put the file's numbers in the right slots (and B is the fixture's non-zero B).
        let src = try SafetensorsFile(url: fixtureAdapter.appendingPathComponent(PEFTAdapter.weightsFile))
        for s in a.slots {
            let an = PEFTAdapter.tensorName(layer: s.layer, s.target, b: false), bn = PEFTAdapter.tensorName(layer: s.layer, s.target, b: true)
            XCTAssertEqual(values(a, s.a, r * s.inFeatures), try src.floats(an), an)
            XCTAssertEqual(values(a, s.b, r * s.outFeatures), try src.floats(bn), bn)
            XCTAssertTrue(values(a, s.b, r * s.outFeatures).contains { $0 != 0 }, "\(bn) is all zero in the fixture")
        }
        let head = try SafetensorsFile(url: fixtureHead)
        XCTAssertEqual(values(a, vo, H), try head.floats("summary.weight"))
        XCTAssertEqual(values(a, vo + H, 1), try head.floats("summary.bias"))

        let root = try tempDir()
        let out = root.appendingPathComponent("saved")
        try PEFTAdapter.save(a, to: out, baseModel: "tiny-llama-gqa")
        let b = try PEFTAdapter.load(out, model: c)  // the value head is found beside the adapter
        XCTAssertEqual(b.config, a.config)
        XCTAssertEqual(b.count, a.count)
        XCTAssertEqual(b.valueHeadOffset, a.valueHeadOffset)
        XCTAssertEqual(bits(b), bits(a), "parameters changed in the round trip")

        // adapter_config.json: what PEFT needs to load it back.
        let json = try loadJSON(out.appendingPathComponent(PEFTAdapter.configFile))
        XCTAssertEqual(json["peft_type"] as? String, "LORA")
        XCTAssertEqual(json["task_type"] as? String, "CAUSAL_LM")
        XCTAssertEqual(json["base_model_name_or_path"] as? String, "tiny-llama-gqa")
        XCTAssertEqual((json["r"] as? NSNumber)?.intValue, 4)
        XCTAssertEqual((json["lora_alpha"] as? NSNumber)?.doubleValue, 8)
        XCTAssertEqual(Set(json["target_modules"] as? [String] ?? []), Set(LoRATarget.allCases.map(\.rawValue)))
        XCTAssertEqual((json["target_modules"] as? [String])?.count, 7)
        XCTAssertEqual(json["bias"] as? String, "none")
        XCTAssertEqual(json["use_dora"] as? Bool, false)
        XCTAssertEqual(json["use_rslora"] as? Bool, false)
        XCTAssertEqual(json["fan_in_fan_out"] as? Bool, false)

        // adapter_model.safetensors: PEFT's names and shapes, metadata format=pt.
        let w = try SafetensorsFile(url: out.appendingPathComponent(PEFTAdapter.weightsFile))
        XCTAssertEqual(w.metadata, ["format": "pt"])
        XCTAssertEqual(Set(w.names), expectedNames(layers: c.layers))
        XCTAssertEqual(w.names.count, 2 * 7 * c.layers)
        for s in a.slots {
            let an = PEFTAdapter.tensorName(layer: s.layer, s.target, b: false), bn = PEFTAdapter.tensorName(layer: s.layer, s.target, b: true)
            XCTAssertEqual(w.tensors[an]?.shape, [r, s.inFeatures], an)
            XCTAssertEqual(w.tensors[bn]?.shape, [s.outFeatures, r], bn)
            XCTAssertEqual(w.tensors[an]?.dtype, .f32)
        }
        XCTAssertEqual(w.tensors["base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"]?.shape, [c.kvHeads * c.headDim, r])
        XCTAssertEqual(w.tensors["base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"]?.shape, [r, c.intermediateSize])
        // The writer lays files out as the Python library does, so the file is the one PEFT saved.
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(PEFTAdapter.weightsFile)),
                       try Data(contentsOf: fixtureAdapter.appendingPathComponent(PEFTAdapter.weightsFile)),
                       "re-saved adapter_model.safetensors differs from PEFT's bytes")

        // value_head.safetensors: TRL's names and shapes.
        let vh = try SafetensorsFile(url: out.appendingPathComponent(PEFTAdapter.valueHeadFile))
        XCTAssertEqual(Set(vh.names), ["summary.weight", "summary.bias"])
        XCTAssertEqual(vh.tensors["summary.weight"]?.shape, [1, H])
        XCTAssertEqual(vh.tensors["summary.bias"]?.shape, [1])
        XCTAssertEqual(vh.metadata["format"], "pt")

        // Saving over the directory replaces it: stale files go, the new numbers are there, no temporaries stay.
        try Data("stale".utf8).write(to: out.appendingPathComponent("stale.txt"))
        try FileManager.default.createDirectory(at: out.appendingPathComponent("checkpoint-1"), withIntermediateDirectories: true)
        a.parameters[a.slots[3].b + 2] = 0.125
        try PEFTAdapter.save(a, to: out, baseModel: "tiny-llama-gqa")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path), ["saved"], "temporary directories left behind")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: out.path)),
                       [PEFTAdapter.configFile, PEFTAdapter.weightsFile, PEFTAdapter.valueHeadFile])
        let b2 = try PEFTAdapter.load(out, model: c)
        XCTAssertEqual(b2.parameters[b2.slots[3].b + 2], 0.125)
        XCTAssertEqual(bits(b2), bits(a))

        // A state without a value head saved over it leaves no value head behind.
        let plain = LoRAState(model: c, config: LoRAConfig(rank: 2, alpha: 4, dropout: 0, targets: [.q, .v]), valueHead: false, seed: 9)
        try PEFTAdapter.save(plain, to: out, baseModel: "tiny-llama-gqa")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent(PEFTAdapter.valueHeadFile).path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path), ["saved"])
        let p2 = try PEFTAdapter.load(out, model: c)
        XCTAssertNil(p2.valueHeadOffset)
        XCTAssertEqual(p2.config, plain.config)
        XCTAssertEqual(bits(p2), bits(plain))
        XCTAssertEqual(Set(try SafetensorsFile(url: out.appendingPathComponent(PEFTAdapter.weightsFile)).names).count, 2 * 2 * c.layers)

        // A directory whose parents do not exist yet is created.
        let nested = root.appendingPathComponent("deep/er/adapter")
        try PEFTAdapter.save(plain, to: nested, baseModel: "x")
        XCTAssertEqual(bits(try PEFTAdapter.load(nested, model: c)), bits(plain))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: nested.deletingLastPathComponent().path), ["adapter"])
    }

    /// Config keys PEFT writes that the engine does not read (and future ones) are ignored.
    func testUnknownConfigKeysAreIgnored() throws {
        let c = try llamaConfig()
        let reference = try PEFTAdapter.load(fixtureAdapter, model: c)
        let dir = try copyOfFixture()
        try rewriteConfig(dir) { j in
            j["some_future_option"] = ["nested": [1, 2, 3], "flag": true] as [String: Any]
            j["lora_bias"] = false
            j["eva_config"] = NSNull()
            j["exclude_modules"] = NSNull()
            j["layers_pattern"] = "layers"
            j["peft_version"] = "0.99.0"
        }
        let s = try PEFTAdapter.load(dir, model: c)
        XCTAssertEqual(s.config, reference.config)
        XCTAssertEqual(bits(s), bits(reference))
    }

    // MARK: 2. hostile inputs

    func testBadConfigsAreRefusedNamingTheFile() throws {
        let c = try llamaConfig()
        let cases: [(String, [String], (inout [String: Any]) -> Void)] = [
            ("r = 0", ["r must be a positive rank", "got 0"], { $0["r"] = 0 }),
            ("r < 0", ["r must be a positive rank", "got -3"], { $0["r"] = -3 }),
            ("r missing", ["r must be a positive rank", "none"], { _ = $0.removeValue(forKey: "r") }),
            ("r a string", ["not a valid adapter config", "field 'r'"], { $0["r"] = "4" }),
            ("r too large", ["r must be a positive rank", "1000000"], { $0["r"] = 1_000_000 }),
            ("peft_type IA3", ["IA3", "only LORA"], { $0["peft_type"] = "IA3" }),
            ("use_dora", ["use_dora", "DoRA"], { $0["use_dora"] = true }),
            ("bias all", ["bias \"all\""], { $0["bias"] = "all" }),
            ("bias lora_only", ["bias \"lora_only\""], { $0["bias"] = "lora_only" }),
            ("layers_to_transform list", ["layers_to_transform"], { $0["layers_to_transform"] = [0] }),
            ("layers_to_transform int", ["layers_to_transform"], { $0["layers_to_transform"] = 1 }),
            ("rank_pattern", ["rank_pattern"], { $0["rank_pattern"] = ["q_proj": 8] }),
            ("alpha_pattern", ["alpha_pattern"], { $0["alpha_pattern"] = ["model.layers.0.self_attn.q_proj": 16] }),
            ("modules_to_save", ["modules_to_save"], { $0["modules_to_save"] = ["lm_head"] }),
            ("fan_in_fan_out", ["fan_in_fan_out"], { $0["fan_in_fan_out"] = true }),
            ("lm_head target", ["lm_head", "not a decoder projection"], { $0["target_modules"] = ["q_proj", "lm_head"] }),
            ("embed target", ["embed_tokens"], { $0["target_modules"] = ["embed_tokens", "v_proj"] }),
            ("regex target", ["pattern", ".*\\.(q|v)_proj"], { $0["target_modules"] = ".*\\.(q|v)_proj" }),
            ("all-linear", ["all-linear"], { $0["target_modules"] = "all-linear" }),
            ("no targets", ["target_modules is missing"], { _ = $0.removeValue(forKey: "target_modules") }),
            ("empty targets", ["target_modules is empty"], { $0["target_modules"] = [String]() }),
            ("targets not strings", ["not a valid adapter config"], { $0["target_modules"] = [1, 2] }),
            ("alpha 0", ["lora_alpha must be positive"], { $0["lora_alpha"] = 0 }),
            ("dropout 1", ["lora_dropout"], { $0["lora_dropout"] = 1.0 }),
            ("dropout < 0", ["lora_dropout"], { $0["lora_dropout"] = -0.1 }),
        ]
        for (what, needles, edit) in cases {
            let dir = try copyOfFixture()
            try rewriteConfig(dir, edit)
            let file = dir.appendingPathComponent(PEFTAdapter.configFile).path
            assertRefused(what, [file] + needles) { try PEFTAdapter.load(dir, model: c) }
            assertRefused(what + " (readConfig)", [file] + needles) { try PEFTAdapter.readConfig(dir) }
        }

        // Not JSON, not an object, empty.
        for (what, bytes) in [("not JSON", "{ \"r\": 4, this is not json"), ("JSON array", "[1, 2, 3]"), ("empty", ""),
                              ("binary", "\u{0}\u{1}\u{2}\u{FF}")] {
            let dir = try copyOfFixture()
            let url = dir.appendingPathComponent(PEFTAdapter.configFile)
            try Data(bytes.utf8).write(to: url)
            assertRefused(what, [url.path, "not a valid adapter config"]) { try PEFTAdapter.load(dir, model: c) }
        }

        // No config at all: not an adapter directory.
        let dir = try copyOfFixture()
        try FileManager.default.removeItem(at: dir.appendingPathComponent(PEFTAdapter.configFile))
        assertRefused("no config", [dir.path, "no adapter_config.json", "not a PEFT adapter directory"]) { try PEFTAdapter.load(dir, model: c) }
        let nowhere = try tempDir().appendingPathComponent("does-not-exist")
        assertRefused("no directory", [nowhere.path, "no adapter_config.json"]) { try PEFTAdapter.load(nowhere, model: c) }
    }

    func testMissingWeightFileIsRefused() throws {
        let c = try llamaConfig()
        let dir = try copyOfFixture()
        try FileManager.default.removeItem(at: dir.appendingPathComponent(PEFTAdapter.weightsFile))
        assertRefused("no weights", [dir.path, "no adapter_model.safetensors"]) { try PEFTAdapter.load(dir, model: c) }
        try Data([0x80, 0x02, 0x7D, 0x71]).write(to: dir.appendingPathComponent("adapter_model.bin"))
        assertRefused("only .bin", [dir.path, "adapter_model.bin", "pickle", "safetensors"]) { try PEFTAdapter.load(dir, model: c) }
    }

    func testBadTensorsAreRefusedNamingFileAndTensor() throws {
        let c = try llamaConfig()
        let qA0 = PEFTAdapter.tensorName(layer: 0, .q, b: false)
        let kA0 = PEFTAdapter.tensorName(layer: 0, .k, b: false)
        let downB1 = PEFTAdapter.tensorName(layer: 1, .down, b: true)
        let upB1 = PEFTAdapter.tensorName(layer: 1, .up, b: true)
        let vA1 = PEFTAdapter.tensorName(layer: 1, .v, b: false)
        func weights(_ dir: URL) -> URL { dir.appendingPathComponent(PEFTAdapter.weightsFile) }

        var dir = try copyOfFixture()
        try rewriteTensors(weights(dir)) { $0.removeAll { $0.name == downB1 } }
        assertRefused("missing tensor", [weights(dir).path, downB1, "missing"]) { try PEFTAdapter.load(dir, model: c) }

        dir = try copyOfFixture()
        try rewriteTensors(weights(dir)) { ts in
            let i = ts.firstIndex { $0.name == kA0 }!
            XCTAssertEqual(ts[i].shape, [4, 48])
            ts[i].shape = [8, 24]  // same bytes, wrong shape
        }
        assertRefused("wrong shape", [weights(dir).path, kA0, "[8, 24]", "[4, 48]", "another model"]) { try PEFTAdapter.load(dir, model: c) }

        dir = try copyOfFixture()
        try rewriteTensors(weights(dir)) { ts in
            let i = ts.firstIndex { $0.name == upB1 }!
            ts[i].shape = [80, 3]
            ts[i].data = ts[i].data.prefix(80 * 3 * 4)
        }
        assertRefused("lower rank B", [weights(dir).path, upB1, "[80, 3]"]) { try PEFTAdapter.load(dir, model: c) }

        for extra in ["base_model.model.lm_head.lora_A.weight", "base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight",
                      "base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias"] {
            dir = try copyOfFixture()
            try rewriteTensors(weights(dir)) { $0.append((extra, .f32, [4, 48], Data(count: 4 * 48 * 4))) }
            assertRefused("extra tensor \(extra)", [weights(dir).path, extra, "not used"]) { try PEFTAdapter.load(dir, model: c) }
        }

        for (what, value, index, shown) in [("NaN", Float.nan, 5, "nan"), ("+inf", Float.infinity, 0, "inf"), ("-inf", -Float.infinity, 191, "-inf")] {
            dir = try copyOfFixture()
            try setElement(weights(dir), vA1, index, value)
            assertRefused(what, [weights(dir).path, vA1, "non-finite", shown, "element \(index)"]) { try PEFTAdapter.load(dir, model: c) }
        }
        dir = try copyOfFixture()
        try setElement(weights(dir), downB1, 7, .nan)
        assertRefused("NaN in B", [weights(dir).path, downB1, "non-finite"]) { try PEFTAdapter.load(dir, model: c) }

        // The config and the tensors disagree: rank, and target modules.
        dir = try copyOfFixture()
        try rewriteConfig(dir) { $0["r"] = 8 }
        assertRefused("r 8 for rank-4 tensors", [weights(dir).path, "lora_A.weight", "[4, "]) { try PEFTAdapter.load(dir, model: c) }
        dir = try copyOfFixture()
        try rewriteConfig(dir) { $0["target_modules"] = ["q_proj", "v_proj"] }
        assertRefused("fewer targets than tensors", [weights(dir).path, "not used", "q_proj", "v_proj"]) { try PEFTAdapter.load(dir, model: c) }

        // A half-precision adapter is fine (converted), and loads the rounded numbers.
        dir = try copyOfFixture()
        var want: [Float] = []
        try rewriteTensors(weights(dir)) { ts in
            let i = ts.firstIndex { $0.name == qA0 }!
            let v = floatsOf(ts[i].data)
            let h = v.map { UInt16($0.bitPattern >> 16) }  // bf16 by truncation
            want = h.map { Float(bitPattern: UInt32($0) << 16) }
            ts[i] = (qA0, .bf16, ts[i].shape, h.withUnsafeBytes { Data($0) })
        }
        let s = try PEFTAdapter.load(dir, model: c)
        let slot = try XCTUnwrap(s.slot(layer: 0, .q))
        XCTAssertEqual(values(s, slot.a, 4 * slot.inFeatures), want)
    }

    func testCorruptSafetensorsThrowsInsteadOfCrashing() throws {
        let c = try llamaConfig()
        let original = try Data(contentsOf: fixtureAdapter.appendingPathComponent(PEFTAdapter.weightsFile))
        let headerLength = original.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        var rng = RandomStream(seed: 99)
        func lengthPrefix(_ n: UInt64) -> Data { withUnsafeBytes(of: n.littleEndian) { Data($0) } }
        let cases: [(String, Data)] = [
            ("empty", Data()),
            ("3 bytes", Data([1, 2, 3])),
            ("random bytes", Data((0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) })),
            ("random after a plausible length", lengthPrefix(64) + Data((0..<200).map { _ in UInt8(truncatingIfNeeded: rng.next()) })),
            ("truncated header", original.prefix(8 + headerLength / 2)),
            ("header only", original.prefix(8 + headerLength)),
            ("truncated data", original.prefix(original.count - 4)),
            ("one byte too many", original + Data([0])),
            ("huge header length", lengthPrefix(1 << 60) + original.dropFirst(8)),
            ("header length past the end", lengthPrefix(UInt64(original.count)) + original.dropFirst(8)),
            ("header not an object", lengthPrefix(8) + Data("[1,2,3] ".utf8)),
        ]
        for (what, bytes) in cases {
            let dir = try copyOfFixture()
            let url = dir.appendingPathComponent(PEFTAdapter.weightsFile)
            try bytes.write(to: url)
            assertRefused(what, [url.path, "malformed file"]) { try PEFTAdapter.load(dir, model: c) }
        }
        // A directory where the weights file should be.
        let dir = try copyOfFixture()
        let url = dir.appendingPathComponent(PEFTAdapter.weightsFile)
        try FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
        assertRefused("weights file is a directory", [url.path, "cannot open"]) { try PEFTAdapter.load(dir, model: c) }
    }

    func testAdapterOfAnotherModelIsRefused() throws {
        let llama = try llamaConfig(), gemma = try gemmaConfig()
        XCTAssertNotEqual(llama.hiddenSize, gemma.hiddenSize)
        let gemmaAdapter = train.appendingPathComponent("gemma3/adapter")
        _ = try PEFTAdapter.load(gemmaAdapter, model: gemma)  // fine on its own model
        assertRefused("gemma3 adapter on llama", [gemmaAdapter.appendingPathComponent(PEFTAdapter.weightsFile).path,
                                                  "base_model.model.model.layers.0.", "another model"]) {
            try PEFTAdapter.load(gemmaAdapter, model: llama)
        }
        assertRefused("llama adapter on gemma3", [fixtureAdapter.appendingPathComponent(PEFTAdapter.weightsFile).path,
                                                  "base_model.model.model.layers.0.", "another model"]) {
            try PEFTAdapter.load(fixtureAdapter, model: gemma)
        }
        // Same widths, fewer layers: layer 1's tensors are left over.
        var oneLayer = llama
        oneLayer.layers = 1
        oneLayer.slidingLayers = Array(llama.slidingLayers.prefix(1))
        assertRefused("llama adapter on a 1-layer llama", [fixtureAdapter.appendingPathComponent(PEFTAdapter.weightsFile).path,
                                                           "base_model.model.model.layers.1.", "not used"]) {
            try PEFTAdapter.load(fixtureAdapter, model: oneLayer)
        }
        // More layers: layer 2's tensors are missing.
        var threeLayers = llama
        threeLayers.layers = 3
        threeLayers.slidingLayers = llama.slidingLayers + [false]
        assertRefused("llama adapter on a 3-layer llama", ["base_model.model.model.layers.2.", "missing"]) {
            try PEFTAdapter.load(fixtureAdapter, model: threeLayers)
        }
        // The gemma3 value head (hidden 32) against the llama model (hidden 48).
        assertRefused("gemma3 value head on llama", ["value_head.safetensors", "summary.weight", "[1, 32]", "[1, 48]"]) {
            try PEFTAdapter.load(fixtureAdapter, model: llama, valueHead: train.appendingPathComponent("gemma3/value_head.safetensors"))
        }
    }

    func testBadValueHeadsAreRefused() throws {
        let c = try llamaConfig()
        let H = c.hiddenSize
        func headFile(_ dir: URL) -> URL { dir.appendingPathComponent(PEFTAdapter.valueHeadFile) }
        // In the directory (found by itself) and given explicitly.
        XCTAssertNotNil(try PEFTAdapter.load(try copyOfFixture(withHead: true), model: c).valueHeadOffset)
        XCTAssertNil(try PEFTAdapter.load(try copyOfFixture(), model: c).valueHeadOffset)

        let cases: [(String, [String], (inout [Tensor]) -> Void)] = [
            ("weight too short", ["summary.weight", "[1, 47]", "[1, \(H)]"], { ts in
                let i = ts.firstIndex { $0.name == "summary.weight" }!
                ts[i].shape = [1, H - 1]; ts[i].data = ts[i].data.prefix((H - 1) * 4)
            }),
            ("weight flat", ["summary.weight", "[\(H)]"], { ts in ts[ts.firstIndex { $0.name == "summary.weight" }!].shape = [H] }),
            ("weight transposed", ["summary.weight", "[\(H), 1]"], { ts in ts[ts.firstIndex { $0.name == "summary.weight" }!].shape = [H, 1] }),
            ("bias scalar", ["summary.bias", "[]"], { ts in ts[ts.firstIndex { $0.name == "summary.bias" }!].shape = [] }),
            ("bias missing", ["summary.bias", "missing"], { $0.removeAll { $0.name == "summary.bias" } }),
            ("weight missing", ["summary.weight", "missing"], { $0.removeAll { $0.name == "summary.weight" } }),
            ("extra tensor", ["v_head.extra", "not part of a value head"], { $0.append(("v_head.extra", .f32, [1], Data(count: 4))) }),
            ("NaN bias", ["summary.bias", "non-finite"], { ts in
                ts[ts.firstIndex { $0.name == "summary.bias" }!].data = withUnsafeBytes(of: Float.nan) { Data($0) }
            }),
            ("inf weight", ["summary.weight", "non-finite", "element 3"], { ts in
                let i = ts.firstIndex { $0.name == "summary.weight" }!
                var v = self.floatsOf(ts[i].data); v[3] = .infinity; ts[i].data = self.dataOf(v)
            }),
        ]
        for (what, needles, edit) in cases {
            // Beside the adapter...
            let dir = try copyOfFixture(withHead: true)
            try rewriteTensors(headFile(dir), edit)
            assertRefused(what, [headFile(dir).path] + needles) { try PEFTAdapter.load(dir, model: c) }
            // ...and passed explicitly for an adapter without one.
            let plain = try copyOfFixture()
            assertRefused(what + " (explicit)", [headFile(dir).path] + needles) { try PEFTAdapter.load(plain, model: c, valueHead: headFile(dir)) }
        }

        let dir = try copyOfFixture(withHead: true)
        try Data([7, 7, 7]).write(to: headFile(dir))
        assertRefused("corrupt value head", [headFile(dir).path, "too short"]) { try PEFTAdapter.load(dir, model: c) }
        let missing = dir.appendingPathComponent("nope.safetensors")
        assertRefused("missing explicit value head", [missing.path, "not found"]) { try PEFTAdapter.load(dir, model: c, valueHead: missing) }
    }

    // MARK: 3. mutation fuzz

    /// One random mutation: flip bits, insert bytes, or truncate; half the time aimed at the first `hot` bytes.
    func mutate(_ bytes: inout [UInt8], hot: Int, _ rng: inout RandomStream) {
        func position(_ n: Int) -> Int {
            let span = rng.next() % 2 == 0 ? min(hot, n) : n
            return Int(rng.next() % UInt64(max(1, span)))
        }
        switch rng.next() % 3 {
        case 0:
            for _ in 0..<(1 + Int(rng.next() % 4)) where !bytes.isEmpty {
                bytes[position(bytes.count)] ^= UInt8(1) << UInt8(rng.next() % 8)
            }
        case 1:
            let at = position(bytes.count + 1)
            bytes.insert(contentsOf: (0..<(1 + Int(rng.next() % 8))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: min(at, bytes.count))
        default:
            bytes.removeLast(bytes.count - position(bytes.count))
        }
    }

    func testMutatedAdapterFilesLoadOrThrowButNeverCrash() throws {
        let c = try llamaConfig()
        var rng = RandomStream(seed: 0x5EED_ADA9)
        for file in [PEFTAdapter.weightsFile, PEFTAdapter.configFile] {
            let original = [UInt8](try Data(contentsOf: fixtureAdapter.appendingPathComponent(file)))
            let hot = file == PEFTAdapter.weightsFile
                ? original.withUnsafeBytes { 8 + Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) } : original.count
            let dir = try copyOfFixture()
            let url = dir.appendingPathComponent(file)
            var loaded = 0, refused = 0, identical = 0
            for i in 0..<200 {
                var bytes = original
                mutate(&bytes, hot: hot, &rng)
                if bytes == original { identical += 1 }
                try Data(bytes).write(to: url)
                do {
                    let s = try PEFTAdapter.load(dir, model: c)
                    XCTAssertEqual(s.slots.count, c.layers * 7, "\(file) mutation \(i)")
                    for j in 0..<s.count where !s.parameters[j].isFinite { XCTFail("\(file) mutation \(i): non-finite parameter \(j) loaded"); break }
                    loaded += 1
                } catch let e as AdapterError {
                    XCTAssertTrue(e.description.contains(dir.path), "\(file) mutation \(i): '\(e)' names no file of the adapter")
                    refused += 1
                } catch {
                    XCTFail("\(file) mutation \(i): threw \(type(of: error)) '\(error)', expected an AdapterError")
                    refused += 1
                }
            }
            print("fuzz \(file): 200 mutations, \(loaded) loaded, \(refused) refused (\(identical) left the bytes unchanged)")
            XCTAssertEqual(loaded + refused, 200)
            XCTAssertGreaterThan(refused, 0, "\(file): no mutation was refused")
            if file == PEFTAdapter.weightsFile { XCTAssertGreaterThan(loaded, 0, "\(file): every mutation was refused") }
        }
    }

    // MARK: 4. a fresh state

    func testFreshStateInitialisation() throws {
        let c = try llamaConfig()
        let cfg = LoRAConfig(rank: 4, alpha: 8, dropout: 0.05, targets: LoRATarget.allCases)
        let s = LoRAState(model: c, config: cfg, valueHead: true, seed: 1234)
        let r = cfg.rank, H = c.hiddenSize
        XCTAssertEqual(s.slots.count, c.layers * 7)

        // Layout: A then B per slot, back to back, then the value head; nothing overlaps or is left over.
        var offset = 0
        for slot in s.slots {
            XCTAssertEqual(slot.a, offset)
            XCTAssertEqual(slot.b, slot.a + r * slot.inFeatures)
            let f = slot.target.features(c)
            XCTAssertEqual(slot.inFeatures, f.in); XCTAssertEqual(slot.outFeatures, f.out)
            XCTAssertEqual(s.slot(layer: slot.layer, slot.target)?.a, slot.a)
            offset = slot.b + r * slot.outFeatures
        }
        XCTAssertEqual(s.valueHeadOffset, offset)
        XCTAssertEqual(s.count, offset + H + 1)

        for slot in s.slots {
            let bound = 1 / Float(Double(slot.inFeatures).squareRoot())
            let a = values(s, slot.a, r * slot.inFeatures)
            XCTAssertTrue(a.allSatisfy { $0.isFinite && abs($0) <= bound }, "A of \(slot.target) layer \(slot.layer) leaves ±\(bound)")
            XCTAssertGreaterThan(Set(a).count, a.count * 9 / 10, "A of \(slot.target) layer \(slot.layer) repeats values")
            // Uniform over the whole interval, not a narrower one: both ends are reached within half the bound.
            XCTAssertGreaterThan(a.max()!, bound / 2)
            XCTAssertLessThan(a.min()!, -bound / 2)
            XCTAssertTrue(values(s, slot.b, r * slot.outFeatures).allSatisfy { $0 == 0 }, "B of \(slot.target) layer \(slot.layer) is not zero")
        }
        // Modules of the same shape get different draws.
        let k0 = try XCTUnwrap(s.slot(layer: 0, .k)), v0 = try XCTUnwrap(s.slot(layer: 0, .v)), k1 = try XCTUnwrap(s.slot(layer: 1, .k))
        XCTAssertNotEqual(values(s, k0.a, r * H), values(s, v0.a, r * H))
        XCTAssertNotEqual(values(s, k0.a, r * H), values(s, k1.a, r * H))

        let vo = try XCTUnwrap(s.valueHeadOffset)
        let head = values(s, vo, H + 1), hb = 1 / Float(Double(H).squareRoot())
        XCTAssertTrue(head.allSatisfy { $0.isFinite && abs($0) <= hb }, "value head leaves ±\(hb)")
        XCTAssertGreaterThan(Set(head).count, H * 9 / 10)
        XCTAssertNotEqual(head[H], 0, "value head bias left at zero")
        XCTAssertTrue((0..<s.count).allSatisfy { s.gradients[$0] == 0 }, "gradients start non-zero")

        // Same seed, same state; another seed, another state (B and layout unchanged).
        let same = LoRAState(model: c, config: cfg, valueHead: true, seed: 1234)
        XCTAssertEqual(bits(same), bits(s))
        let other = LoRAState(model: c, config: cfg, valueHead: true, seed: 1235)
        XCTAssertEqual(other.count, s.count)
        XCTAssertNotEqual(bits(other), bits(s))
        for slot in s.slots {
            XCTAssertNotEqual(values(other, slot.a, r * slot.inFeatures), values(s, slot.a, r * slot.inFeatures), "A of \(slot.target) layer \(slot.layer) ignores the seed")
            XCTAssertTrue(values(other, slot.b, r * slot.outFeatures).allSatisfy { $0 == 0 })
        }
        XCTAssertNotEqual(values(other, vo, H + 1), head, "value head ignores the seed")

        // Without a value head: no offset, H + 1 fewer parameters; PEFT's default targets.
        let noHead = LoRAState(model: c, config: LoRAConfig(), valueHead: false, seed: 1234)
        XCTAssertNil(noHead.valueHeadOffset)
        XCTAssertEqual(noHead.slots.map(\.target), Array(repeating: [LoRATarget.q, .v], count: c.layers).flatMap { $0 })
        XCTAssertEqual(noHead.count, c.layers * 16 * ((H + c.heads * c.headDim) + (H + c.kvHeads * c.headDim)))
        XCTAssertNil(noHead.slot(layer: 0, .k))
    }
}
