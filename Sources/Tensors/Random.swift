// Seeded random numbers. Each generated sequence owns one stream, so batched and unbatched sampling draw
// the same numbers for the same seed (xoshiro256** seeded through splitmix64, as its authors recommend).
import Foundation

public struct RandomStream: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func splitmix(_ z: inout UInt64) -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s = (splitmix(&z), splitmix(&z), splitmix(&z), splitmix(&z))
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1.0p-24 }

    /// Standard normal (Box-Muller), for weight initialisation.
    public mutating func nextGaussian() -> Float {
        let u1 = max(nextDouble(), 1e-300), u2 = nextDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

