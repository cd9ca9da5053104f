// Which instruction set the GEMM kernels run on. The AVX-512 copies (module TensorsAVX512) give the same
// bits as the AVX2 ones, twice the multiply-adds per cycle on CPUs with two 512-bit FMA units.
import Foundation
import TensorsAVX512

public enum KernelISA {
    /// True when the AVX-512 kernels run: the CPU reports AVX-512 F, BW, DQ, VL and CD and the
    /// environment does not say EX2_ISA=avx2. Tests switch it to compare the two paths.
    nonisolated(unsafe) public static var avx512: Bool = detect()

    /// What this CPU supports (ignores the current setting).
    public static let cpuHasAVX512: Bool = {
        #if os(Linux) && arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        let flags = Set(line.split(separator: " ").map(String.init))
        return ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"].allSatisfy(flags.contains)
        #else
        return false
        #endif
    }()

    static func detect() -> Bool {
        if ProcessInfo.processInfo.environment["EX2_ISA"]?.lowercased() == "avx2" { return false }
        return cpuHasAVX512
    }

    public static var name: String { avx512 ? "AVX-512" : "AVX2" }
}
