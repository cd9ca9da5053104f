// Deterministic fuzzing of the GGUF and safetensors readers: hundreds of random byte mutations,
// overwritten length fields and truncations of small valid files (written by gguf-py and the
// safetensors library). Whatever the damage, a reader must either throw a ModelFileError or open the
// file and serve every tensor without crashing; damage confined to tensor data must still open with
// the same tensor table.

import Foundation
import XCTest
@testable import ModelFiles

/// SplitMix64: small, seedable, identical on every platform.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

final class FuzzTests: XCTestCase {
    private static let interesting: [UInt64] = [0, 1, 3, 4, 5, 31, 32, 255, 256, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF,
                                                1 << 32, 1 << 40, UInt64(Int64.max), UInt64.max, UInt64.max - 7]

    /// One random mutation of `base`; `range` limits where bytes are changed.
    private func mutate(_ base: Data, _ rng: inout SplitMix64, in range: Range<Int>? = nil) -> Data {
        var d = base
        let r = range ?? 0..<d.count
        switch range == nil ? rng.below(5) : 0 {
        case 0:  // flip a few bytes
            for _ in 0..<(1 + rng.below(8)) {
                let i = r.lowerBound + rng.below(r.count)
                d[i] = UInt8(truncatingIfNeeded: rng.next())
            }
        case 1:  // truncate
            d = d.prefix(rng.below(d.count))
        case 2:  // overwrite 8 bytes with a boundary value (hits length and count fields)
            let i = rng.below(d.count - 8)
            let v = Self.interesting[rng.below(Self.interesting.count)]
            withUnsafeBytes(of: v.littleEndian) { d.replaceSubrange(i..<(i + 8), with: $0) }
        case 3:  // overwrite 4 bytes (type ids, dimension counts, versions)
            let i = rng.below(d.count - 4)
            let v = UInt32(truncatingIfNeeded: Self.interesting[rng.below(Self.interesting.count)])
            withUnsafeBytes(of: v.littleEndian) { d.replaceSubrange(i..<(i + 4), with: $0) }
        default:  // delete or duplicate a span
            let i = rng.below(d.count), n = 1 + rng.below(16)
            let j = min(d.count, i + n)
            if rng.below(2) == 0 { d.removeSubrange(i..<j) } else { d.insert(contentsOf: d[i..<j], at: i) }
        }
        return d
    }

    /// Opens and reads everything; returns nil when the reader rejected the bytes.
    private func exerciseGGUF(_ d: Data) throws -> GGUFFile? {
        let f: GGUFFile
        do { f = try GGUFFile(data: d, url: URL(fileURLWithPath: "/fuzz.gguf")) } catch is ModelFileError { return nil }
        for key in f.metadata.keys {
            _ = (f.string(key), f.int(key), f.double(key), f.bool(key), f.strings(key), f.ints(key), f.floats(metadata: key))
        }
        for t in f.tensors {
            XCTAssertLessThanOrEqual(t.offset + t.byteCount, d.count, t.name)
            if t.type.canDequantize { XCTAssertEqual(try f.floats(t.name).count, t.elementCount) }
        }
        return f
    }

    private func exerciseSafetensors(_ d: Data) throws -> SafetensorsFile? {
        let f: SafetensorsFile
        do { f = try SafetensorsFile(data: d, url: URL(fileURLWithPath: "/fuzz.safetensors")) } catch is ModelFileError { return nil }
        for n in f.names { XCTAssertEqual(try f.floats(n).count, f.tensors[n]!.elementCount) }
        return f
    }

    func testGGUFSurvivesMutations() throws {
        let base = try Data(contentsOf: TestFiles.fixture("tiny.gguf"))
        let reference = try XCTUnwrap(try exerciseGGUF(base))
        var rng = SplitMix64(state: 20_240_401)
        var opened = 0, rejected = 0
        for _ in 0..<1500 {
            if try exerciseGGUF(mutate(base, &rng)) != nil { opened += 1 } else { rejected += 1 }
        }
        // Every truncation point, too.
        for n in 0..<base.count where n % 3 == 0 || n < 64 {
            if try exerciseGGUF(base.prefix(n)) != nil { opened += 1 } else { rejected += 1 }
        }
        XCTAssertGreaterThan(rejected, 500, "mutations should mostly be caught")
        XCTAssertGreaterThan(opened, 10, "some mutations (inside strings or data) leave a valid file")

        // Damage inside the data section changes values only.
        let data = reference.dataOffset..<base.count
        for _ in 0..<300 {
            let f = try XCTUnwrap(try exerciseGGUF(mutate(base, &rng, in: data)), "data-only damage must still open")
            XCTAssertEqual(f.tensors, reference.tensors)
            XCTAssertEqual(f.metadata, reference.metadata)
        }
    }

    func testSafetensorsSurvivesMutations() throws {
        let base = try Data(contentsOf: TestFiles.fixture("tiny.safetensors"))
        let reference = try XCTUnwrap(try exerciseSafetensors(base))
        var rng = SplitMix64(state: 77)
        let headerEnd = 8 + Int(base.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var rejected = 0
        for i in 0..<1500 {
            // Half the mutations aim at the JSON header, where the parser has the most paths.
            let d = i % 2 == 0 ? mutate(base, &rng) : mutate(base, &rng, in: 8..<headerEnd)
            if try exerciseSafetensors(d) == nil { rejected += 1 }
        }
        for n in 0..<base.count where try exerciseSafetensors(base.prefix(n)) == nil { rejected += 1 }
        XCTAssertGreaterThan(rejected, 1000)
        for _ in 0..<300 {
            let f = try XCTUnwrap(try exerciseSafetensors(mutate(base, &rng, in: headerEnd..<base.count)), "data-only damage must still open")
            XCTAssertEqual(f.tensors, reference.tensors)
            XCTAssertEqual(f.metadata, reference.metadata)
        }
    }

    func testStrictJSONOnRandomText() {
        var rng = SplitMix64(state: 5)
        let alphabet = Array(#"{}[]":,0123456789-+.eEtrufalsn \u\"ab"#.utf8)
        for _ in 0..<3000 {
            let bytes = (0..<rng.below(40)).map { _ in alphabet[rng.below(alphabet.count)] }
            _ = bytes.withUnsafeBytes { try? StrictJSONParser.parse($0) }
        }
        let deep = Array(String(repeating: "[", count: 100_000).utf8)
        XCTAssertThrowsError(try deep.withUnsafeBytes { try StrictJSONParser.parse($0) })
    }
}
