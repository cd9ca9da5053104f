// GPT-2's reversible byte <-> printable-character map. Byte-level BPE vocabularies spell every
// byte as one visible Unicode character (printable Latin-1 stays itself, the rest are shifted to
// U+0100 and up, so a space becomes `Ġ` and a newline `Ċ`). The CLIP tokenizer shares it.

enum ByteLevel {
    /// byteToScalar[b] is the character standing for byte b.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var shifted: UInt32 = 0
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(256 + shifted)!
                shifted += 1
            }
        }
        return table
    }()

    /// The characters in GPT-2's `bytes_to_unicode()` insertion order (printable bytes first, then
    /// the shifted ones): the order in which CLIP's vocabulary lists them.
    static let orderedScalars: [Unicode.Scalar] = {
        let printable = (33...126).map { $0 } + (161...172).map { $0 } + (174...255).map { $0 }
        let rest = (0..<256).filter { !printable.contains($0) }
        return (printable + rest).map { byteToScalar[$0] }
    }()

    /// The inverse map; nil for characters that stand for no byte.
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        if v < 256 {
            let b = Int(v)
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            return printable ? UInt8(v) : nil
        }
        return scalarToByte[v]
    }

    private static let scalarToByte: [UInt32: UInt8] = {
        var m = [UInt32: UInt8]()
        for (b, s) in byteToScalar.enumerated() where s.value >= 256 { m[s.value] = UInt8(b) }
        return m
    }()

    /// HF's ByteLevel decoder: a piece whose characters all map to bytes becomes those bytes;
    /// any other piece (e.g. an added token written in plain Unicode) keeps its own UTF-8.
    static func appendBytes(of piece: String, to out: inout [UInt8]) {
        let start = out.count
        for s in piece.unicodeScalars {
            guard let b = byte(for: s) else {
                out.removeSubrange(start...)
                out.append(contentsOf: piece.utf8)
                return
            }
            out.append(b)
        }
    }
}
