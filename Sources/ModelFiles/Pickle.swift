// A restricted unpickler for the data.pkl of torch.save files. A pickle is a program: its GLOBAL and REDUCE
// opcodes import and call anything, which is how a downloaded checkpoint runs code on the machine that loads
// it. This machine never imports or calls: it interprets the opcodes a state dict is made of, knows the few
// globals such a dict refers to (OrderedDict, torch's tensor and parameter rebuild functions, the typed
// storages, dtypes) as inert names, and refuses any other global the moment the opcode naming it is read,
// with an error that names it. Nothing in the file is ever executed.

import Foundation
import Tensors

/// What a state-dict pickle can hold, once interpreted.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    /// The items and the nesting depth (kept, so that shared sub-tuples are never walked again).
    case tuple([PickleValue], depth: Int)
    case list(PickleList)
    case dict(PickleDict)
    /// One of the allowed globals, by its qualified name.
    case global(String)
    /// A persistent reference to a storage record of the zip archive.
    case storage(TorchStorageRef)
    case tensor(TorchTensorRef)

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .global(let g): return g
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }
}

/// A list or dict is frozen once it is inside another value: a pickle that then grows it (through the memo)
/// is refused, which keeps every recorded depth exact. Pickles of state dicts build inside-out and never do it.
final class PickleList { var items: [PickleValue] = []; var depth = 1; var frozen = false }
final class PickleDict { var items: [(key: PickleValue, value: PickleValue)] = []; var depth = 1; var frozen = false }

struct TorchStorageRef {
    let key: String
    let dtype: DType?
    let numel: Int
}

struct TorchTensorRef {
    let storage: TorchStorageRef
    let dtype: DType
    let offset: Int
    let shape: [Int]
    let stride: [Int]
}

