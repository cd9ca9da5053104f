// Our own data-parallel loop. It splits work into one contiguous chunk per core so that each worker
// touches its own cache lines; BLAS calls happen outside these loops, so the two never compete.
//
// The workers are our own threads that spin for a moment after each loop before they sleep. A decoding
// step runs a few hundred loops of 0.1 to 1 ms each; with Dispatch's pool (woken per loop) the kernel
// often woke the worker on the caller's own core, and on some machines the two halves then ran one after
// the other: SmolLM2 batch-32 decoding ran at single-core speed. A worker that is still spinning is
// already running on the other core and picks the next loop up within a microsecond.
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public enum Parallel {
    /// Cores we use; EX2_THREADS overrides (1 makes every loop serial, useful when profiling).
    public static let cores: Int = {
        if let s = ProcessInfo.processInfo.environment["EX2_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()
}

/// Runs body(range) over [0, count) in at most `Parallel.cores` contiguous chunks. Work below `minPerChunk`
/// items per chunk stays on the calling thread. A loop started inside another (or while another thread's
/// loop runs) runs serially on its caller.
/// `chunksPerCore` > 1 cuts the work finer; the cores take the pieces as they finish, so a core slowed
/// for a moment (another process, a cold cache) leaves less of a loop for the others to wait on. Only for
/// bodies whose results do not depend on where the pieces begin (GEMM panels).
@inline(__always)
public func parallelChunks(_ count: Int, minPerChunk: Int = 1, chunksPerCore: Int = 1, _ body: (Range<Int>) -> Void) {
    let chunks = min(Parallel.cores * max(1, chunksPerCore), max(1, count / max(1, minPerChunk)))
    if chunks <= 1 { body(0..<count); return }
    let ran = WorkerPool.shared.run(chunks) { c in
        let lo = count * c / chunks, hi = count * (c + 1) / chunks
        if lo < hi { body(lo..<hi) }
    }
    if !ran { body(0..<count) }
}

/// Runs body(i) for every i in [0, count), spread over the cores.
@inline(__always)
public func parallelFor(_ count: Int, minPerChunk: Int = 1, _ body: (Int) -> Void) {
    parallelChunks(count, minPerChunk: minPerChunk) { r in for i in r { body(i) } }
}

/// `Parallel.cores - 1` worker threads plus the caller share each loop's chunks.
final class WorkerPool: @unchecked Sendable {  // reason: job fields are published by `generation` (release/acquire)
    static let shared = WorkerPool(workers: Parallel.cores - 1)

    /// How long an idle worker spins before it sleeps on the condition.
    static let spinNanoseconds: UInt64 = 3_000_000

    private let workers: Int
    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let nextChunk = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)  // workers done with the current generation
    private let sleepers = Atomic<Int>(0)
    private let parked = Atomic<Bool>(false)
    private let condition = NSCondition()
    // Written by the caller before `generation` is bumped; read by workers after they see the new value.
    private var job: ((Int) -> Void)?
    private var chunkCount = 0

    private init(workers: Int) {
        self.workers = max(0, workers)
        for i in 0..<self.workers {
            let t = Thread { [unowned self] in self.workerLoop() }
            t.name = "ex2-worker-\(i)"
            t.stackSize = 8 << 20
            t.start()
        }
    }

    /// Runs body(c) for c in 0..<chunks on the caller and the workers; false (nothing ran) when the pool
    /// is already running a loop.
    func run(_ chunks: Int, _ body: (Int) -> Void) -> Bool {
        guard workers > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        parked.store(false, ordering: .relaxed)
        withoutActuallyEscaping(body) { body in
            job = body
            chunkCount = chunks
            nextChunk.store(0, ordering: .relaxed)
            finished.store(0, ordering: .relaxed)
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock(); condition.broadcast(); condition.unlock()
            }
            work()
            // Every worker must be out of this generation before `body` (and the job) go away.
            // Yield while waiting: a worker the kernel queued on this core can only run if we let it.
            var spins = 0
            while finished.load(ordering: .acquiring) < workers {
                spins &+= 1
                if spins > 64 { sched_yield() }
            }
            job = nil
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    /// Sends idle workers to sleep now instead of after their spin: call before handing the cores to
    /// someone else (OpenBLAS). The next loop wakes them.
    func park() {
        if workers > 0 && !parked.load(ordering: .relaxed) { parked.store(true, ordering: .relaxed) }
    }

    private func work() {
        let body = job!, n = chunkCount
        while true {
            let c = nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue
            if c >= n { break }
            body(c)
        }
    }

    private func workerLoop() {
        var seen = 0
        while true {
            var g = generation.load(ordering: .acquiring)
            if g == seen {
                let start = DispatchTime.now().uptimeNanoseconds
                var spins = 0
                while g == seen {
                    spins &+= 1
                    if spins & 63 == 0 { sched_yield() }  // lets the caller run if we share its core
                    if spins & 255 == 0 && (parked.load(ordering: .relaxed)
                                            || DispatchTime.now().uptimeNanoseconds - start > Self.spinNanoseconds) {
                        condition.lock()
                        sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                        while generation.load(ordering: .sequentiallyConsistent) == seen { condition.wait() }
                        sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                        condition.unlock()
                    }
                    g = generation.load(ordering: .acquiring)
                }
            }
            seen = g
            work()
            finished.wrappingAdd(1, ordering: .releasing)
        }
    }
}
