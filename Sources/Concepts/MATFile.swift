// A reader for the subset of MATLAB's Level 5 MAT-file format that dataset annotation files use
// (Flowers102's setid.mat and imagelabels.mat, Stanford Cars' devkit, Stanford Dogs' split lists):
// numeric arrays of every class (whatever smaller type MATLAB chose to store them in), char arrays,
// cell arrays, struct arrays, and variables wrapped in miCOMPRESSED zlib streams. Sparse, object and
// function arrays, big-endian files and v7.3 (HDF5) files are refused with an error saying so. The file
// is treated as hostile: every length is checked against what is left, and errors name the file and the
// variable path (e.g. `annotations[3].fname`).
import Foundation
import ModelFiles

public struct MATError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String

    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}

/// One MATLAB array. Numeric classes keep floats as `Double` and integers exactly as `Int64`;
/// dimensions and element order are MATLAB's (column-major).
public struct MATArray: Sendable, Equatable {
    public enum Class: String, Sendable {
        case double, single, int8, uint8, int16, uint16, int32, uint32, int64, uint64
        case char, cell, structure = "struct"
    }

    public enum Storage: Sendable, Equatable {
        case reals([Double])
        case integers([Int64])
        /// Character codes in column-major order (UTF-16 code units for MATLAB-written files,
        /// Unicode scalars for UTF-8/UTF-32 storage).
        case characters([UInt32])
        case cells([MATArray])
        /// One array per (element, field), element-major: `values[element * fields.count + field]`.
        case fields(names: [String], values: [MATArray])
    }

    /// The variable path, for errors: `annotations[3].fname`.
    public let path: String
    /// The file the array came from, for errors.
    public let file: String
    public let mxClass: Class
    public let dims: [Int]
    public let isLogical: Bool
    public let storage: Storage

    public var count: Int { dims.reduce(1, *) }

    func error(_ message: String) -> MATError { MATError(file: file, "\(path): \(message)") }

    /// Numeric contents as doubles, any numeric class.
    public func doubles() throws -> [Double] {
        switch storage {
        case .reals(let v): return v
        case .integers(let v): return v.map(Double.init)
        default: throw error("expected a numeric array, found a \(mxClass.rawValue) array")
        }
    }

    /// Numeric contents as integers; floating-point values must be whole numbers.
    public func integers() throws -> [Int] {
        switch storage {
        case .integers(let v): return v.map { Int($0) }
        case .reals(let v):
            return try v.map {
                guard $0.rounded() == $0, abs($0) < 9.0e15 else { throw error("expected whole numbers, found \($0)") }
                return Int($0)
            }
        default: throw error("expected a numeric array, found a \(mxClass.rawValue) array")
        }
    }

    /// The rows of a char array as strings (a 1xN array is one string; 0x0 is one empty string).
    public func rows() throws -> [String] {
        guard case .characters(let codes) = storage else {
            throw error("expected a char array, found a \(mxClass.rawValue) array")
        }
        if codes.isEmpty { return [""] }
        guard dims.count == 2 else { throw error("char arrays with \(dims.count) dimensions are not supported") }
        let (nr, nc) = (dims[0], dims[1])
        return (0 ..< nr).map { r in
            let units = (0 ..< nc).map { codes[r + $0 * nr] }
            if units.allSatisfy({ $0 <= 0xFFFF }) {
                return String(decoding: units.map { UInt16($0) }, as: UTF16.self)
            }
            return String(String.UnicodeScalarView(units.compactMap(Unicode.Scalar.init)))
        }
    }

    /// A single string: a 1xN (or empty) char array.
    public func string() throws -> String {
        let r = try rows()
        guard r.count == 1 else { throw error("expected one string, found a char array of \(r.count) rows") }
        return r[0]
    }

    /// A list of strings from a cell array of strings (any shape, column-major) or a char array (its rows).
    public func strings() throws -> [String] {
        switch storage {
        case .cells(let items): return try items.map { try $0.string() }
        case .characters: return try rows()
        default: throw error("expected a cell array of strings, found a \(mxClass.rawValue) array")
        }
    }

