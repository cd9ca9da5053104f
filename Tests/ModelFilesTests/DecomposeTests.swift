// decomposeRow must reproduce dequantizeRow (itself equal to gguf-py bit for bit) exactly:
// Float(q) * scale + offset, computed as the engine's kernels compute it, on random blocks of every
// decomposable type.
import ModelFiles
import Tensors
import XCTest

final class DecomposeTests: XCTestCase {
    func testReconstructionIsBitExact() {
        var rng = RandomStream(seed: 99)
        // Offsets of the fp16 scale fields, which must hold finite values.
        let halfFields: [GGMLType: [Int]] = [.q4_0: [0], .q4_1: [0, 2], .q5_0: [0], .q5_1: [0, 2], .q8_0: [0],
                                             .q4_K: [0, 2], .q6_K: [208]]
        for (type, fields) in halfFields {
            XCTAssertTrue(canDecompose(type))
            let blocks = 8, count = blocks * type.blockSize
            var bytes = [UInt8](repeating: 0, count: blocks * type.typeSize)
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
            for b in 0..<blocks {
                for f in fields {
                    let h = floatToHalf((rng.nextFloat() * 2 - 1) * 0.05)
                    bytes[b * type.typeSize + f] = UInt8(h & 0xFF)
                    bytes[b * type.typeSize + f + 1] = UInt8(h >> 8)
                }
            }
            var want = [Float](repeating: 0, count: count)
            var q = [Int8](repeating: 0, count: count)
            var scales = [Float](repeating: 0, count: count / 16), offsets = scales
            bytes.withUnsafeBytes { raw in
                want.withUnsafeMutableBufferPointer { dequantizeRow(type, raw.baseAddress!, $0.baseAddress!, count: count) }
                q.withUnsafeMutableBufferPointer { qp in scales.withUnsafeMutableBufferPointer { sp in offsets.withUnsafeMutableBufferPointer { op in
                    decomposeRow(type, raw.baseAddress!, q: qp.baseAddress!, scales: sp.baseAddress!, offsets: op.baseAddress!, count: count)
                } } }
            }
            var mismatches = 0
            for i in 0..<count {
                let w = Float(q[i]) * scales[i / 16] + offsets[i / 16]
                if w.bitPattern != want[i].bitPattern && !(w == 0 && want[i] == 0) { mismatches += 1 }
            }
            XCTAssertEqual(mismatches, 0, "\(type.name): \(mismatches) of \(count) weights differ from dequantizeRow")
        }
        XCTAssertFalse(canDecompose(.q5_K))
    }
}
