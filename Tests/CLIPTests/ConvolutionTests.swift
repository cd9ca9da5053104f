// The convolution kernels of the image towers against direct definitions computed here in Double: Winograd
// F(2x2, 3x3) (odd, non-square maps, channel counts that leave SIMD tails, several images) and the im2col path it
// replaces, and the padded average pool with count_include_pad=False. The towers' parity with open_clip and
// transformers covers them end to end; these pin down the edge tiles and tails a given model may not reach.
import Layers
import Tensors
import XCTest

final class ConvolutionTests: XCTestCase {
    private struct Rng {
        var s: UInt64
        mutating func next() -> Float {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2001 - 1000) / 1000
        }
    }

    /// out[img][y][x][o] = b[o] + sum w[o][c][ky][kx] in[img][y + ky - 1][x + kx - 1][c], zero outside (Double).
    private func direct3x3(_ x: [Float], _ w: [Float], _ b: [Float], images: Int, h: Int, wd: Int, cin: Int, cout: Int) -> [Double] {
        var out = [Double](repeating: 0, count: images * h * wd * cout)
        for img in 0..<images { for y in 0..<h { for xx in 0..<wd { for o in 0..<cout {
            var acc = Double(b[o])
            for ky in 0..<3 { for kx in 0..<3 {
                let sy = y + ky - 1, sx = xx + kx - 1
                guard sy >= 0, sy < h, sx >= 0, sx < wd else { continue }
                for c in 0..<cin { acc += Double(w[((o * cin + c) * 3 + ky) * 3 + kx]) * Double(x[((img * h + sy) * wd + sx) * cin + c]) }
            } }
            out[((img * h + y) * wd + xx) * cout + o] = acc
        } } } }
        return out
    }

    private func run(_ conv: Conv2D, _ x: [Float], images: Int, h: Int, w: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: images * h * w * conv.outChannels)
        var cols = [Float](repeating: .nan, count: conv.columnCount(height: h, width: w, images: images))
        x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { ob in cols.withUnsafeMutableBufferPointer { cb in
            conv.forward(ob.baseAddress!, xb.baseAddress!, height: h, width: w, images: images, columns: cb.baseAddress!)
        } } }
        return out
    }

    func testWinogradMatchesTheDirectConvolution() {
        var rng = Rng(s: 20261203)
        let pad = ConvGeometry(kernel: 3, stride: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        for (images, h, w, cin, cout) in [(2, 7, 9, 19, 21), (1, 8, 8, 16, 16), (3, 5, 4, 24, 17), (1, 1, 3, 16, 32)] {
            let x = (0..<(images * h * w * cin)).map { _ in rng.next() }
            let wt = (0..<(cout * cin * 9)).map { _ in rng.next() * 0.3 }
            let b = (0..<cout).map { _ in rng.next() }
            let wino = Conv2D(weight: wt, bias: b, inChannels: cin, outChannels: cout, geometry: pad)
            let im2col = Conv2D(weight: wt, bias: b, inChannels: cin, outChannels: cout, geometry: pad, winograd: false)
            XCTAssertTrue(wino.usesWinograd)
            XCTAssertFalse(im2col.usesWinograd)
            let want = direct3x3(x, wt, b, images: images, h: h, wd: w, cin: cin, cout: cout)
            let scale = want.map(abs).max()!
            for (name, got) in [("winograd", run(wino, x, images: images, h: h, w: w)), ("im2col", run(im2col, x, images: images, h: h, w: w))] {
                let worst = zip(got, want).map { abs(Double($0) - $1) }.max()!
                XCTAssertLessThan(worst, 1e-5 * scale, "\(name) \(images)x\(h)x\(w) \(cin)->\(cout): worst error \(worst) of \(scale)")
            }
        }
    }

    /// Small channel counts and other geometries keep the im2col path.
    func testWinogradIsOnlyUsedWhereItApplies() {
        let w16 = [Float](repeating: 0.1, count: 16 * 16 * 9)
        let strided = ConvGeometry(kernel: 3, stride: 2, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        XCTAssertFalse(Conv2D(weight: w16, bias: nil, inChannels: 16, outChannels: 16, geometry: strided).usesWinograd)
        XCTAssertFalse(Conv2D(weight: [Float](repeating: 0.1, count: 8 * 16 * 9), bias: nil, inChannels: 8, outChannels: 16, geometry: .same(kernel: 3)).usesWinograd)
        XCTAssertTrue(Conv2D(weight: w16, bias: nil, inChannels: 16, outChannels: 16, geometry: .same(kernel: 3)).usesWinograd)
    }

    /// AvgPool2d(3, stride 2, padding 1, count_include_pad=False): border windows divide by the taps inside.
    func testPaddedAveragePoolDividesByTheTapsInside() {
        var rng = Rng(s: 7)
        let (h, w, c) = (7, 6, 5)
        let x = (0..<(h * w * c)).map { _ in rng.next() }
        let (oh, ow) = (4, 3)
        var out = [Float](repeating: .nan, count: oh * ow * c)
        x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { ob in
            averagePool(ob.baseAddress!, xb.baseAddress!, height: h, width: w, channels: c, kernel: 3, stride: 2, padding: 1)
        } }
        for oy in 0..<oh { for ox in 0..<ow { for ch in 0..<c {
            var sum = 0.0, count = 0
            for y in (2 * oy - 1)...(2 * oy + 1) where y >= 0 && y < h {
                for xx in (2 * ox - 1)...(2 * ox + 1) where xx >= 0 && xx < w { sum += Double(x[(y * w + xx) * c + ch]); count += 1 }
            }
            XCTAssertEqual(Double(out[(oy * ow + ox) * c + ch]), sum / Double(count), accuracy: 1e-6, "(\(oy), \(ox), \(ch))")
        } } }
    }
}