struct RestrictedUnpickler {
    /// Storage classes torch.save names in its persistent ids, and the dtype of their elements.
    static let storageTypes: [String: DType] = [
        "torch.FloatStorage": .f32, "torch.HalfStorage": .f16, "torch.BFloat16Storage": .bf16,
        "torch.DoubleStorage": .f64, "torch.LongStorage": .i64, "torch.IntStorage": .i32, "torch.ShortStorage": .i16,
        "torch.CharStorage": .i8, "torch.ByteStorage": .u8, "torch.BoolStorage": .bool,
    ]
    static let dtypes: [String: DType] = [
        "torch.float32": .f32, "torch.float": .f32, "torch.float16": .f16, "torch.half": .f16, "torch.bfloat16": .bf16,
        "torch.float64": .f64, "torch.double": .f64, "torch.int64": .i64, "torch.long": .i64, "torch.int32": .i32,
        "torch.int": .i32, "torch.int16": .i16, "torch.short": .i16, "torch.int8": .i8, "torch.uint8": .u8, "torch.bool": .bool,
    ]
    /// The callables a state dict is rebuilt with. They are never called: REDUCE interprets each one here.
    static let callables: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    ]
    static let untypedStorage = "torch.UntypedStorage"

    static func isAllowed(_ global: String) -> Bool {
        callables.contains(global) || storageTypes[global] != nil || dtypes[global] != nil || global == untypedStorage
    }

    let file: String
    private var stack: [PickleValue] = []
    /// Nesting is capped: Swift frees nested values recursively, so a deep enough pickle would overflow the
    /// thread's stack when its value is released. State dicts nest a handful of levels.
    static let maxDepth = 200
    /// Values on the stack plus marks: bounds the memory a file of push opcodes can claim.
    static let maxStack = 1 << 22
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    init(file: String) { self.file = file }

    /// Depth of `v`, freezing it: it is about to become part of another value.
    static func depth(_ v: PickleValue) -> Int {
        switch v {
        case .list(let l): l.frozen = true; return l.depth
        case .dict(let d): d.frozen = true; return d.depth
        case .tuple(_, let d): return d
        default: return 1
        }
    }

    private func refuse(_ d: String) -> ModelFileError {
        .unsupported(file: file, detail: "data.pkl: \(d); nothing in the file was executed")
    }
    private func bad(_ d: String, at p: Int) -> ModelFileError {
        .malformed(file: file, detail: "data.pkl at byte \(p): \(d)")
    }

    /// Interprets `bytes` to the value STOP returns.
    mutating func load(_ bytes: UnsafeRawBufferPointer) throws -> PickleValue {
        var r = ByteReader(bytes, file: file)
        let maxMemo = 1 << 24
        while true {
            let at = r.position
            let op = try r.u8("opcode")
            guard stack.count + marks.count < Self.maxStack else { throw bad("more than \(Self.maxStack) values on the stack", at: at) }
            func pop() throws -> PickleValue {
                guard let v = stack.popLast(), marks.last.map({ stack.count >= $0 }) ?? true else {
                    throw bad("opcode 0x\(String(op, radix: 16)) pops an empty stack", at: at)
                }
                return v
            }
            func popMark() throws -> [PickleValue] {
                guard let m = marks.popLast() else { throw bad("opcode 0x\(String(op, radix: 16)) without a MARK", at: at) }
                let items = Array(stack[m...])
                stack.removeSubrange(m...)
                return items
            }
            func string(_ n: Int, _ what: String) throws -> String {
                let s = try r.slice(n, what)
                guard let v = String(validating: s, as: UTF8.self) else { throw bad("\(what) is not UTF-8", at: at) }
                return v
            }
            func length(_ v: UInt64) throws -> Int {
                guard v <= UInt64(r.remaining) else { throw bad("a length of \(v) runs past the end of the pickle", at: at) }
                return Int(v)
            }
            func global(_ module: String, _ name: String) throws -> PickleValue {
                let g = module + "." + name
                guard Self.isAllowed(g) else {
                    throw refuse("it imports the global '\(g)' (byte \(at)), which a state dict never needs; torch.load(weights_only=True) refuses it too. Only the tensors of a state dict are read: if you trust the file, re-save it from Python with safetensors")
                }
                return .global(g)
            }
            switch op {
            case 0x80: _ = try r.u8("protocol")                                   // PROTO
            case 0x95: _ = try r.u64("frame length")                               // FRAME
            case 0x28: marks.append(stack.count)                                   // MARK
            case 0x29: stack.append(.tuple([], depth: 1))                                    // EMPTY_TUPLE
            case 0x5d: stack.append(.list(PickleList()))                           // EMPTY_LIST
            case 0x7d: stack.append(.dict(PickleDict()))                           // EMPTY_DICT
            case 0x4e: stack.append(.none)                                         // NONE
            case 0x88: stack.append(.bool(true))                                   // NEWTRUE
            case 0x89: stack.append(.bool(false))                                  // NEWFALSE
            case 0x4b: stack.append(.int(Int(try r.u8("BININT1"))))                // BININT1
            case 0x4d: stack.append(.int(Int(try r.read(UInt16.self, "BININT2"))))  // BININT2
            case 0x4a: stack.append(.int(Int(try r.read(Int32.self, "BININT"))))    // BININT
            case 0x8a:                                                             // LONG1
                let n = Int(try r.u8("LONG1 length"))
                let b = try r.slice(n, "LONG1")
                guard n <= 8 else { throw bad("an integer of \(n) bytes is larger than any size or offset", at: at) }
                var v: UInt64 = 0
                for (i, x) in b.enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
                if n > 0, n < 8, b[n - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }
                stack.append(.int(Int(Int64(bitPattern: v))))
            case 0x47:                                                             // BINFLOAT (big-endian)
                stack.append(.float(Double(bitPattern: try r.u64("BINFLOAT").byteSwapped)))
            case 0x58: stack.append(.string(try string(try length(UInt64(try r.u32("BINUNICODE length"))), "BINUNICODE")))
            case 0x8c: stack.append(.string(try string(Int(try r.u8("SHORT_BINUNICODE length")), "SHORT_BINUNICODE")))
            case 0x8d: stack.append(.string(try string(try length(try r.u64("BINUNICODE8 length")), "BINUNICODE8")))
            case 0x55: stack.append(.string(try string(Int(try r.u8("SHORT_BINSTRING length")), "SHORT_BINSTRING")))
            case 0x54: stack.append(.string(try string(try length(UInt64(try r.u32("BINSTRING length"))), "BINSTRING")))
            case 0x43: stack.append(.bytes(Array(try r.slice(Int(try r.u8("SHORT_BINBYTES length")), "SHORT_BINBYTES"))))
            case 0x42: stack.append(.bytes(Array(try r.slice(try length(UInt64(try r.u32("BINBYTES length"))), "BINBYTES"))))
            case 0x63:                                                             // GLOBAL "module\nname\n"
                func line() throws -> String {
                    var s: [UInt8] = []
                    while true {
                        let b = try r.u8("GLOBAL name")
                        if b == 0x0a { break }
                        s.append(b)
                        guard s.count <= 256 else { throw bad("GLOBAL name longer than 256 bytes", at: at) }
                    }
                    return String(decoding: s, as: UTF8.self)
                }
                let module = try line(), name = try line()
                stack.append(try global(module, name))
            case 0x93:                                                             // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard case .string(let n) = name, case .string(let m) = module else {
                    throw bad("STACK_GLOBAL needs two strings", at: at)
                }
                stack.append(try global(m, n))
            case 0x74, 0x85, 0x86, 0x87:                                           // TUPLE, TUPLE1..3
                var items: [PickleValue]
                switch op {
                case 0x74: items = try popMark()
                case 0x85: items = [try pop()]
                case 0x86: let b = try pop(), a = try pop(); items = [a, b]
                default: let c = try pop(), b = try pop(), a = try pop(); items = [a, b, c]
                }
                let t = PickleValue.tuple(items, depth: 1 + (items.map(Self.depth).max() ?? 0))
                guard Self.depth(t) <= Self.maxDepth else { throw bad("values nested more than \(Self.maxDepth) deep", at: at) }
                stack.append(t)
            case 0x61:                                                             // APPEND
                let v = try pop()
                guard case .list(let l) = stack.last else { throw bad("APPEND to a non-list", at: at) }
                guard !l.frozen else { throw refuse("a list grown after it was placed inside another value (byte \(at))") }
                l.depth = max(l.depth, 1 + Self.depth(v))
                guard l.depth <= Self.maxDepth else { throw bad("values nested more than \(Self.maxDepth) deep", at: at) }
                l.items.append(v)
            case 0x65:                                                             // APPENDS
                let items = try popMark()
                guard case .list(let l) = stack.last else { throw bad("APPENDS to a non-list", at: at) }
                guard !l.frozen else { throw refuse("a list grown after it was placed inside another value (byte \(at))") }
                l.depth = max(l.depth, 1 + (items.map(Self.depth).max() ?? 0))
                guard l.depth <= Self.maxDepth else { throw bad("values nested more than \(Self.maxDepth) deep", at: at) }
                l.items += items
            case 0x73:                                                             // SETITEM
                let v = try pop(), k = try pop()
                guard case .dict(let d) = stack.last else { throw bad("SETITEM on a non-dict", at: at) }
                guard !d.frozen else { throw refuse("a dict grown after it was placed inside another value (byte \(at))") }
                d.depth = max(d.depth, 1 + max(Self.depth(k), Self.depth(v)))
                guard d.depth <= Self.maxDepth else { throw bad("values nested more than \(Self.maxDepth) deep", at: at) }
                d.items.append((k, v))
            case 0x75:                                                             // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw bad("SETITEMS with an odd number of items", at: at) }
                guard case .dict(let d) = stack.last else { throw bad("SETITEMS on a non-dict", at: at) }
                guard !d.frozen else { throw refuse("a dict grown after it was placed inside another value (byte \(at))") }
                d.depth = max(d.depth, 1 + (items.map(Self.depth).max() ?? 0))
                guard d.depth <= Self.maxDepth else { throw bad("values nested more than \(Self.maxDepth) deep", at: at) }
                for i in stride(from: 0, to: items.count, by: 2) { d.items.append((items[i], items[i + 1])) }
            case 0x71, 0x72, 0x94:                                                 // BINPUT, LONG_BINPUT, MEMOIZE
                let k = op == 0x71 ? Int(try r.u8("BINPUT")) : op == 0x72 ? Int(try r.u32("LONG_BINPUT")) : memo.count
                guard let top = stack.last else { throw bad("memoizing an empty stack", at: at) }
                guard memo.count < maxMemo || memo[k] != nil else { throw bad("more than \(maxMemo) memo entries", at: at) }
                memo[k] = top
            case 0x68, 0x6a:                                                       // BINGET, LONG_BINGET
                let k = op == 0x68 ? Int(try r.u8("BINGET")) : Int(try r.u32("LONG_BINGET"))
                guard let v = memo[k] else { throw bad("memo entry \(k) was never stored", at: at) }
                stack.append(v)
            case 0x30: _ = try pop()                                               // POP
            case 0x32: guard let v = stack.last else { throw bad("DUP of an empty stack", at: at) }; stack.append(v)
            case 0x31: _ = try popMark()                                           // POP_MARK
            case 0x51: stack.append(try persistent(try pop(), at: at))             // BINPERSID
            case 0x52:                                                             // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args, at: at))
            case 0x62:                                                             // BUILD
                let state = try pop()
                guard let target = stack.last else { throw bad("BUILD without an object", at: at) }
                switch target {
                case .dict, .tensor: break   // OrderedDict._metadata, a Parameter's __dict__: not weights
                default: throw refuse("BUILD on a \(target.kind) with a \(state.kind) state (byte \(at)); a state dict has no such object")
                }
            case 0x2e:                                                             // STOP
                guard let v = stack.last, stack.count == 1, marks.isEmpty else {
                    throw bad("STOP with \(stack.count) values on the stack", at: at)
                }
                return v
            default:
                throw refuse("opcode 0x\(String(op, radix: 16)) at byte \(at) is not one a state dict is written with")
            }
        }
    }

    /// torch.save's persistent id: ('storage', storage type, key, location, element count).
    private func persistent(_ pid: PickleValue, at: Int) throws -> PickleValue {
        guard case .tuple(let t, _) = pid, t.count == 5, case .string("storage") = t[0], case .global(let type) = t[1],
              case .string(let key) = t[2], case .int(let numel) = t[4], numel >= 0 else {
            throw refuse("a persistent id that is not a torch storage reference (byte \(at))")
        }
        guard type == Self.untypedStorage || Self.storageTypes[type] != nil else {
            throw refuse("persistent id names '\(type)', not a storage type (byte \(at))")
        }
        guard !key.isEmpty, key.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) || $0 == 0x5f }) else {
            throw bad("storage key '\(key)' is not a plain record name", at: at)
        }
        return .storage(TorchStorageRef(key: key, dtype: Self.storageTypes[type], numel: numel))
    }

    private func reduce(_ callable: PickleValue, _ args: PickleValue, at: Int) throws -> PickleValue {
        guard case .global(let f) = callable, Self.callables.contains(f) else {
            throw refuse("REDUCE calls a \(callable.kind) (byte \(at)); only a state dict's rebuild functions are interpreted")
        }
        guard case .tuple(let a, _) = args else { throw bad("REDUCE arguments are not a tuple", at: at) }
        func ints(_ v: PickleValue, _ what: String) throws -> [Int] {
            guard case .tuple(let t, _) = v else { throw bad("\(f): \(what) is a \(v.kind), not a tuple", at: at) }
            return try t.map {
                guard case .int(let i) = $0 else { throw bad("\(f): \(what) holds a \($0.kind)", at: at) }
                return i
            }
        }
        switch f {
        case "collections.OrderedDict":
            guard a.isEmpty else { throw refuse("OrderedDict built from arguments (byte \(at))") }
            return .dict(PickleDict())
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3":
            guard a.count >= 4, case .storage(let s) = a[0], case .int(let offset) = a[1] else {
                throw bad("\(f) without (storage, offset, size, stride, ...)", at: at)
            }
            var dtype = s.dtype
            if f.hasSuffix("v3") {
                guard a.count >= 7, case .global(let d) = a[6], let dt = Self.dtypes[d] else { throw bad("\(f) without a dtype", at: at) }
                dtype = dt
            }
            guard let dtype else { throw bad("an untyped storage rebuilt without a dtype", at: at) }
            let shape = try ints(a[2], "size"), stride = try ints(a[3], "stride")
            guard shape.count == stride.count, shape.allSatisfy({ $0 >= 0 }), stride.allSatisfy({ $0 >= 0 }), offset >= 0 else {
                throw bad("\(f): size \(shape), stride \(stride), offset \(offset) do not describe a tensor", at: at)
            }
            return .tensor(TorchTensorRef(storage: s, dtype: dtype, offset: offset, shape: shape, stride: stride))
        default:  // _rebuild_parameter(data, requires_grad, hooks[, state])
            guard let first = a.first, case .tensor = first else { throw bad("\(f) without a tensor", at: at) }
            return first
        }
    }
}