    public func cells() throws -> [MATArray] {
        guard case .cells(let items) = storage else { throw error("expected a cell array, found a \(mxClass.rawValue) array") }
        return items
    }

    public var fieldNames: [String] {
        if case .fields(let names, _) = storage { return names }
        return []
    }

    /// A field of every element of a struct array, in element order.
    public func field(_ name: String) throws -> [MATArray] {
        guard case .fields(let names, let values) = storage else {
            throw error("expected a struct array, found a \(mxClass.rawValue) array")
        }
        guard let f = names.firstIndex(of: name) else {
            throw error("the struct has no field '\(name)' (fields: \(names.joined(separator: ", ")))")
        }
        return stride(from: f, to: values.count, by: names.count).map { values[$0] }
    }
}

public struct MATFile: Sendable {
    /// The header's descriptive text ("MATLAB 5.0 MAT-file, ...").
    public let headerText: String
    public let variables: [String: MATArray]
    public let variableNames: [String]
    public let file: String

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw MATError(file: url.path, "cannot be read (\(error.localizedDescription))")
        }
        try self.init(bytes: [UInt8](data), file: url.path)
    }

    public init(bytes: [UInt8], file: String) throws {
        self.file = file
        guard bytes.count >= 128 else { throw MATError(file: file, "is \(bytes.count) bytes, shorter than a MAT-file header (128)") }
        if bytes.count >= 520, Array(bytes[512 ..< 520]) == [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a] {
            throw MATError(file: file, "is a MATLAB v7.3 (HDF5) file, which is not supported; re-save it with save(..., '-v7')")
        }
        if bytes[0 ..< 4].contains(0) {
            throw MATError(file: file, "is not a Level 5 MAT-file (it looks like a Level 4 file or not a MAT-file at all)")
        }
        switch (bytes[126], bytes[127]) {
        case (UInt8(ascii: "I"), UInt8(ascii: "M")): break
        case (UInt8(ascii: "M"), UInt8(ascii: "I")):
            throw MATError(file: file, "is a big-endian MAT-file, which is not supported")
        default:
            throw MATError(file: file, "has no MAT-file endian indicator at byte 126; it is not a Level 5 MAT-file")
        }
        headerText = String(decoding: bytes[0 ..< 116], as: UTF8.self)
            .trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        var vars: [String: MATArray] = [:]
        var names: [String] = []
        var reader = MATReader(bytes: bytes, file: file, offset: 128)
        while reader.offset < bytes.count {
            // Zero padding of fewer than 8 bytes at the end is harmless; anything else is a cut-off tag.
            if bytes.count - reader.offset < 8 && bytes[reader.offset...].allSatisfy({ $0 == 0 }) { break }
            let tag = try reader.tag(context: "top level")
            var array: MATArray
            switch tag.type {
            case MATReader.miCOMPRESSED:
                let packed = Array(bytes[tag.dataStart ..< tag.dataStart + tag.size])
                let plain: [UInt8]
                do { plain = try Inflate.zlibDecompress(packed) } catch {
                    throw MATError(file: file, "compressed variable at byte \(tag.dataStart - 8): \(error)")
                }
                var inner = MATReader(bytes: plain, file: file, offset: 0)
                let innerTag = try inner.tag(context: "compressed variable")
                guard innerTag.type == MATReader.miMATRIX else {
                    throw MATError(file: file, "compressed element at byte \(tag.dataStart - 8) holds data type \(innerTag.type), not a matrix")
                }
                array = try inner.matrix(innerTag, path: nil)
                reader.offset = tag.dataStart + tag.size
            case MATReader.miMATRIX:
                array = try reader.matrix(tag, path: nil)
                reader.offset = tag.paddedEnd
            default:
                throw MATError(file: file, "top-level element at byte \(tag.dataStart - 8) has data type \(tag.type); expected a matrix (14) or compressed (15) element")
            }
            guard vars[array.path] == nil else { throw MATError(file: file, "variable '\(array.path)' appears twice") }
            names.append(array.path)
            vars[array.path] = array
        }
        variables = vars
        variableNames = names
    }

    public subscript(name: String) -> MATArray? { variables[name] }

    /// The named variable, or an error naming the file and the variables it does have.
    public func variable(_ name: String) throws -> MATArray {
        guard let v = variables[name] else {
            throw MATError(file: file, "has no variable '\(name)' (it has: \(variableNames.joined(separator: ", ")))")
        }
        return v
    }
}

