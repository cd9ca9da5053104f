// Our own data-parallel loop. It splits work into one contiguous chunk per core so that each worker
// touches its own cache lines; BLAS calls happen outside these loops, so the two never compete.
import Dispatch
import Foundation

public enum Parallel {
    /// Cores we use; EX2_THREADS overrides (1 makes every loop serial, useful when profiling).
    public static let cores: Int = {
        if let s = ProcessInfo.processInfo.environment["EX2_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()
}

/// Runs body(range) over [0, count) in at most `Parallel.cores` contiguous chunks. Work below `minPerChunk`
/// items per chunk stays on the calling thread: dispatch costs microseconds.
@inline(__always)
public func parallelChunks(_ count: Int, minPerChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    let chunks = min(Parallel.cores, max(1, count / max(1, minPerChunk)))
    if chunks <= 1 { body(0..<count); return }
    withoutActuallyEscaping(body) { body in
        // Safe: each chunk gets a disjoint range and concurrentPerform returns only after all chunks ran.
        nonisolated(unsafe) let b = body
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if lo < hi { b(lo..<hi) }
        }
    }
}

/// Runs body(i) for every i in [0, count), spread over the cores.
@inline(__always)
public func parallelFor(_ count: Int, minPerChunk: Int = 1, _ body: (Int) -> Void) {
    parallelChunks(count, minPerChunk: minPerChunk) { r in for i in r { body(i) } }
}
