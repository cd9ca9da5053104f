// SchemaCompiler.swift — turns a parsed JSON Schema into SchemaTables.
//
// Three passes:
//  1. compile: walk the schema, one raw node per schema met ($ref targets once each, by pointer),
//     recording for each node what it allows: object spec, array spec, string length range,
//     number/integer, literal texts (enum, const, true, false, null); $ref becomes an alias,
//     anyOf/oneOf a union of alternatives.
//  2. flatten: resolve aliases and unions into one "flat" description per node. The automaton
//     chooses what to parse from the first byte of a value, so alternatives must not both claim
//     the same kind of value ({ [ " number t f n), except where one covers the other (anyOf of
//     integer and number, a string enum next to a plain string that allows all its members, enum
//     lists, nested length ranges). Anything else is refused with a message saying so.
//  3. size: a fixed point gives every node the length of its shortest value (a node whose values
//     would all need infinitely deep required nesting has none). Unsatisfiable parts are pruned
//     (such optional properties cannot be started, such items never), the tables are built and
//     each node's shortest value text kept for completions.
//
// The automaton generates a subset of the documents the schema accepts: integers without fraction
// or exponent, enum/const values in their compact canonical text, no schema-less type guessing
// (a schema with "properties" and no "type" only produces objects).

import Foundation

struct SchemaCompiler {
    let document: JSONValue
    let options: JSONSchema.Options
    private(set) var ignored: [String] = []
    private var ignoredSet: Set<String> = []

    static let clsObject: UInt8 = 0, clsArray: UInt8 = 1, clsString: UInt8 = 2, clsNumber: UInt8 = 3,
               clsBoolean: UInt8 = 4, clsNull: UInt8 = 5

    struct Literal {
        var bytes: [UInt8]
        var cls: UInt8
        var chars: Int
        var integerText: Bool
    }

    struct Flat {
        var obj = -1
        var arr = -1
        var hasString = false
        var strMin = 0
        var strMax = Int.max
        var number: UInt8 = 0
        var literals: [Literal] = []
    }

    enum Raw {
        case pending
        case direct(Flat)
        case alias(Int)
        case union([Int], exclusive: Bool, path: String)
    }

    struct RawObject {
        var names: [[UInt8]]
        var nodes: [Int]
        var required: Set<[UInt8]>
        var additional: Int?
    }

    struct RawArray {
        var items: Int
        var minItems: Int
        var maxItems: Int
    }

    private var raw: [Raw] = []
    private var objects: [RawObject] = []
    private var arrays: [RawArray] = []
    private var refMemo: [String: Int] = [:]
    private var anyNode = -1
    private var falseNode = -1