/// Walks data elements. Offsets are into `bytes`; every read checks bounds first.
struct MATReader {
    static let miINT8 = 1, miUINT8 = 2, miINT16 = 3, miUINT16 = 4, miINT32 = 5, miUINT32 = 6
    static let miSINGLE = 7, miDOUBLE = 9, miINT64 = 12, miUINT64 = 13, miMATRIX = 14, miCOMPRESSED = 15
    static let miUTF8 = 16, miUTF16 = 17, miUTF32 = 18

    struct Tag {
        var type: Int
        var size: Int
        var dataStart: Int
        /// Where the next element starts: data padded to 8 bytes (4 for the small element format).
        var paddedEnd: Int
    }

    let bytes: [UInt8]
    let file: String
    var offset: Int

    func u32(_ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    func fail(_ context: String, _ message: String) -> MATError { MATError(file: file, "\(context): \(message)") }

    /// Reads a tag at `offset` (regular 8-byte or small 4-byte form) without moving past the data.
    mutating func tag(context: String) throws -> Tag {
        guard offset + 8 <= bytes.count else { throw fail(context, "data element tag at byte \(offset) runs past the end") }
        let first = u32(offset)
        if first >> 16 != 0 {
            // Small data element: size in the upper half, up to 4 bytes of data in the same 8 bytes.
            let size = Int(first >> 16)
            guard size <= 4 else { throw fail(context, "small data element at byte \(offset) claims \(size) bytes") }
            return Tag(type: Int(first & 0xffff), size: size, dataStart: offset + 4, paddedEnd: offset + 8)
        }
        let size = Int(u32(offset + 4))
        let start = offset + 8
        guard size <= bytes.count - start else {
            throw fail(context, "data element at byte \(offset) claims \(size) bytes, only \(bytes.count - start) remain")
        }
        let padded = start + (size + 7) / 8 * 8
        return Tag(type: Int(first), size: size, dataStart: start, paddedEnd: min(padded, bytes.count))
    }

    /// Reads the next sub-element of a matrix and moves past it.
    mutating func element(context: String, end: Int) throws -> (type: Int, data: ArraySlice<UInt8>) {
        let t = try tag(context: context)
        guard t.dataStart + t.size <= end else { throw fail(context, "sub-element runs past the end of its matrix") }
        offset = t.paddedEnd
        return (t.type, bytes[t.dataStart ..< t.dataStart + t.size])
    }

    static func width(of type: Int) -> Int? {
        switch type {
        case miINT8, miUINT8, miUTF8: return 1
        case miINT16, miUINT16, miUTF16: return 2
        case miINT32, miUINT32, miSINGLE, miUTF32: return 4
        case miDOUBLE, miINT64, miUINT64: return 8
        default: return nil
        }
    }

    /// Decodes a numeric data element; integers stay exact, floats become Double.
    func numbers(_ type: Int, _ data: ArraySlice<UInt8>, context: String) throws -> (ints: [Int64]?, reals: [Double]?) {
        guard let w = Self.width(of: type), type != Self.miUTF8, type != Self.miUTF16, type != Self.miUTF32 else {
            throw fail(context, "data type \(type) is not numeric")
        }
        guard data.count % w == 0 else { throw fail(context, "\(data.count) bytes is not a whole number of \(w)-byte values") }
        let n = data.count / w
        let base = data.startIndex
        func raw(_ i: Int) -> UInt64 {
            var v: UInt64 = 0
            for b in 0 ..< w { v |= UInt64(bytes[base + i * w + b]) << UInt64(8 * b) }
            return v
        }
        switch type {
        case Self.miDOUBLE: return (nil, (0 ..< n).map { Double(bitPattern: raw($0)) })
        case Self.miSINGLE: return (nil, (0 ..< n).map { Double(Float(bitPattern: UInt32(raw($0)))) })
        case Self.miINT8: return ((0 ..< n).map { Int64(Int8(bitPattern: UInt8(raw($0)))) }, nil)
        case Self.miINT16: return ((0 ..< n).map { Int64(Int16(bitPattern: UInt16(raw($0)))) }, nil)
        case Self.miINT32: return ((0 ..< n).map { Int64(Int32(bitPattern: UInt32(raw($0)))) }, nil)
        case Self.miINT64: return ((0 ..< n).map { Int64(bitPattern: raw($0)) }, nil)
        case Self.miUINT64:
            return (try (0 ..< n).map {
                let v = raw($0)
                guard v <= UInt64(Int64.max) else { throw fail(context, "uint64 value \(v) does not fit in Int64") }
                return Int64(v)
            }, nil)
        default: return ((0 ..< n).map { Int64(raw($0)) }, nil) // miUINT8, miUINT16, miUINT32
        }
    }

    static let classes: [Int: MATArray.Class] = [
        1: .cell, 2: .structure, 4: .char, 6: .double, 7: .single, 8: .int8, 9: .uint8,
        10: .int16, 11: .uint16, 12: .int32, 13: .uint32, 14: .int64, 15: .uint64,
    ]
    static let unsupported: [Int: String] = [3: "object", 5: "sparse", 16: "function handle", 17: "opaque"]

    /// Parses a miMATRIX element whose tag was just read; `path` is nil for a top-level variable
    /// (its name comes from the element).
    mutating func matrix(_ t: Tag, path: String?) throws -> MATArray {
        let end = t.dataStart + t.size
        let context = path ?? "variable at byte \(t.dataStart - 8)"
        if t.size == 0 {
            // MATLAB writes empty cell entries as zero-byte matrices.
            return MATArray(path: path ?? "", file: file, mxClass: .double, dims: [0, 0], isLogical: false, storage: .reals([]))
        }
        offset = t.dataStart
        let flags = try element(context: context, end: end)
        guard flags.type == Self.miUINT32, flags.data.count == 8 else { throw fail(context, "array flags are malformed") }
        let flagWord = u32(flags.data.startIndex)
        let classCode = Int(flagWord & 0xff)
        let isComplex = flagWord & 0x800 != 0
        let isLogical = flagWord & 0x200 != 0
        let dimsEl = try element(context: context, end: end)
        guard dimsEl.type == Self.miINT32, dimsEl.data.count >= 8, dimsEl.data.count % 4 == 0 else {
            throw fail(context, "dimensions are malformed")
        }
        let dims = stride(from: dimsEl.data.startIndex, to: dimsEl.data.endIndex, by: 4).map { Int(Int32(bitPattern: u32($0))) }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw fail(context, "negative dimension in \(dims)") }
        var count = 1
        for d in dims {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o, p <= 1 << 40 else { throw fail(context, "dimensions \(dims) are too large") }
            count = p
        }
        let nameEl = try element(context: context, end: end)
        guard nameEl.type == Self.miINT8 || nameEl.type == Self.miUINT8 else { throw fail(context, "array name is malformed") }
        let name = String(decoding: nameEl.data, as: UTF8.self)
        let here = path ?? name
        guard let cls = Self.classes[classCode] else {
            let what = Self.unsupported[classCode].map { "\($0) arrays are" } ?? "array class \(classCode) is"
            throw fail(here, "\(what) not supported")
        }
        guard !isComplex else { throw fail(here, "complex arrays are not supported") }

        let storage: MATArray.Storage
        switch cls {
        case .cell:
            var items: [MATArray] = []
            items.reserveCapacity(min(count, 1 << 20))
            for i in 0 ..< count {
                let sub = try tag(context: "\(here)[\(i)]")
                guard sub.type == Self.miMATRIX, sub.dataStart + sub.size <= end else {
                    throw fail("\(here)[\(i)]", "cell entry is not a matrix element inside its cell array")
                }
                var child = self
                items.append(try child.matrix(sub, path: "\(here)[\(i)]"))
                offset = sub.paddedEnd
            }
            storage = .cells(items)
        case .structure:
            let lenEl = try element(context: here, end: end)
            guard lenEl.type == Self.miINT32, lenEl.data.count == 4 else { throw fail(here, "field name length is malformed") }
            let nameLen = Int(u32(lenEl.data.startIndex))
            let namesEl = try element(context: here, end: end)
            guard namesEl.type == Self.miINT8 || namesEl.type == Self.miUINT8, nameLen > 0 || namesEl.data.isEmpty,
                  nameLen == 0 || namesEl.data.count % nameLen == 0 else { throw fail(here, "field names are malformed") }
            let fieldCount = nameLen == 0 ? 0 : namesEl.data.count / nameLen
            let names = (0 ..< fieldCount).map { f -> String in
                let s = namesEl.data.startIndex + f * nameLen
                let raw = bytes[s ..< s + nameLen]
                return String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            var values: [MATArray] = []
            for e in 0 ..< count {
                for f in names {
                    let p = "\(here)[\(e)].\(f)"
                    let sub = try tag(context: p)
                    guard sub.type == Self.miMATRIX, sub.dataStart + sub.size <= end else {
                        throw fail(p, "struct field is not a matrix element inside its struct array")
                    }
                    var child = self
                    values.append(try child.matrix(sub, path: p))
                    offset = sub.paddedEnd
                }
            }
            storage = .fields(names: names, values: values)
        case .char:
            let data = try element(context: here, end: end)
            var codes: [UInt32]
            switch data.type {
            case Self.miUTF8:
                codes = String(decoding: data.data, as: UTF8.self).unicodeScalars.map(\.value)
            case Self.miUTF16:
                codes = String(decoding: stride(from: data.data.startIndex, to: data.data.endIndex - 1, by: 2).map {
                    UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8
                }, as: UTF16.self).unicodeScalars.map(\.value)
            case Self.miUTF32:
                codes = stride(from: data.data.startIndex, to: data.data.endIndex - 3, by: 4).map { u32($0) }
            default:
                // MATLAB itself stores characters as UTF-16 code units in miUINT16 (or bytes in miUINT8).
                let n = try numbers(data.type, data.data, context: here)
                guard let ints = n.ints, ints.allSatisfy({ $0 >= 0 && $0 <= 0x10FFFF }) else {
                    throw fail(here, "char data has data type \(data.type), which holds no character codes")
                }
                codes = ints.map { UInt32($0) }
            }
            guard codes.count == count else { throw fail(here, "char array of dimensions \(dims) holds \(codes.count) characters") }
            storage = .characters(codes)
        default:
            let data = try element(context: here, end: end)
            let n = try numbers(data.type, data.data, context: here)
            let got = n.ints?.count ?? n.reals?.count ?? 0
            guard got == count else { throw fail(here, "numeric array of dimensions \(dims) holds \(got) values") }
            if cls == .double || cls == .single {
                storage = .reals(n.reals ?? n.ints!.map(Double.init))
            } else if let ints = n.ints {
                storage = .integers(ints)
            } else {
                let reals = n.reals!
                guard reals.allSatisfy({ $0.rounded() == $0 && abs($0) < 9.0e18 }) else {
                    throw fail(here, "\(cls.rawValue) array stored with non-integral floating-point values")
                }
                storage = .integers(reals.map { Int64($0) })
            }
        }
        return MATArray(path: here, file: file, mxClass: cls, dims: dims, isLogical: isLogical, storage: storage)
    }
}
