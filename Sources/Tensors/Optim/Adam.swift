// Adam as torch.optim.Adam computes it (single-tensor path, no weight decay, no amsgrad), over one flat
// buffer of parameters with its gradients, plus torch.nn.utils.clip_grad_norm_. Gradient accumulation is
// the caller's: backward passes add into the gradient buffer until `step` consumes it.
//
// torch's update, per element, in Float with the step's scalars computed in Double:
//   m = m + (1 - b1) (g - m)            (exp_avg.lerp_(grad, 1 - b1))
//   v = v b2 + (1 - b2) g g             (exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2))
//   p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
import Foundation

public final class Adam: @unchecked Sendable {  // reason: owner of the moment buffers; one trainer at a time
    public var learningRate: Double
    public let beta1: Double, beta2: Double, eps: Double
    public let count: Int
    /// Steps taken so far (torch's state["step"]).
    public private(set) var step = 0
    public let m: UnsafeMutablePointer<Float>
    public let v: UnsafeMutablePointer<Float>

    public init(count: Int, learningRate: Double, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        self.count = count; self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        m = .allocate(capacity: max(1, count)); m.initialize(repeating: 0, count: max(1, count))
        v = .allocate(capacity: max(1, count)); v.initialize(repeating: 0, count: max(1, count))
    }
    deinit { m.deallocate(); v.deallocate() }

    /// One update of `parameters` from `gradients` (both `count` long).
    public func update(_ parameters: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>) {
        step += 1
        let t = Double(step)
        let stepSize = Float(learningRate / (1 - pow(beta1, t)))
        let bc2 = Float((1 - pow(beta2, t)).squareRoot())
        let w1 = Float(1 - beta1), b2 = Float(beta2), w2 = Float(1 - beta2), e = Float(eps)
        let m = self.m, v = self.v
        parallelChunks(count, minPerChunk: 16384) { r in
            for i in r {
                let gi = g[i]
                m[i] = m[i] + w1 * (gi - m[i])
                v[i] = v[i] * b2 + w2 * gi * gi
                parameters[i] = parameters[i] + (-stepSize) * (m[i] / (v[i].squareRoot() / bc2 + e))
            }
        }
    }

    /// Restores a saved state (moments and step count), for resuming.
    public func restore(step: Int, m mSaved: [Float], v vSaved: [Float]) {
        precondition(mSaved.count == count && vSaved.count == count, "Adam state of another size")
        self.step = step
        m.update(from: mSaved, count: count); v.update(from: vSaved, count: count)
    }
}

public enum GradientClipping {
    /// The global L2 norm of `count` gradients (accumulated in Double).
    public static func norm(_ g: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0
        var i = 0
        while i < count {
            let n = min(4096, count - i)
            total += Double(Vec.sumOfSquares(g + i, n))
            i += n
        }
        return total.squareRoot()
    }

    /// torch.nn.utils.clip_grad_norm_: scales the gradients by min(1, maxNorm / (norm + 1e-6)) and returns
    /// the norm before clipping.
    @discardableResult
    public static func clip(_ g: UnsafeMutablePointer<Float>, count: Int, maxNorm: Double) -> Double {
        let total = norm(g, count: count)
        let coef = min(1, maxNorm / (total + 1e-6))
        if coef < 1 { Vec.scale(g, Float(coef), count) }
        return total
    }
}
