// The full-size ViT-B/32 checkpoint of CLIPModelTests.testFullSizeViTB32, regenerated at test time.
//
// Every weight is a hash of (tensor name, element index), the generator scripts/fixtures/clip_fixtures.py
// (B32_GENERATOR, b32_rule, b32_values) used to fill transformers' CLIPModel before computing
// b32_expected.json. The 600 MB checkpoint is therefore never stored anywhere: CI writes it into a temporary
// directory from the names, shapes and configs in b32_expected.json, checks each tensor's fingerprint
// (the sum of its float32 bit patterns) against the one Python recorded, and runs the same comparisons.
import Foundation
import ModelFiles
import Tensors
import XCTest

enum DeterministicB32 {
    struct Tensor: Decodable {
        let name: String
        let shape: [Int]
        let bits_sum: String  // decimal UInt64
    }

    private struct Checkpoint: Decodable {
        let generator: String
        let tensors: [Tensor]
    }

    private struct File: Decodable {
        struct B32: Decodable { let checkpoint: Checkpoint }
        let b32: B32
    }

    static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    @inline(__always) static func splitmix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// (center, scale) of one tensor; a nil scale means every element is `center`. Same as `b32_rule`.
    static func rule(_ name: String, _ shape: [Int]) -> (center: Double, scale: Double?) {
        if name == "logit_scale" { return (2.6592, nil) }
        if name.contains("norm") { return name.hasSuffix(".weight") ? (1, 0.1) : (0, 0.05) }
        if name.hasSuffix(".bias") { return (0, 0.02) }
        if ["class_embedding", "position_embedding", "token_embedding"].contains(where: { name.contains($0) }) {
            return (0, 0.05)
        }
        let fanIn = shape.dropFirst().reduce(1, *)
        // A float32 significand keeps scale * v exact in Double (24 + 25 bits), whatever the compiler fuses.
        return (0, Double(Float(1.0 / Double(fanIn).squareRoot())))
    }

    /// The tensor's float32 values (little-endian bytes) and the sum of their bit patterns mod 2^64.
    static func values(_ name: String, _ shape: [Int],
                       rule: (String, [Int]) -> (center: Double, scale: Double?) = rule) -> (data: Data, bitsSum: UInt64) {
        let n = shape.reduce(1, *)
        let (center, scale) = rule(name, shape)
        let seed = fnv1a64(name)
        var data = Data(count: n * 4)
        let chunk = 1 << 20
        let chunks = (n + chunk - 1) / chunk
        let sums = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(chunks, 1))
        defer { sums.deallocate() }
        data.withUnsafeMutableBytes { raw in
            let out = raw.bindMemory(to: UInt32.self)
            nonisolated(unsafe) let outBase = out.baseAddress!
            nonisolated(unsafe) let sumBase = sums.baseAddress!
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                var s: UInt64 = 0
                for i in c * chunk ..< min(n, (c + 1) * chunk) {
                    let value: Float
                    if let scale {
                        let u = Double(splitmix64(seed &+ UInt64(i)) >> 40)
                        let v = (2 * u + 1 - 16_777_216) * 0x1p-24
                        value = Float(center + scale * v)
                    } else {
                        value = Float(center)
                    }
                    let bits = value.bitPattern
                    outBase[i] = bits.littleEndian
                    s &+= UInt64(bits)
                }
                sumBase[c] = s
            }
        }
        return (data, sums.prefix(chunks).reduce(0, &+))
    }

    /// Writes `configs` (file name -> JSON object) and model.safetensors with every tensor of `tensors` made by
    /// `rule`, failing the test if a tensor's fingerprint differs from the one the fixture script recorded.
    static func write(to directory: URL, tensors list: [Tensor], configs: [String: Any], generator: String,
                      rule: (String, [Int]) -> (center: Double, scale: Double?),
                      file: StaticString = #filePath, line: UInt = #line) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (fileName, object) in configs {
            try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                .write(to: directory.appendingPathComponent(fileName))
        }
        var tensors: [(name: String, dtype: DType, shape: [Int], data: Data)] = []
        var mismatched: [String] = []
        for t in list {
            let (data, sum) = values(t.name, t.shape, rule: rule)
            if UInt64(t.bits_sum) != sum { mismatched.append(t.name) }
            tensors.append((t.name, .f32, t.shape, data))
        }
        XCTAssertTrue(mismatched.isEmpty, """
            \(mismatched.count) of \(list.count) regenerated tensors differ from those the fixture script \
            computed with (first: \(mismatched.prefix(3).joined(separator: ", "))); generator: \(generator)
            """, file: file, line: line)
        try writeSafetensors(to: directory.appendingPathComponent("model.safetensors"), tensors: tensors,
                             metadata: ["format": "pt"])
    }

    /// Writes config.json, preprocessor_config.json and model.safetensors into `directory`, failing the
    /// test if any tensor differs from what the fixture script generated.
    static func write(to directory: URL, expectation: String = "b32_expected.json",
                      file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try Fixtures.url(expectation)
        let raw = try Data(contentsOf: url)
        let checkpoint = try JSONDecoder().decode(File.self, from: raw).b32.checkpoint
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: raw) as? [String: Any])
        let b32 = try XCTUnwrap(json["b32"] as? [String: Any])
        let ckpt = try XCTUnwrap(b32["checkpoint"] as? [String: Any])
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (key, fileName) in [("config", "config.json"), ("preprocessor_config", "preprocessor_config.json")] {
            let object = try XCTUnwrap(ckpt[key], "\(expectation) lacks b32.checkpoint.\(key)")
            try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                .write(to: directory.appendingPathComponent(fileName))
        }
        var tensors: [(name: String, dtype: DType, shape: [Int], data: Data)] = []
        var mismatched: [String] = []
        for t in checkpoint.tensors {
            let (data, sum) = values(t.name, t.shape)
            if UInt64(t.bits_sum) != sum { mismatched.append(t.name) }
            tensors.append((t.name, .f32, t.shape, data))
        }
        XCTAssertTrue(mismatched.isEmpty, """
            \(mismatched.count) of \(checkpoint.tensors.count) regenerated tensors differ from those transformers \
            computed with (first: \(mismatched.prefix(3).joined(separator: ", "))); generator: \(checkpoint.generator)
            """, file: file, line: line)
        try writeSafetensors(to: directory.appendingPathComponent("model.safetensors"), tensors: tensors,
                             metadata: ["format": "pt"])
    }
}