    static let supported: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
        "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "minLength", "maxLength",
    ]
    static let annotations: Set<String> = [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated",
        "readOnly", "writeOnly", "$anchor", "$vocabulary", "contentMediaType", "contentEncoding", "discriminator",
    ]
    static let refused: Set<String> = [
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "patternProperties",
        "propertyNames", "minProperties", "maxProperties", "dependentRequired", "dependentSchemas",
        "dependencies", "prefixItems", "additionalItems", "contains", "minContains", "maxContains",
        "uniqueItems", "not", "if", "then", "else", "unevaluatedProperties", "unevaluatedItems",
        "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "contentSchema",
    ]

    init(document: JSONValue, options: JSONSchema.Options) {
        self.document = document
        self.options = options
    }

    private func err(_ keyword: String?, _ path: String, _ message: String) -> JSONSchemaError {
        JSONSchemaError(keyword: keyword, path: path, message: message)
    }

    private mutating func note(_ keyword: String) {
        if ignoredSet.insert(keyword).inserted { ignored.append(keyword) }
    }

    // MARK: pass 1 — compile

    private mutating func newNode(_ r: Raw) -> Int {
        raw.append(r)
        return raw.count - 1
    }

    private static func literal(_ v: JSONValue) -> Literal {
        let bytes = canonicalJSON(v)
        switch v {
        case .object: return Literal(bytes: bytes, cls: clsObject, chars: 0, integerText: false)
        case .array: return Literal(bytes: bytes, cls: clsArray, chars: 0, integerText: false)
        case .string(let s): return Literal(bytes: bytes, cls: clsString, chars: s.unicodeScalars.count, integerText: false)
        case .number(let t):
            let integer = !t.contains(".") && !t.contains("e") && !t.contains("E")
            return Literal(bytes: bytes, cls: clsNumber, chars: 0, integerText: integer)
        case .bool: return Literal(bytes: bytes, cls: clsBoolean, chars: 0, integerText: false)
        case .null: return Literal(bytes: bytes, cls: clsNull, chars: 0, integerText: false)
        }
    }

    /// Any JSON value; its object and array specs refer back to it.
    private mutating func makeAny() -> Int {
        if anyNode >= 0 { return anyNode }
        let idx = newNode(.pending)
        anyNode = idx
        objects.append(RawObject(names: [], nodes: [], required: [], additional: idx))
        arrays.append(RawArray(items: idx, minItems: 0, maxItems: Int.max))
        var f = Flat()
        f.obj = objects.count - 1
        f.arr = arrays.count - 1
        f.hasString = true
        f.number = 2
        f.literals = [Self.literal(.bool(true)), Self.literal(.bool(false)), Self.literal(.null)]
        raw[idx] = .direct(f)
        return idx
    }

    private mutating func makeFalse() -> Int {
        if falseNode < 0 { falseNode = newNode(.direct(Flat())) }
        return falseNode
    }

    mutating func compile(_ v: JSONValue, path: String) throws -> Int {
        let members: [(key: String, value: JSONValue)]
        switch v {
        case .bool(true): return makeAny()
        case .bool(false): return makeFalse()
        case .object(let m): members = m
        default: throw err(nil, path, "a schema must be an object or a boolean, not \(v.typeName)")
        }
        var validation: [String] = []
        for m in members {
            let k = m.key
            if Self.refused.contains(k) {
                if k == "uniqueItems", m.value == .bool(false) { continue }
                if options.ignoreUnsupported { note(k); continue }
                throw err(k, path, "is not supported by the JSON constraint (see JSONSchema for the supported subset)")
            }
            if Self.supported.contains(k) {
                if k != "$defs" && k != "definitions" { validation.append(k) }
            } else if !Self.annotations.contains(k) {
                note(k)  // format, pattern, and keywords JSON Schema does not define: not enforced
            }
        }

        if let ref = v["$ref"] {
            if let other = validation.first(where: { $0 != "$ref" }) {
                throw err("$ref", path, "'\(other)' next to $ref is not supported")
            }
            guard case .string(let r) = ref else { throw err("$ref", path, "must be a string") }
            return try resolveRef(r, path: path)
        }
        if let all = v["allOf"] {
            guard case .array(let items) = all, items.count == 1 else {
                throw err("allOf", path, "only an allOf holding exactly one schema is supported")
            }
            if let other = validation.first(where: { $0 != "allOf" }) {
                throw err("allOf", path, "'\(other)' next to allOf is not supported")
            }
            return try compile(items[0], path: path + "/allOf/0")
        }
        for key in ["anyOf", "oneOf"] {
            guard let list = v[key] else { continue }
            if let other = validation.first(where: { $0 != key }) {
                throw err(key, path, "'\(other)' next to \(key) is not supported")
            }
            guard case .array(let items) = list, !items.isEmpty else {
                throw err(key, path, "must be a non-empty array of schemas")
            }
            var alts: [Int] = []
            for (i, item) in items.enumerated() { alts.append(try compile(item, path: "\(path)/\(key)/\(i)")) }
            return newNode(.union(alts, exclusive: key == "oneOf", path: path))
        }
        return try compileDirect(v, path: path)
    }

    private static let typeBits: [String: UInt8] = [
        "object": 1, "array": 2, "string": 4, "number": 8, "integer": 16, "boolean": 32, "null": 64,
    ]

    private func typeMask(_ t: JSONValue, path: String) throws -> UInt8 {
        func bit(_ name: String) throws -> UInt8 {
            guard let b = Self.typeBits[name] else { throw err("type", path, "unknown type '\(name)'") }
            return b
        }
        switch t {
        case .string(let s): return try bit(s)
        case .array(let items):
            guard !items.isEmpty else { throw err("type", path, "an empty list of types allows nothing") }
            var mask: UInt8 = 0
            for item in items {
                guard case .string(let s) = item else { throw err("type", path, "must list type names") }
                mask |= try bit(s)
            }
            return mask
        default: throw err("type", path, "must be a type name or a list of them")
        }
    }

    private func count(_ v: JSONValue, _ keyword: String, path: String) throws -> Int? {
        guard let value = v[keyword] else { return nil }
        guard case .number(let text) = value, let d = Double(text), d >= 0, d == d.rounded(.down) else {
            throw err(keyword, path, "must be a non-negative integer")
        }
        return d >= Double(Int32.max) ? Int(Int32.max) : Int(d)
    }

    private static func isIntegral(_ text: String) -> Bool {
        guard let d = Double(text), d.isFinite else { return false }
        return d == d.rounded(.towardZero)
    }

    private mutating func compileDirect(_ v: JSONValue, path: String) throws -> Int {
        var mask: UInt8
        if let t = v["type"] {
            mask = try typeMask(t, path: path)
        } else {
            mask = 0
            if v["properties"] != nil || v["required"] != nil || v["additionalProperties"] != nil { mask |= 1 }
            if v["items"] != nil || v["minItems"] != nil || v["maxItems"] != nil { mask |= 2 }
            if v["minLength"] != nil || v["maxLength"] != nil { mask |= 4 }
            if mask == 0 { mask = 0x7F }
        }
        let minLength = try count(v, "minLength", path: path) ?? 0
        let maxLength = try count(v, "maxLength", path: path)

        if v["enum"] != nil || v["const"] != nil {
            var values: [JSONValue]
            if let e = v["enum"] {
                guard case .array(let a) = e else { throw err("enum", path, "must be an array") }
                values = a
                if let c = v["const"] { values = values.filter { $0 == c } }
            } else {
                values = [v["const"]!]
            }
            var f = Flat()
            for value in values {
                let fits: Bool
                switch value {
                case .object: fits = mask & 1 != 0
                case .array: fits = mask & 2 != 0
                case .string(let s):
                    let n = s.unicodeScalars.count
                    fits = mask & 4 != 0 && n >= minLength && n <= (maxLength ?? Int.max)
                case .number(let t): fits = mask & 8 != 0 || (mask & 16 != 0 && Self.isIntegral(t))
                case .bool: fits = mask & 32 != 0
                case .null: fits = mask & 64 != 0
                }
                let lit = Self.literal(value)
                if fits && !f.literals.contains(where: { $0.bytes == lit.bytes }) { f.literals.append(lit) }
            }
            return newNode(.direct(f))
        }

        var f = Flat()
        if mask & 1 != 0 { f.obj = try buildObject(v, path: path) }
        if mask & 2 != 0 { f.arr = try buildArray(v, path: path) }
        if mask & 4 != 0, minLength <= (maxLength ?? Int.max) {
            f.hasString = true
            f.strMin = minLength
            f.strMax = maxLength ?? Int.max
        }
        if mask & 8 != 0 { f.number = 2 } else if mask & 16 != 0 { f.number = 1 }
        if mask & 32 != 0 { f.literals += [Self.literal(.bool(true)), Self.literal(.bool(false))] }
        if mask & 64 != 0 { f.literals.append(Self.literal(.null)) }
        return newNode(.direct(f))
    }

    private func checkName(_ name: String, path: String) throws {
        for b in name.utf8 where b < 0x20 && JSONBytes.shortEscape(b) == nil {
            throw err("properties", path, "property names with control characters other than \\b \\f \\n \\r \\t are not supported")
        }
    }

    private mutating func buildObject(_ v: JSONValue, path: String) throws -> Int {
        var names: [[UInt8]] = []
        var nodes: [Int] = []
        if let p = v["properties"] {
            guard case .object(let members) = p else { throw err("properties", path, "must be an object") }
            for m in members {
                let nb = Array(m.key.utf8)
                if names.contains(nb) { throw err("properties", path, "names '\(m.key)' twice") }
                try checkName(m.key, path: path)
                names.append(nb)
                nodes.append(try compile(m.value, path: "\(path)/properties/\(m.key)"))
            }
        }
        var required: Set<[UInt8]> = []
        var requiredOrder: [[UInt8]] = []
        if let r = v["required"] {
            guard case .array(let items) = r else { throw err("required", path, "must be an array of names") }
            for item in items {
                guard case .string(let s) = item else { throw err("required", path, "must be an array of names") }
                if required.insert(Array(s.utf8)).inserted { requiredOrder.append(Array(s.utf8)) }
            }
        }
        var additional: Int?
        switch v["additionalProperties"] {
        case nil, .bool(true)?: additional = makeAny()
        case .bool(false)?: additional = nil
        case let s?: additional = try compile(s, path: path + "/additionalProperties")
        }
        for name in requiredOrder where !names.contains(name) {
            try checkName(String(decoding: name, as: UTF8.self), path: path)
            names.append(name)
            nodes.append(additional ?? makeFalse())
        }
        if names.count > 64 {
            throw err("properties", path, "objects with more than 64 properties are not supported")
        }
        objects.append(RawObject(names: names, nodes: nodes, required: required, additional: additional))
        return objects.count - 1
    }

    private mutating func buildArray(_ v: JSONValue, path: String) throws -> Int {
        let items: Int
        switch v["items"] {
        case nil: items = makeAny()
        case .array?: throw err("items", path, "an array of item schemas (tuple form) is not supported")
        case let s?: items = try compile(s, path: path + "/items")
        }
        let minItems = try count(v, "minItems", path: path) ?? 0
        let maxItems = try count(v, "maxItems", path: path) ?? Int.max
        arrays.append(RawArray(items: items, minItems: minItems, maxItems: maxItems))
        return arrays.count - 1
    }

    private mutating func resolveRef(_ ref: String, path: String) throws -> Int {
        if let i = refMemo[ref] { return i }
        guard ref.hasPrefix("#") else {
            throw err("$ref", path, "only references inside this schema (starting with #) are supported, not '\(ref)'")
        }
        var pointer = String(ref.dropFirst())
        pointer = pointer.removingPercentEncoding ?? pointer
        var target = document
        if !pointer.isEmpty {
            guard pointer.hasPrefix("/") else {
                throw err("$ref", path, "'\(ref)' is not a JSON pointer (anchors are not supported)")
            }
            for raw in pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
                let key = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
                switch target {
                case .object:
                    guard let next = target[key] else { throw err("$ref", path, "cannot resolve '\(ref)'") }
                    target = next
                case .array(let items):
                    guard let i = Int(key), items.indices.contains(i) else { throw err("$ref", path, "cannot resolve '\(ref)'") }
                    target = items[i]
                default: throw err("$ref", path, "cannot resolve '\(ref)'")
                }
            }
        }
        let idx = newNode(.pending)
        refMemo[ref] = idx
        let t = try compile(target, path: ref)
        raw[idx] = .alias(t)
        return idx
    }

    // MARK: pass 2 — flatten

    private var flatDone: [UInt8] = []
    private var flats: [Flat] = []

    private mutating func flat(_ i: Int) throws -> Flat {
        if flatDone[i] == 2 { return flats[i] }
        if flatDone[i] == 1 {
            throw err("$ref", "", "a $ref / anyOf cycle that never enters an object or array cannot be compiled")
        }
        flatDone[i] = 1
        var result: Flat
        switch raw[i] {
        case .pending: throw err(nil, "", "internal error: unresolved schema node")
        case .direct(let f): result = f
        case .alias(let t): result = try flat(t)
        case .union(let alts, let exclusive, let path):
            result = try flat(alts[0])
            for a in alts.dropFirst() { result = try merge(result, try flat(a), exclusive: exclusive, path: path) }
        }
        flats[i] = result
        flatDone[i] = 2
        return result
    }

    private func merge(_ a: Flat, _ b: Flat, exclusive: Bool, path: String) throws -> Flat {
        let kw = exclusive ? "oneOf" : "anyOf"
        func overlap(_ what: String) -> JSONSchemaError {
            err(kw, path, "more than one alternative allows \(what); alternatives must differ in the kind of value " +
                "(object, array, string, number, boolean, null) unless one contains the other (anyOf only)")
        }
        var r = a
        if b.obj >= 0 {
            if r.obj >= 0 && (r.obj != b.obj || exclusive) { throw overlap("an object") }
            r.obj = b.obj
        }
        if b.arr >= 0 {
            if r.arr >= 0 && (r.arr != b.arr || exclusive) { throw overlap("an array") }
            r.arr = b.arr
        }
        if b.hasString {
            if r.hasString {
                if exclusive { throw overlap("a string") }
                if r.strMin <= b.strMin && r.strMax >= b.strMax {
                    // r already covers b
                } else if b.strMin <= r.strMin && b.strMax >= r.strMax {
                    r.strMin = b.strMin; r.strMax = b.strMax
                } else {
                    throw err(kw, path, "string alternatives whose length ranges do not nest are not supported")
                }
            } else {
                r.hasString = true; r.strMin = b.strMin; r.strMax = b.strMax
            }
        }
        if b.number != 0 {
            if r.number != 0 && exclusive { throw overlap("a number") }
            r.number = max(r.number, b.number)
        }
        for lit in b.literals {
            if r.literals.contains(where: { $0.bytes == lit.bytes }) {
                if exclusive { throw overlap("the value \(String(decoding: lit.bytes, as: UTF8.self))") }
                continue
            }
            r.literals.append(lit)
        }
        var kept: [Literal] = []
        for lit in r.literals {
            let text = String(decoding: lit.bytes, as: UTF8.self)
            switch lit.cls {
            case Self.clsString where r.hasString:
                if exclusive { throw overlap("the string \(text)") }
                guard lit.chars >= r.strMin && lit.chars <= r.strMax else {
                    throw err(kw, path, "the enum string \(text) and a string alternative it does not fit cannot be combined")
                }
            case Self.clsNumber where r.number != 0:
                if exclusive { throw overlap("the number \(text)") }
                guard r.number == 2 || lit.integerText else {
                    throw err(kw, path, "the enum number \(text) and an integer alternative cannot be combined")
                }
            case Self.clsObject where r.obj >= 0: throw overlap("an object")
            case Self.clsArray where r.arr >= 0: throw overlap("an array")
            default: kept.append(lit)
            }
        }
        r.literals = kept
        return r
    }

    // MARK: pass 3 — size, prune, build

    mutating func compileDocument() throws -> SchemaTables {
        let root = try compile(document, path: "")
        let n = raw.count
        flatDone = [UInt8](repeating: 0, count: n)
        flats = [Flat](repeating: Flat(), count: n)
        for i in 0..<n { _ = try flat(i) }

        let inf = Int.max / 4
        func add(_ a: Int, _ b: Int) -> Int { min(inf, a + b) }
        func mul(_ k: Int, _ c: Int) -> Int { c >= inf || (c > 0 && k > inf / c) ? inf : k * c }
        let quotedNames = objects.map { $0.names.map { JSONBytes.quoted($0).count } }
        var cost = [Int](repeating: inf, count: n)
        var objCost = [Int](repeating: inf, count: objects.count)
        var arrCost = [Int](repeating: inf, count: arrays.count)
        var changed = true
        var rounds = 0
        while changed && rounds < 100_000 {
            changed = false
            rounds += 1
            for (o, spec) in objects.enumerated() {
                var c = 2, k = 0
                for (j, name) in spec.names.enumerated() where spec.required.contains(name) {
                    c = add(c, add(quotedNames[o][j] + 1, cost[spec.nodes[j]]))
                    k += 1
                }
                objCost[o] = add(c, max(0, k - 1))
            }
            for (a, spec) in arrays.enumerated() {
                if spec.maxItems < spec.minItems { arrCost[a] = inf } else if spec.minItems == 0 { arrCost[a] = 2 } else {
                    arrCost[a] = add(2 + spec.minItems - 1, mul(spec.minItems, cost[spec.items]))
                }
            }
            for i in 0..<n {
                let f = flats[i]
                var c = inf
                if f.obj >= 0 { c = min(c, objCost[f.obj]) }
                if f.arr >= 0 { c = min(c, arrCost[f.arr]) }
                if f.hasString { c = min(c, add(2, f.strMin)) }
                if f.number != 0 { c = min(c, 1) }
                for lit in f.literals { c = min(c, lit.bytes.count) }
                if c < cost[i] { cost[i] = c; changed = true }
            }
        }
        guard cost[root] < inf else { throw err(nil, "", "no JSON value satisfies this schema") }

        var builder = ByteTrieBuilder()
        var finalObjects: [ObjectSpec] = []
        for spec in objects {
            var names: [[UInt8]] = [], nodes: [Int32] = []
            var required: UInt64 = 0, all: UInt64 = 0
            for (j, name) in spec.names.enumerated() where cost[spec.nodes[j]] < inf {
                let bit = UInt64(1) << UInt64(names.count)
                all |= bit
                if spec.required.contains(name) { required |= bit }
                names.append(name)
                nodes.append(Int32(spec.nodes[j]))
            }
            var keyTrie: Int32 = -1
            if !names.isEmpty {
                keyTrie = builder.newRoot()
                for (j, name) in names.enumerated() {
                    builder.insert(name, root: keyTrie, payload: Int32(j), bit: UInt64(1) << UInt64(j))
                }
            }
            var additional: Int32 = -1
            if let a = spec.additional, cost[a] < inf { additional = Int32(a) }
            finalObjects.append(ObjectSpec(names: names, nodes: nodes, required: required, allMask: all,
                                           additional: additional, keyTrie: keyTrie))
        }
        let finalArrays = arrays.map { spec in
            ArraySpec(items: Int32(spec.items), minItems: UInt32(clamping: spec.minItems),
                      maxItems: cost[spec.items] < inf ? UInt32(clamping: spec.maxItems) : 0)
        }
        var nodes: [SchemaNode] = []
        for i in 0..<n {
            let f = flats[i]
            var node = SchemaNode()
            if f.obj >= 0 && objCost[f.obj] < inf { node.objectSpec = Int32(f.obj) }
            if f.arr >= 0 && arrCost[f.arr] < inf { node.arraySpec = Int32(f.arr) }
            if f.hasString {
                node.hasString = true
                node.stringMin = UInt32(clamping: f.strMin)
                node.stringMax = UInt32(clamping: f.strMax)
            }
            node.number = f.number
            if !f.literals.isEmpty {
                let r = builder.newRoot()
                for lit in f.literals { builder.insert(lit.bytes, root: r, payload: 0, bit: 0) }
                node.literalRoot = r
            }
            nodes.append(node)
        }

        // Shortest value texts: pick the slot that achieves the node's cost; children cost strictly less.
        var texts = [[UInt8]?](repeating: nil, count: n)
        func text(_ i: Int) -> [UInt8] {
            if let t = texts[i] { return t }
            let f = flats[i]
            let c = cost[i]
            var out: [UInt8] = []
            if c >= inf {
                out = []
            } else if f.number != 0 && c == 1 {
                out = [UInt8(ascii: "0")]
            } else if let lit = f.literals.min(by: { $0.bytes.count < $1.bytes.count }), lit.bytes.count == c {
                out = lit.bytes
            } else if f.hasString && c == 2 + f.strMin {
                out = [0x22] + [UInt8](repeating: UInt8(ascii: "a"), count: f.strMin) + [0x22]
            } else if f.arr >= 0 && arrCost[f.arr] == c {
                let spec = finalArrays[f.arr]
                out = [UInt8(ascii: "[")]
                for k in 0..<Int(spec.minItems) {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    out += text(Int(spec.items))
                }
                out.append(UInt8(ascii: "]"))
            } else if f.obj >= 0 {
                let spec = finalObjects[f.obj]
                out = [UInt8(ascii: "{")]
                var first = true
                for (j, name) in spec.names.enumerated() where spec.required & (UInt64(1) << UInt64(j)) != 0 {
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    out += JSONBytes.quoted(name)
                    out.append(UInt8(ascii: ":"))
                    out += text(Int(spec.nodes[j]))
                }
                out.append(UInt8(ascii: "}"))
            }
            texts[i] = out
            return out
        }
        let minimal = (0..<n).map { text($0) }
        return SchemaTables(root: Int32(root), nodes: nodes, objects: finalObjects, arrays: finalArrays,
                            trie: builder.build(), minimalValue: minimal)
    }
}
