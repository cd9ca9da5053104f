// Hand-written pre-tokenizer splitters: the regular expressions byte-level BPE models split text
// with (GPT-2, Llama-3, Qwen2, CLIP), written as small scanners over Unicode scalars. Regex
// engines with \p{L}/\p{N} classes are far too slow for megabytes of text; each scanner follows
// its regex alternative by alternative (leftmost alternative wins, quantifiers greedy, the
// `\s+(?!\S)` backtracking rule spelled out), and the tests check them against Hugging Face's
// own regex splits on the fixture texts.

/// The classes the patterns distinguish: \p{L}, \p{N}, \s (Unicode White_Space), everything else.
enum CharClass: UInt8 {
    case letter, number, space, other
}

enum CharClasses {
    /// Precomputed for the Basic Multilingual Plane; properties lookups are used above it.
    private static let bmp: [CharClass] = {
        var t = [CharClass](repeating: .other, count: 0x10000)
        for v in 0..<0x10000 {
            guard let s = Unicode.Scalar(UInt32(v)) else { continue }  // surrogates stay .other
            t[v] = compute(s)
        }
        return t
    }()

    private static func compute(_ s: Unicode.Scalar) -> CharClass {
        let p = s.properties
        if p.isWhitespace { return .space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    @inline(__always)
    static func of(_ v: UInt32) -> CharClass {
        if v < 0x10000 { return bmp[Int(v)] }
        return Unicode.Scalar(v).map(compute) ?? .other
    }

    static func table(_ s: [UInt32]) -> [CharClass] { s.map { of($0) } }
}

/// A splitting regex this package knows by heart.
enum SplitPattern: String, Sendable, CaseIterable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// As llama3 with `\p{N}` (one digit) instead of `\p{N}{1,3}`.
    case qwen2
    /// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
    /// (text between matches, i.e. whitespace, comes out as its own piece, as HF's "isolated" split does).
    case clip

    /// Recognises the regex strings found in tokenizer.json files (modulo the `?i:` spelling variants).
    init?(regex: String) {
        let r = regex
        if r == #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"# { self = .gpt2; return }
        let llamaHead1 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"#
        let llamaHead2 = #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|"#
        let tail = #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        for head in [llamaHead1, llamaHead2] {
            if r == head + #"\p{N}{1,3}"# + tail { self = .llama3; return }
            if r == head + #"\p{N}"# + tail { self = .qwen2; return }
        }
        if r == #"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"# {
            self = .clip; return
        }
        return nil
    }

    /// Appends the piece boundaries of `s` (scalar values) as ranges covering all of `s`, in order.
    func split(_ s: [UInt32], into out: inout [Range<Int>]) {
        let c = CharClasses.table(s)
        switch self {
        case .gpt2: Self.splitGPT2(s, c, &out)
        case .llama3: Self.splitLlama3(s, c, maxDigits: 3, &out)
        case .qwen2: Self.splitLlama3(s, c, maxDigits: 1, &out)
        case .clip: Self.splitCLIP(s, c, &out)
        }
    }

    func split(_ s: [UInt32]) -> [Range<Int>] {
        var out = [Range<Int>]()
        split(s, into: &out)
        return out
    }

    // MARK: scanners

    private static let apostrophe: UInt32 = 0x27
    private static let space: UInt32 = 0x20

    /// Length of a contraction (`'s`, `'re`, ...) at i, or 0.
    @inline(__always)
    private static func contraction(_ s: [UInt32], _ i: Int, ignoreCase: Bool) -> Int {
        guard s[i] == apostrophe, i + 1 < s.count else { return 0 }
        func lower(_ v: UInt32) -> UInt32 { ignoreCase && v >= 0x41 && v <= 0x5A ? v + 32 : v }
        let a = lower(s[i + 1])
        switch a {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        default: break
        }
        guard i + 2 < s.count else { return 0 }
        let b = lower(s[i + 2])
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 }  // re ve ll
        return 0
    }

    /// End of the run of class k starting at i.
    @inline(__always)
    private static func run(_ c: [CharClass], _ i: Int, _ k: CharClass, limit: Int = .max) -> Int {
        var j = i
        let n = c.count
        while j < n, c[j] == k, j - i < limit { j += 1 }
        return j
    }

    /// `\s+(?!\S)|\s+` at i (c[i] is whitespace).
    @inline(__always)
    private static func whitespace(_ c: [CharClass], _ i: Int) -> Int {
        let k = run(c, i, .space)
        if k == c.count || k - i == 1 { return k }
        return k - 1
    }

    private static func splitGPT2(_ s: [UInt32], _ c: [CharClass], _ out: inout [Range<Int>]) {
        let n = s.count
        var i = 0
        while i < n {
            var end: Int
            let k = contraction(s, i, ignoreCase: false)
            if k > 0 {
                end = i + k
            } else {
                var j = i
                if s[i] == space, i + 1 < n, c[i + 1] != .space { j = i + 1 }
                switch c[j] {
                case .letter: end = run(c, j, .letter)
                case .number: end = run(c, j, .number)
                case .other: end = run(c, j, .other)
                case .space: end = whitespace(c, i)
                }
            }
            out.append(i..<end)
            i = end
        }
    }

    private static func isCRLF(_ v: UInt32) -> Bool { v == 0x0A || v == 0x0D }

    private static func splitLlama3(_ s: [UInt32], _ c: [CharClass], maxDigits: Int, _ out: inout [Range<Int>]) {
        let n = s.count
        var i = 0
        while i < n {
            let end = llama3Match(s, c, i, maxDigits: maxDigits)
            out.append(i..<end)
            i = end
        }
    }

    private static func llama3Match(_ s: [UInt32], _ c: [CharClass], _ i: Int, maxDigits: Int) -> Int {
        let n = s.count
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        let k = contraction(s, i, ignoreCase: true)
        if k > 0 { return i + k }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if c[i] == .letter { return run(c, i, .letter) }
        if c[i] != .number, !isCRLF(s[i]), i + 1 < n, c[i + 1] == .letter { return run(c, i + 1, .letter) }
        // \p{N}{1,maxDigits}
        if c[i] == .number { return run(c, i, .number, limit: maxDigits) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var j = i
        if s[i] == space, i + 1 < n, c[i + 1] == .other { j = i + 1 }
        if c[j] == .other {
            var e = run(c, j, .other)
            while e < n, isCRLF(s[e]) { e += 1 }
            return e
        }
        // c[i] is whitespace from here on.
        // \s*[\r\n]+ : up to and including the last CR/LF of the whitespace run
        let wsEnd = run(c, i, .space)
        var p = wsEnd - 1
        while p >= i, !isCRLF(s[p]) { p -= 1 }
        if p >= i { return p + 1 }
        // \s+(?!\S)|\s+
        return whitespace(c, i)
    }

    private static func splitCLIP(_ s: [UInt32], _ c: [CharClass], _ out: inout [Range<Int>]) {
        let n = s.count
        var i = 0
        var gapStart = 0
        func flushGap(_ upTo: Int) { if gapStart < upTo { out.append(gapStart..<upTo) } }
        let marks: [[UInt32]] = ["<|startoftext|>", "<|endoftext|>"].map { $0.unicodeScalars.map(\.value) }
        while i < n {
            var end = 0
            for m in marks where s[i] == 0x3C && i + m.count <= n && Array(s[i..<(i + m.count)]) == m {
                end = i + m.count
                break
            }
            if end == 0 {
                let k = contraction(s, i, ignoreCase: false)
                if k > 0 {
                    end = i + k
                } else {
                    switch c[i] {
                    case .letter: end = run(c, i, .letter)
                    case .number: end = i + 1
                    case .other: end = run(c, i, .other)
                    case .space: end = 0
                    }
                }
            }
            if end == 0 {
                i += 1
                continue
            }
            flushGap(i)
            out.append(i..<end)
            i = end
            gapStart = end
        }
        flushGap(n)
    }
}

/// HF's Digits pre-tokenizer with `individual_digits: true` (and llama.cpp's `\p{N}` pre-split):
/// every number character is a piece of its own.
enum DigitSplitter {
    static func split(_ s: [UInt32], individual: Bool, into out: inout [Range<Int>]) {
        let n = s.count
        var i = 0
        while i < n {
            var e = i + 1
            if CharClasses.of(s[i]) == .number {
                if !individual { while e < n, CharClasses.of(s[e]) == .number { e += 1 } }
            } else {
                while e < n, CharClasses.of(s[e]) != .number { e += 1 }
            }
            out.append(i..<e)
            i = e
        }
    }
}
