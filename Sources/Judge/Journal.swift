// The inspection journal, FILE.jsonl beside the output: a header line with the settings that decide
// the answers (judge model and mode), then one line per answered question, each written whole with one
// write(2) on an O_APPEND descriptor as soon as the answer arrives. A kill at any moment leaves at most
// a torn last line, which the next run cuts off; everything before it is kept, and the next run asks
// only what has no line yet.
import Foundation

public struct JournalEntry: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case knowledge, attributes }
    public enum Status: String, Codable, Sendable { case answered, unparsed }
    public var kind: Kind
    public var classIndex: Int
    public var className: String
    public var index: Int
    public var description: String
    public var status: Status
    /// "yes" / "no" for knowledge questions (nil when unparsed).
    public var verdict: String?
    public var explanation: String?
    /// Local judge: P(Yes) / (P(Yes) + P(No)) at the verdict token, when the server returned log-probabilities.
    public var pYes: Double?
    /// Attribute kinds named (attribute questions).
    public var attributes: [String]?
    public var attempts: Int
    /// The judge's full response body, as received.
    public var response: String

    enum CodingKeys: String, CodingKey {
        case kind, classIndex = "class_index", className = "class_name", index, description, status, verdict, explanation
        case pYes = "p_yes", attributes, attempts, response
    }

    public struct Key: Hashable, Sendable {
        public var kind: Kind, classIndex: Int, index: Int, description: String
        public init(kind: Kind, classIndex: Int, index: Int, description: String) {
            self.kind = kind; self.classIndex = classIndex; self.index = index; self.description = description
        }
    }
    public var key: Key { Key(kind: kind, classIndex: classIndex, index: index, description: description) }
}

public struct JournalHeader: Codable, Sendable, Equatable {
    public var ex2Inspect: Int = 1
    public var model: String
    public var judgeMode: JudgeMode
    public var dataset: String
    enum CodingKeys: String, CodingKey { case ex2Inspect = "ex2_inspect", model, judgeMode = "judge_mode", dataset }
}

public final class Journal: @unchecked Sendable {  // reason: appends serialised by `lock`
    public let url: URL
    public private(set) var entries: [JournalEntry.Key: JournalEntry] = [:]
    private let fd: Int32
    private let lock = NSLock()

    /// Opens (creating if needed) the journal; an existing one must have been written with the same header.
    public init(url: URL, header: JournalHeader) throws {
        self.url = url
        let path = url.path
        var existing: [JournalEntry] = []
        var hasHeader = false
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw JudgeError.journal(path: path, message: "cannot create its folder: \(error.localizedDescription)")
        }
        if FileManager.default.fileExists(atPath: path) {
            let (h, found, keep, size) = try Self.parse(url)
            if let h {
                var diffs: [String] = []
                if h.model != header.model { diffs.append("model \(h.model) (now \(header.model))") }
                if h.judgeMode != header.judgeMode { diffs.append("judge mode \(h.judgeMode.rawValue) (now \(header.judgeMode.rawValue))") }
                if h.dataset != header.dataset { diffs.append("dataset \(h.dataset) (now \(header.dataset))") }
                if !diffs.isEmpty {
                    throw JudgeError.journal(path: path, message: "was written with \(diffs.joined(separator: ", ")); its answers would mix judges: use another --output, or delete the journal to start over")
                }
                hasHeader = true
                existing = found
            }
            // A torn last line (killed mid-write) is cut off.
            if keep < size { truncate(path, off_t(keep)) }
        }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw JudgeError.journal(path: path, message: "cannot open for appending: \(String(cString: strerror(errno)))") }
        for e in existing { entries[e.key] = e }
        if !hasHeader { try writeLine(Self.encode(header)) }
    }

    deinit { close(fd) }

    /// The header and entries of a journal, read without opening it for writing (a torn last line is
    /// ignored); also the length of its whole lines and of the file.
    static func parse(_ url: URL) throws -> (JournalHeader?, [JournalEntry], Int, Int) {
        let path = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw JudgeError.journal(path: path, message: "cannot be read: \(error.localizedDescription)")
        }
        let keep = data.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        let lines = data.prefix(keep).split(separator: 0x0A)
        let dec = JSONDecoder()
        guard let first = lines.first else { return (nil, [], keep, data.count) }
        guard let h = try? dec.decode(JournalHeader.self, from: Data(first)) else {
            throw JudgeError.journal(path: path, message: "not an ex2 inspect journal (first line is not its header); choose another --output or remove it")
        }
        var out: [JournalEntry] = []
        for (n, line) in lines.dropFirst().enumerated() {
            guard let e = try? dec.decode(JournalEntry.self, from: Data(line)) else {
                throw JudgeError.journal(path: path, message: "line \(n + 2) is not a journal entry; the file was edited or damaged")
            }
            out.append(e)
        }
        return (h, out, keep, data.count)
    }

    /// A journal's header and its latest entry per question, for reading (the report).
    public static func read(_ url: URL) throws -> (header: JournalHeader?, entries: [JournalEntry]) {
        let (h, found, _, _) = try parse(url)
        var latest: [JournalEntry.Key: Int] = [:]
        var out: [JournalEntry] = []
        for e in found {
            if let i = latest[e.key] { out[i] = e } else { latest[e.key] = out.count; out.append(e) }
        }
        return (h, out)
    }

    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try enc.encode(value)
    }

    public func entry(_ key: JournalEntry.Key) -> JournalEntry? {
        lock.lock(); defer { lock.unlock() }
        return entries[key]
    }

    /// Appends one entry as a single write and records it.
    public func append(_ e: JournalEntry) throws {
        let line = try Self.encode(e)
        lock.lock(); defer { lock.unlock() }
        try writeLine(line)
        entries[e.key] = e
    }

    private func writeLine(_ line: Data) throws {
        var bytes = line
        bytes.append(0x0A)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n != bytes.count {
            throw JudgeError.journal(path: url.path, message: "write failed: \(String(cString: strerror(errno)))")
        }
    }
}
