// A one-line progress bar on stderr for the long stages of the CLI (embedding a dataset, generating):
// count / total, rate and time left, redrawn at most ten times a second and only when stderr is a
// terminal. When stderr is a file or a pipe (logs, CI) nothing is drawn until `finish`, which writes
// one plain summary line, so logs stay readable.
import Foundation

final class ProgressBar {
    let label: String
    let unit: String
    private let start = Date()
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastDraw = Date.distantPast
    private var done = 0, total = 0
    /// Work done by an earlier run (resumed), left out of the rate.
    private let resumed: Int
    private var drewSomething = false
    private var finished = false

    init(label: String, unit: String = "items", resumed: Int = 0) {
        self.label = label
        self.unit = unit
        self.resumed = resumed
    }

    /// Records progress; draws when on a terminal and 0.1 s have passed (or the work is complete).
    func update(_ done: Int, of total: Int) {
        self.done = done
        self.total = total
        guard isTerminal, total > 0 else { return }
        let now = Date()
        guard done >= total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        write("\r" + line(width: 24) + "\u{1B}[K")
        drewSomething = true
    }

    /// Ends the bar: a newline after the drawn bar, or the one summary line when nothing was drawn.
    func finish() {
        guard !finished else { return }
        finished = true
        if drewSomething {
            write("\r" + line(width: 24) + "\u{1B}[K\n")
        } else if total > 0 {
            write(line(width: 0) + "\n")
        }
    }

    func line(width: Int) -> String {
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done - resumed) / elapsed : 0
        var s = label
        if width > 0 {
            let filled = total > 0 ? min(width, done * width / total) : 0
            s += " [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
        }
        s += " \(done)/\(total) \(unit)"
        s += String(format: ", %.1f/s", rate)
        if done < total, rate > 0 {
            s += ", " + Self.clock(Double(total - done) / rate) + " left"
        } else {
            s += ", " + Self.clock(elapsed)
        }
        return s
    }

    static func clock(_ seconds: Double) -> String {
        let t = Int(seconds.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}

/// A progress bar fed from concurrent tasks (the judge's and remote describing's requests): every call
/// under a lock; a new label ends the bar in progress and starts another, the count of its first update
/// taken as resumed work (the callers report the state before asking anything).
final class LockedBar: @unchecked Sendable {  // reason: every access under lock
    private let lock = NSLock()
    private var bar: ProgressBar?

    func update(label: String, unit: String, _ done: Int, of total: Int) {
        lock.lock(); defer { lock.unlock() }
        if let b = bar, b.label != label { b.finish(); bar = nil }
        if bar == nil { bar = ProgressBar(label: label, unit: unit, resumed: done) }
        bar!.update(done, of: total)
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        bar?.finish()
        bar = nil
    }
}
