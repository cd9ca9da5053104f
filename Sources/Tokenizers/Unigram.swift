// The Unigram language-model segmentation of SentencePiece (unigram_model.cc, EncodeOptimized) and of
// HF tokenizers' Unigram model: the best-scoring split of a normalised string into vocabulary pieces by
// Viterbi over its characters. A piece's score is its log-probability (a user-defined piece scores
// length * max_score - 0.1); a character no piece starts with becomes <unk> at min_score - 10. Ties keep the
// first path found, as both implementations do. SentencePiece adds scores in Float, tokenizers in Double;
// `doublePrecision` picks which, so near-ties resolve as the reference does.
import Foundation

public struct UnigramModel: Sendable {
    /// Piece bytes (UTF-8) -> (id, score, user-defined).
    let pieces: [[UInt8]: Int32]
    let scores: [Float]
    let userDefined: Set<Int32>
    let unkId: Int32
    let maxPieceBytes: Int
    let minScore: Float, maxScore: Float
    public let doublePrecision: Bool
    /// Merge consecutive unknown characters into one <unk> (tokenizers' fuse_unk; SentencePiece keeps each).
    public let fuseUnknown: Bool

    /// `types`: SentencePiece piece types (1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte);
    /// only normal and user-defined pieces take part in segmentation.
    public init(pieces: [String], scores: [Float], types: [UInt8], unkId: Int, doublePrecision: Bool, fuseUnknown: Bool) {
        var map: [[UInt8]: Int32] = [:]
        var user = Set<Int32>()
        var longest = 1
        var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
        for (i, p) in pieces.enumerated() {
            let t = types[i]
            guard t == 1 || t == 4 else { continue }
            let b = Array(p.utf8)
            guard !b.isEmpty, map[b] == nil else { continue }
            map[b] = Int32(i)
            longest = max(longest, b.count)
            if t == 4 { user.insert(Int32(i)) }
            lo = min(lo, scores[i]); hi = max(hi, scores[i])
        }
        self.pieces = map
        self.scores = scores
        userDefined = user
        self.unkId = Int32(unkId)
        maxPieceBytes = longest
        minScore = lo == .greatestFiniteMagnitude ? 0 : lo
        maxScore = hi == -.greatestFiniteMagnitude ? 0 : hi
        self.doublePrecision = doublePrecision
        self.fuseUnknown = fuseUnknown
    }

    /// The ids of the best segmentation of `s` (UTF-8 bytes, already normalised).
    public func encode(_ s: [UInt8]) -> [Int32] {
        let n = s.count
        if n == 0 { return [] }
        var bestScore = [Double](repeating: 0, count: n + 1)
        var bestFloat = [Float](repeating: 0, count: n + 1)
        var startsAt = [Int](repeating: -1, count: n + 1)
        var ids = [Int32](repeating: -1, count: n + 1)
        let unkScore = minScore - 10
        var pos = 0
        while pos < n {
            var charLen = utf8Length(s[pos...])
            if charLen == 0 { charLen = 1 }
            let tillHere = bestScore[pos], tillHereF = bestFloat[pos]
            var hasSingle = false
            var key: [UInt8] = []
            key.reserveCapacity(maxPieceBytes)
            var end = pos
            while end < n, end - pos < maxPieceBytes {
                key.append(s[end])
                end += 1
                guard let id = pieces[key] else { continue }
                let length = end - pos
                // A piece must end on a character boundary; keys are whole pieces, so a match always does.
                let score = userDefined.contains(id) ? Float(length) * maxScore - 0.1 : scores[Int(id)]
                if doublePrecision {
                    let cand = Double(score) + tillHere
                    if startsAt[end] == -1 || cand > bestScore[end] { bestScore[end] = cand; startsAt[end] = pos; ids[end] = id }
                } else {
                    let cand = score + tillHereF
                    if startsAt[end] == -1 || cand > bestFloat[end] { bestFloat[end] = cand; startsAt[end] = pos; ids[end] = id }
                }
                if length == charLen { hasSingle = true }
            }
            if !hasSingle {
                let end = min(n, pos + charLen)
                if doublePrecision {
                    let cand = Double(unkScore) + tillHere
                    if startsAt[end] == -1 || cand > bestScore[end] { bestScore[end] = cand; startsAt[end] = pos; ids[end] = unkId }
                } else {
                    let cand = unkScore + tillHereF
                    if startsAt[end] == -1 || cand > bestFloat[end] { bestFloat[end] = cand; startsAt[end] = pos; ids[end] = unkId }
                }
            }
            pos += charLen
        }
        var out: [Int32] = []
        var end = n
        while end > 0 {
            let start = startsAt[end]
            if start < 0 { break }  // unreachable: every character has at least the unknown edge
            out.append(ids[end])
            end = start
        }
        out.reverse()
        if fuseUnknown {
            var fused: [Int32] = []
            for id in out where !(id == unkId && fused.last == unkId) { fused.append(id) }
            return fused
        }
        return out
    }
}
