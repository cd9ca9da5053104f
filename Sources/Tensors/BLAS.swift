// The one door to OpenBLAS. Every GEMM in the engine goes through `BLAS.gemm`, row-major, so the rest of
// the code never sees CBLAS enums, and thread policy (BLAS threads versus our own parallel loops) lives here.
import COpenBLAS

public enum BLAS {
    /// Number of threads OpenBLAS may use for one call. Our own `parallelFor` loops never run at the same
    /// time as a BLAS call, and every call first sends our idle workers to sleep (they would otherwise
    /// spin for a few milliseconds), so both use every core without oversubscribing.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var threads: Int { Int(openblas_get_num_threads()) }
    /// The kernel set OpenBLAS chose for this CPU ("Prescott" means it did not recognise it and runs SSE3
    /// code; OPENBLAS_CORETYPE=SkylakeX or Haswell in the environment overrides the choice).
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, all row-major.
    /// op(A) = A ([m,k], lda) or A^T (A stored [k,m]); op(B) = B ([k,n], ldb) or B^T (B stored [n,k]).
    @inline(__always)
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        WorkerPool.shared.park()  // our spinning workers would compete with OpenBLAS's threads
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y[m,n] = x[m,k] · W^T (+ bias), W stored [n,k] as PyTorch's nn.Linear keeps it.
    public static func linear(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                              _ w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, m: Int, n: Int, k: Int) {
        if let bias {
            for i in 0..<m { (y + i * n).update(from: bias, count: n) }
            gemm(transB: true, m: m, n: n, k: k, a: x, lda: k, b: w, ldb: k, beta: 1, c: y, ldc: n)
        } else {
            gemm(transB: true, m: m, n: n, k: k, a: x, lda: k, b: w, ldb: k, c: y, ldc: n)
        }
    }
}
