// Adam with gradient accumulation and global-norm clipping against torch.optim.Adam and
// torch.nn.utils.clip_grad_norm_ (fixture train/adam.* from scripts/fixtures/train_fixtures.py): three
// steps of two accumulated micro-batches over three tensors laid end to end in one flat buffer.
import Foundation
import ModelFiles
import Tensors
import XCTest

final class OptimizerTests: XCTestCase {
    func testAdamWithAccumulationAndClippingMatchesTorch() throws {
        let dir = TestPaths.fixtures.appendingPathComponent("train")
        let meta = try loadJSON(dir.appendingPathComponent("adam.json"))
        let st = try SafetensorsFile(url: dir.appendingPathComponent("adam.safetensors"))
        let shapes = (meta["shapes"] as! [Any]).map(ints)
        let sizes = shapes.map { $0.reduce(1, *) }
        let total = sizes.reduce(0, +)
        let steps = (meta["steps"] as! NSNumber).intValue, micro = (meta["micro_batches"] as! NSNumber).intValue
        let maxNorm = (meta["max_norm"] as! NSNumber).doubleValue, lr = (meta["lr"] as! NSNumber).doubleValue
        func flat(_ name: (Int) -> String) throws -> [Float] { try (0..<shapes.count).flatMap { try st.floats(name($0)) } }

        for clip in [true, false] {
            var params = try flat { "init.\($0)" }
            var grads = [Float](repeating: 0, count: total)
            let adam = Adam(count: total, learningRate: lr)
            let norms = floats(meta[clip ? "total_norms" : "noclip_total_norms"])
            for s in 0..<steps {
                for i in grads.indices { grads[i] = 0 }
                for mb in 0..<micro {
                    let g = try flat { "grad.step\(s).micro\(mb).\($0)" }
                    for i in grads.indices { grads[i] += g[i] }
                }
                if clip {
                    let n = grads.withUnsafeMutableBufferPointer { GradientClipping.clip($0.baseAddress!, count: total, maxNorm: maxNorm) }
                    XCTAssertEqual(n, Double(norms[s]), accuracy: 1e-5 * Double(norms[s]), "step \(s): gradient norm")
                } else {
                    let n = grads.withUnsafeBufferPointer { GradientClipping.norm($0.baseAddress!, count: total) }
                    XCTAssertEqual(n, Double(norms[s]), accuracy: 1e-5 * Double(norms[s]))
                }
                params.withUnsafeMutableBufferPointer { p in grads.withUnsafeBufferPointer { adam.update(p.baseAddress!, gradients: $0.baseAddress!) } }
                let want = try flat { (clip ? "" : "noclip.") + "after.step\(s).\($0)" }
                let worst = zip(params, want).map { abs($0 - $1) }.max()!
                // Adam's first steps move every parameter by about lr, so compare at the scale of the change.
                XCTAssertLessThan(worst, 1e-6, "clip \(clip) step \(s): worst |param - torch| = \(worst)")
                XCTAssertNotEqual(params, try flat { "init.\($0)" })
            }
            XCTAssertEqual(adam.step, steps)
        }
    }

    func testClippingLeavesSmallGradientsAlone() {
        var g: [Float] = [0.3, -0.4]  // norm 0.5
        let n = g.withUnsafeMutableBufferPointer { GradientClipping.clip($0.baseAddress!, count: 2, maxNorm: 1) }
        XCTAssertEqual(n, 0.5, accuracy: 1e-7)
        XCTAssertEqual(g, [0.3, -0.4])
        let m = g.withUnsafeMutableBufferPointer { GradientClipping.clip($0.baseAddress!, count: 2, maxNorm: 0.25) }
        XCTAssertEqual(m, 0.5, accuracy: 1e-7)
        XCTAssertEqual(g[0], 0.15, accuracy: 1e-6); XCTAssertEqual(g[1], -0.2, accuracy: 1e-6)
    }
}
