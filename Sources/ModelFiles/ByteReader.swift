// A bounds-checked little-endian cursor over a mapped file. Every read checks the remaining length
// first, so a hostile length field turns into a thrown `ModelFileError` instead of a read past the
// mapping; it never copies more than the value it returns.

import Foundation

struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    private(set) var position: Int = 0

    init(_ bytes: UnsafeRawBufferPointer, file: String) {
        self.bytes = bytes
        self.file = file
    }

    var remaining: Int { bytes.count - position }

    func truncated(_ what: String, need: Int) -> ModelFileError {
        .malformed(file: file, detail: "truncated while reading \(what) at byte \(position): need \(need) bytes, \(remaining) left")
    }

    mutating func skip(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else { throw truncated(what(), need: n) }
        position += n
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let n = MemoryLayout<T>.size
        guard n <= remaining else { throw truncated(what(), need: n) }
        let v = bytes.baseAddress!.loadUnaligned(fromByteOffset: position, as: T.self)
        position += n
        return T(littleEndian: v)
    }

    mutating func u8(_ what: @autoclosure () -> String) throws -> UInt8 { try read(UInt8.self, what()) }
    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { try read(UInt32.self, what()) }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try read(UInt64.self, what()) }

    /// A u64 length-prefixed UTF-8 string, as GGUF stores them. Invalid UTF-8 is repaired with U+FFFD
    /// rather than rejected: token tables from converters occasionally carry stray bytes.
    mutating func ggufString(_ what: @autoclosure () -> String) throws -> String {
        let len = try u64("length of \(what())")
        guard len <= UInt64(remaining) else {
            throw ModelFileError.malformed(file: file, detail: "\(what()) claims \(len) bytes at byte \(position), but only \(remaining) remain in the file")
        }
        let n = Int(len)
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)]), as: UTF8.self)
        position += n
        return s
    }

    /// Raw bytes at the cursor; the slice is only valid while the mapping is.
    mutating func slice(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw truncated(what(), need: n) }
        let s = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
        position += n
        return s
    }
}
