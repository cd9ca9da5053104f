// TensorBoard event files, as torch.utils.tensorboard's SummaryWriter writes them for add_scalar:
// TFRecord framing (little-endian length, masked CRC-32C of the length, the record, masked CRC-32C of
// the record) around tensorflow.Event protocol buffers: first Event{wall_time, file_version
// "brain.Event:2", source_metadata{writer}}, then one Event{wall_time, step, summary{value{tag, simple_value}}} per scalar.
import Foundation

public final class TensorBoardWriter {
    public let url: URL
    let handle: FileHandle

    /// Creates `directory/events.out.tfevents.<seconds>.<host>.<pid>.0` (SummaryWriter's naming).
    /// `wallTime` fixes the time stamps (tests); nil uses the clock.
    public init(directory: URL, wallTime: Double? = nil, fileName: String? = nil) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let now = wallTime ?? Date().timeIntervalSince1970
        let host = ProcessInfo.processInfo.hostName
        let name = fileName ?? "events.out.tfevents.\(Int(now)).\(host).\(ProcessInfo.processInfo.processIdentifier).0"
        url = directory.appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        handle = try FileHandle(forWritingTo: url)
        var event = Protobuf()
        event.double(1, now)
        event.string(3, "brain.Event:2")
        // source_metadata { writer }: who wrote the file (TensorBoard's own writer names itself here).
        var source = Protobuf()
        source.string(1, "ex2")
        event.message(10, source.bytes)
        try handle.write(contentsOf: Self.record(event.bytes))
        self.fixedTime = wallTime
    }
    deinit { try? handle.close() }

    let fixedTime: Double?

    /// One event per scalar, in tag order (non-finite values are written as they are; TensorBoard shows them).
    public func scalars(step: Int, _ values: [String: Double], wallTime: Double? = nil) throws {
        var out = Data()
        for tag in values.keys.sorted() {
            out.append(Self.scalarEvent(tag: tag, value: Float(values[tag]!), step: step,
                                        wallTime: wallTime ?? fixedTime ?? Date().timeIntervalSince1970))
        }
        try handle.write(contentsOf: out)
    }

    static func scalarEvent(tag: String, value: Float, step: Int, wallTime: Double) -> Data {
        var v = Protobuf()
        v.string(1, tag)
        v.float(2, value)
        var summary = Protobuf()
        summary.message(1, v.bytes)
        var event = Protobuf()
        event.double(1, wallTime)
        if step != 0 { event.varint(2, UInt64(bitPattern: Int64(step))) }
        event.message(5, summary.bytes)
        return record(event.bytes)
    }

    /// TFRecord framing of one record.
    static func record(_ payload: [UInt8]) -> Data {
        var d = Data()
        var len = UInt64(payload.count).littleEndian
        let lenBytes = withUnsafeBytes(of: &len) { Array($0) }
        d.append(contentsOf: lenBytes)
        var c1 = CRC32C.masked(lenBytes).littleEndian
        d.append(contentsOf: withUnsafeBytes(of: &c1) { Array($0) })
        d.append(contentsOf: payload)
        var c2 = CRC32C.masked(payload).littleEndian
        d.append(contentsOf: withUnsafeBytes(of: &c2) { Array($0) })
        return d
    }
}

/// The few protocol-buffer encodings an Event needs.
struct Protobuf {
    var bytes: [UInt8] = []
    mutating func key(_ field: Int, _ wire: Int) { rawVarint(UInt64(field << 3 | wire)) }
    mutating func rawVarint(_ x: UInt64) {
        var x = x
        while x >= 0x80 { bytes.append(UInt8(x & 0x7F) | 0x80); x >>= 7 }
        bytes.append(UInt8(x))
    }
    mutating func varint(_ field: Int, _ x: UInt64) { key(field, 0); rawVarint(x) }
    mutating func double(_ field: Int, _ x: Double) {
        key(field, 1)
        var b = x.bitPattern.littleEndian
        bytes.append(contentsOf: withUnsafeBytes(of: &b) { Array($0) })
    }
    mutating func float(_ field: Int, _ x: Float) {
        key(field, 5)
        var b = x.bitPattern.littleEndian
        bytes.append(contentsOf: withUnsafeBytes(of: &b) { Array($0) })
    }
    mutating func string(_ field: Int, _ s: String) { message(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ b: [UInt8]) { key(field, 2); rawVarint(UInt64(b.count)); bytes += b }
}

/// CRC-32C (Castagnoli), and TFRecord's masking of it.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func masked(_ bytes: [UInt8]) -> UInt32 {
        let c = checksum(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}
