// The report: one self-contained HTML file (inline CSS and SVG, no network, readable without
// JavaScript; a few lines of script only add filtering to the table of descriptions), and the same
// findings as a short Markdown summary for the terminal. Every number shown carries data-key and
// data-value attributes naming the figure of the JSON analysis it comes from, so that a test can check
// the page against `ex2 report --format json`.
import Foundation

public enum HTMLReport {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters (other than tab/newline) cannot appear in HTML text.
                if ch.value < 0x20 && ch != "\n" && ch != "\t" { out += "\u{FFFD}" } else { out.unicodeScalars.append(ch) }
            }
        }
        return out
    }

    static func pct(_ x: Double?) -> String { x.map { String(format: "%.1f%%", 100 * $0) } ?? "–" }
    static func num(_ x: Double?, _ f: String = "%.3f") -> String { x.map { String(format: f, $0) } ?? "–" }
    static func raw(_ x: Double?) -> String { x.map { String(format: "%.17g", $0) } ?? "" }

    /// A figure: the shown text with the JSON key and raw value it comes from.
    static func fig(_ key: String, _ value: Double?, _ shown: String) -> String {
        "<span class=\"fig\" data-key=\"\(escape(key))\" data-value=\"\(raw(value))\">\(escape(shown))</span>"
    }
    static func fig(_ key: String, _ value: Int) -> String {
        "<span class=\"fig\" data-key=\"\(escape(key))\" data-value=\"\(value)\">\(value)</span>"
    }

    // MARK: sentences

    static func isRandomVLM(_ a: RunAnalysis) -> Bool { a.notes["vlm_is_random"] == "true" }

    /// Warnings that must be read before the figures.
    public static func warnings(_ a: RunAnalysis) -> [String] {
        var w: [String] = []
        if isRandomVLM(a) {
            w.append("The VLM (\(a.vlm)) is a randomly initialised CLIP, not a pretrained one (none can be installed here): its rewards, and so what training taught the policy, mean nothing. Set EX2_VLM to a pretrained CLIP for real findings.")
        }
        if let j = a.notes["judge_note"] { w.append(j) }
        if a.judge == nil { w.append("No judge answers yet: run `ex2 inspect --run \(a.run)` for the informative/spurious figures.") }
        return w
    }

    public static func sentences(_ a: RunAnalysis, comparisons: [RunComparison] = []) -> [String] {
        var s: [String] = []
        let o = a.overall
        if let share = o.informativeShare {
            s.append("Of the \(o.informative + o.spurious) descriptions judged, \(pct(1 - share)) are spurious (they add nothing about the concept) and \(pct(share)) are informative.")
        }
        if let p = a.patterns.first {
            s.append("The most common spurious pattern is \u{201C}\(p.pattern)\u{201D} (\(p.count) descriptions over \(p.concepts) concept\(p.concepts == 1 ? "" : "s")).")
        }
        let used = a.attributes.filter { $0.count > 0 }.sorted { $0.count > $1.count }
        if !used.isEmpty {
            let top = used.prefix(3).map { "\($0.kind) (\(pct($0.share)))" }.joined(separator: ", ")
            s.append("Among the informative descriptions, the attribute kinds used most are \(top).")
        }
        let r = a.rewardByVerdict
        if let i = r.informativeMean, let sp = r.spuriousMean {
            let cmp = sp > i ? "higher than" : (sp < i ? "lower than" : "equal to")
            s.append("The VLM rewards spurious descriptions \(cmp) informative ones: mean reward \(num(sp)) vs \(num(i)).")
        }
        if let first = a.training.first, let last = a.training.last, a.training.count > 1,
           let r0 = first.rewardMean, let r1 = last.rewardMean {
            s.append("Over \(a.training.count) PPO steps the mean reward went from \(num(r0)) to \(num(r1))\(last.kl.map { "; the KL to the initial policy ended at \(num($0))" } ?? "").")
        }
        for c in comparisons {
            let sig = c.attributes.filter { ($0.low ?? 0) > 0 || ($0.high ?? 0) < 0 }
            if sig.isEmpty {
                s.append("Against \(c.other), no attribute kind's share differs beyond its \(Int(c.level * 100))% bootstrap interval.")
            } else {
                let parts = sig.map { String(format: "%@ %+.1f points [%+.1f, %+.1f]", $0.kind, 100 * ($0.difference ?? 0), 100 * ($0.low ?? 0), 100 * ($0.high ?? 0)) }
                s.append("\(c.other) differs from \(c.base) in \(parts.joined(separator: "; ")) (\(Int(c.level * 100))% bootstrap intervals).")
            }
        }
        return s
    }

    // MARK: Markdown

    public static func markdown(_ a: RunAnalysis, comparisons: [RunComparison] = []) -> String {
        var m = "# EX2 report: \(a.run)\n\n"
        m += "policy `\(a.policy)`, VLM `\(a.vlm)`, dataset `\(a.dataset)`\(a.judge.map { ", judge `\($0)` (\(a.judgeMode ?? "?") mode)" } ?? "")\n\n"
        for w in warnings(a) { m += "> **Note:** \(w)\n\n" }
        for s in sentences(a, comparisons: comparisons) { m += "- \(s)\n" }
        m += "\n| concept | informative | spurious | unjudged | share informative | mean reward |\n|---|---:|---:|---:|---:|---:|\n"
        for c in a.concepts {
            m += "| \(c.className) | \(c.share.informative) | \(c.share.spurious) | \(c.share.unjudged) | \(pct(c.share.informativeShare)) | \(num(c.meanReward)) |\n"
        }
        m += "| **all** | \(a.overall.informative) | \(a.overall.spurious) | \(a.overall.unjudged) | \(pct(a.overall.informativeShare)) | |\n"
        return m
    }

    // MARK: charts

    static let palette = (informative: "#2b8a3e", spurious: "#c92a2a", unjudged: "#adb5bd", accent: "#1c7ed6")

    /// Stacked horizontal bars of informative / spurious / unjudged per concept.
    static func shareChart(_ a: RunAnalysis) -> String {
        let rowH = 22, labelW = 180, barW = 420, h = rowH * (a.concepts.count + 1) + 10
        var svg = "<svg role=\"img\" aria-label=\"share of informative and spurious descriptions per concept\" viewBox=\"0 0 \(labelW + barW + 70) \(h)\" width=\"\(labelW + barW + 70)\" height=\"\(h)\">"
        let rows = a.concepts.map { ($0.className, $0.share) } + [("all concepts", a.overall)]
        for (i, (name, s)) in rows.enumerated() {
            let y = 5 + i * rowH
            svg += "<text x=\"\(labelW - 6)\" y=\"\(y + 15)\" text-anchor=\"end\" class=\"lbl\">\(escape(String(name.prefix(28))))</text>"
            let total = max(1, s.total)
            var x = Double(labelW)
            for (n, color, what) in [(s.informative, palette.informative, "informative"), (s.spurious, palette.spurious, "spurious"),
                                     (s.unjudged, palette.unjudged, "unjudged")] where n > 0 {
                let w = Double(barW) * Double(n) / Double(total)
                svg += "<rect x=\"\(String(format: "%.1f", x))\" y=\"\(y + 2)\" width=\"\(String(format: "%.1f", w))\" height=\"\(rowH - 6)\" fill=\"\(color)\"><title>\(escape(name)): \(n) \(what)</title></rect>"
                x += w
            }
            svg += "<text x=\"\(labelW + barW + 6)\" y=\"\(y + 15)\" class=\"lbl\">\(pct(s.informativeShare))</text>"
        }
        return svg + "</svg>"
    }

    static func barChart(_ items: [(String, Double?)], label: String) -> String {
        let rowH = 22, labelW = 150, barW = 360, h = rowH * items.count + 10
        var svg = "<svg role=\"img\" aria-label=\"\(escape(label))\" viewBox=\"0 0 \(labelW + barW + 70) \(h)\" width=\"\(labelW + barW + 70)\" height=\"\(h)\">"
        for (i, (name, v)) in items.enumerated() {
            let y = 5 + i * rowH
            svg += "<text x=\"\(labelW - 6)\" y=\"\(y + 15)\" text-anchor=\"end\" class=\"lbl\">\(escape(name))</text>"
            let w = Double(barW) * max(0, min(1, v ?? 0))
            svg += "<rect x=\"\(labelW)\" y=\"\(y + 2)\" width=\"\(String(format: "%.1f", w))\" height=\"\(rowH - 6)\" fill=\"\(palette.accent)\"/>"
            svg += "<text x=\"\(String(format: "%.1f", Double(labelW) + w + 6))\" y=\"\(y + 15)\" class=\"lbl\">\(pct(v))</text>"
        }
        return svg + "</svg>"
    }

    static func lineChart(_ points: [(Int, Double)], title: String) -> String {
        let w = 300.0, h = 160.0, pad = 36.0
        var svg = "<figure class=\"curve\"><svg role=\"img\" aria-label=\"\(escape(title))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" width=\"\(Int(w))\" height=\"\(Int(h))\">"
        guard let lo = points.map(\.1).min(), let hi = points.map(\.1).max(), let s0 = points.first?.0, let s1 = points.last?.0 else {
            return svg + "</svg><figcaption>\(escape(title)): no data</figcaption></figure>"
        }
        let span = hi - lo > 1e-12 ? hi - lo : 1
        func px(_ s: Int) -> Double { pad + (w - pad - 10) * (s1 == s0 ? 0.5 : Double(s - s0) / Double(s1 - s0)) }
        func py(_ v: Double) -> Double { h - 24 - (h - 40) * (v - lo) / span }
        svg += "<line x1=\"\(pad)\" y1=\"\(h - 24)\" x2=\"\(w - 10)\" y2=\"\(h - 24)\" class=\"axis\"/><line x1=\"\(pad)\" y1=\"16\" x2=\"\(pad)\" y2=\"\(h - 24)\" class=\"axis\"/>"
        svg += "<text x=\"\(pad - 4)\" y=\"20\" text-anchor=\"end\" class=\"tick\">\(num(hi, "%.3g"))</text><text x=\"\(pad - 4)\" y=\"\(h - 24)\" text-anchor=\"end\" class=\"tick\">\(num(lo, "%.3g"))</text>"
        svg += "<text x=\"\(pad)\" y=\"\(h - 8)\" class=\"tick\">step \(s0)</text><text x=\"\(w - 10)\" y=\"\(h - 8)\" text-anchor=\"end\" class=\"tick\">step \(s1)</text>"
        let path = points.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
        svg += "<polyline fill=\"none\" stroke=\"\(palette.accent)\" stroke-width=\"2\" points=\"\(path)\"/>"
        for p in points { svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%@\"><title>step %d: %.4g</title></circle>", px(p.0), py(p.1), palette.accent, p.0, p.1) }
        return svg + "</svg><figcaption>\(escape(title))</figcaption></figure>"
    }

    /// Differences with their intervals, around a zero line.
    static func forestPlot(_ c: RunComparison) -> String {
        let rows = c.attributes.filter { $0.difference != nil }
        let rowH = 22, labelW = 150, plotW = 360, h = rowH * rows.count + 30
        let extent = max(0.05, rows.map { max(abs($0.low ?? 0), abs($0.high ?? 0)) }.max() ?? 0.05)
        func x(_ v: Double) -> Double { Double(labelW) + Double(plotW) * (0.5 + 0.5 * v / extent) }
        var svg = "<svg role=\"img\" aria-label=\"attribute share differences, \(escape(c.other)) minus \(escape(c.base))\" viewBox=\"0 0 \(labelW + plotW + 20) \(h)\" width=\"\(labelW + plotW + 20)\" height=\"\(h)\">"
        svg += String(format: "<line x1=\"%.1f\" y1=\"4\" x2=\"%.1f\" y2=\"%d\" class=\"axis\"/>", x(0), x(0), h - 20)
        svg += String(format: "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%+.0f pts</text><text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">0</text><text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%+.0f pts</text>",
                      x(-extent), h - 6, -100 * extent, x(0), h - 6, x(extent), h - 6, 100 * extent)
        for (i, d) in rows.enumerated() {
            let y = 5 + i * rowH + 10
            svg += "<text x=\"\(labelW - 6)\" y=\"\(y + 4)\" text-anchor=\"end\" class=\"lbl\">\(escape(d.kind))</text>"
            svg += String(format: "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#495057\" stroke-width=\"2\"/>", x(d.low ?? 0), y, x(d.high ?? 0), y)
            svg += String(format: "<circle cx=\"%.1f\" cy=\"%d\" r=\"4\" fill=\"%@\"/>", x(d.difference ?? 0), y, palette.accent)
        }
        return svg + "</svg>"
    }

    // MARK: page

    static let css = """
        body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212529;max-width:1100px;margin:0 auto;padding:24px}
        h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #dee2e6;padding-bottom:.2em}
        .meta{color:#495057}.warn{background:#fff3bf;border-left:4px solid #f08c00;padding:8px 12px;margin:10px 0}
        .summary li{margin:.3em 0}table{border-collapse:collapse;width:100%;margin:.6em 0}
        th,td{border-bottom:1px solid #e9ecef;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f8f9fa}
        td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.lbl{font-size:12px;fill:#343a40}.tick{font-size:10px;fill:#868e96}
        .axis{stroke:#adb5bd;stroke-width:1}.curve{display:inline-block;margin:0 12px 12px 0}figcaption{font-size:13px;color:#495057}
        .v-informative{color:#2b8a3e;font-weight:600}.v-spurious{color:#c92a2a;font-weight:600}.v-unparsed,.v-none{color:#868e96}
        .legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}
        .wide{overflow-x:auto}#filter{width:100%;padding:6px;font-size:14px;margin:6px 0;box-sizing:border-box}code{background:#f1f3f5;padding:0 3px}
        """

    public static func render(_ a: RunAnalysis, others: [RunAnalysis] = [], comparisons: [RunComparison] = []) -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        h += "<title>EX2 report: \(escape(a.run))</title><style>\(css)</style></head><body>"
        h += "<h1>What \(escape(a.vlm)) prefers about the \(escape(a.dataset)) concepts</h1>"
        h += "<p class=\"meta\">Run <code>\(escape(a.run))</code> · policy <code>\(escape(a.policy))</code> · VLM <code>\(escape(a.vlm))</code>"
        if let j = a.judge { h += " · judge <code>\(escape(j))</code> (\(escape(a.judgeMode ?? "?")) mode)" }
        h += "</p>"
        for w in warnings(a) { h += "<p class=\"warn\"><strong>Note:</strong> \(escape(w))</p>" }
        h += "<h2>Summary</h2><ul class=\"summary\">"
        for s in sentences(a, comparisons: comparisons) { h += "<li>\(escape(s))</li>" }
        h += "</ul>"

        // Shares.
        h += "<h2 id=\"shares\">Informative vs spurious</h2>"
        h += "<p>Overall: \(fig("overall.informative", a.overall.informative)) informative, \(fig("overall.spurious", a.overall.spurious)) spurious, \(fig("overall.unjudged", a.overall.unjudged)) not judged; share informative \(fig("overall.informative_share", a.overall.informativeShare, pct(a.overall.informativeShare))).</p>"
        h += "<p class=\"legend\"><span><i class=\"sw\" style=\"background:\(palette.informative)\"></i>informative</span><span><i class=\"sw\" style=\"background:\(palette.spurious)\"></i>spurious</span><span><i class=\"sw\" style=\"background:\(palette.unjudged)\"></i>not judged</span></p>"
        h += shareChart(a)
        h += "<table><thead><tr><th>concept</th><th class=\"n\">informative</th><th class=\"n\">spurious</th><th class=\"n\">not judged</th><th class=\"n\">share informative</th><th class=\"n\">mean reward</th></tr></thead><tbody>"
        for (i, c) in a.concepts.enumerated() {
            h += "<tr><td>\(escape(c.className))</td><td class=\"n\">\(fig("concepts.\(i).share.informative", c.share.informative))</td><td class=\"n\">\(fig("concepts.\(i).share.spurious", c.share.spurious))</td><td class=\"n\">\(fig("concepts.\(i).share.unjudged", c.share.unjudged))</td><td class=\"n\">\(fig("concepts.\(i).share.informative_share", c.share.informativeShare, pct(c.share.informativeShare)))</td><td class=\"n\">\(fig("concepts.\(i).mean_reward", c.meanReward, num(c.meanReward)))</td></tr>"
        }
        h += "</tbody></table>"

        // Patterns.
        h += "<h2 id=\"patterns\">Recurring spurious patterns</h2>"
        if a.patterns.isEmpty {
            h += "<p>No spurious opening recurs (or nothing was judged spurious).</p>"
        } else {
            h += "<p>Spurious descriptions with the concept name masked, grouped by their first \(Patterns.words) words.</p><table><thead><tr><th>pattern</th><th class=\"n\">descriptions</th><th class=\"n\">concepts</th><th>examples</th></tr></thead><tbody>"
            for (i, p) in a.patterns.enumerated() {
                h += "<tr><td><code>\(escape(p.pattern))</code></td><td class=\"n\">\(fig("patterns.\(i).count", p.count))</td><td class=\"n\">\(fig("patterns.\(i).concepts", p.concepts))</td><td>\(p.examples.map(escape).joined(separator: "<br>"))</td></tr>"
            }
            h += "</tbody></table>"
        }

        // Attributes.
        h += "<h2 id=\"attributes\">Attribute kinds in the informative descriptions</h2>"
        if a.attributeAnswered == 0 {
            h += "<p>No attribute answers: run <code>ex2 inspect --run \(escape(a.run)) --attributes</code>.</p>"
        } else {
            h += "<p>Share of the \(fig("attribute_answered", a.attributeAnswered)) informative descriptions with an attribute answer that mention each kind (a description may mention several).</p>"
            h += barChart(a.attributes.map { ($0.kind, $0.share) }, label: "attribute kinds")
            h += "<div class=\"wide\"><table><thead><tr><th>kind</th><th class=\"n\">descriptions</th><th class=\"n\">share</th>"
            for c in a.concepts { h += "<th class=\"n\">\(escape(c.className))</th>" }
            h += "</tr></thead><tbody>"
            for (i, k) in a.attributes.enumerated() {
                h += "<tr><td>\(escape(k.kind))</td><td class=\"n\">\(fig("attributes.\(i).count", k.count))</td><td class=\"n\">\(fig("attributes.\(i).share", k.share, pct(k.share)))</td>"
                for c in a.concepts { h += "<td class=\"n\">\(c.attributeCounts[k.kind] ?? 0)</td>" }
                h += "</tr>"
            }
            h += "</tbody></table></div>"
        }

        // Reward.
        h += "<h2 id=\"reward\">Reward by verdict</h2>"
        let r = a.rewardByVerdict
        h += "<p>Mean VLM reward of informative descriptions: \(fig("reward_by_verdict.informative_mean", r.informativeMean, num(r.informativeMean))) (\(fig("reward_by_verdict.informative_count", r.informativeCount))); of spurious ones: \(fig("reward_by_verdict.spurious_mean", r.spuriousMean, num(r.spuriousMean))) (\(fig("reward_by_verdict.spurious_count", r.spuriousCount))).</p>"
        h += "<h3>Top-rewarded descriptions</h3><table><thead><tr><th>concept</th><th>description</th><th>verdict</th><th class=\"n\">reward</th></tr></thead><tbody>"
        for c in a.concepts {
            for i in c.topRewarded {
                let d = a.descriptions[i]
                h += "<tr><td>\(escape(c.className))</td><td>\(escape(d.text))</td><td class=\"v-\(d.verdict ?? "none")\">\(escape(d.verdict ?? "not judged"))</td><td class=\"n\">\(num(d.reward))</td></tr>"
            }
        }
        h += "</tbody></table>"

        // Training.
        h += "<h2 id=\"training\">Training</h2>"
        if a.training.isEmpty {
            h += "<p>No metrics.jsonl in the run.</p>"
        } else {
            h += lineChart(a.training.compactMap { p in p.rewardMean.map { (p.step, $0) } }, title: "mean reward per step")
            h += lineChart(a.training.compactMap { p in p.kl.map { (p.step, $0) } }, title: "KL to the initial policy")
            h += lineChart(a.training.compactMap { p in p.klCoef.map { (p.step, $0) } }, title: "KL coefficient")
        }

        // Comparison.
        if !comparisons.isEmpty {
            h += "<h2 id=\"compare\">Compared runs</h2>"
            h += "<table><thead><tr><th>figure</th><th>\(escape(a.run))</th>"
            for o in others { h += "<th>\(escape(o.run))</th>" }
            h += "</tr></thead><tbody><tr><td>VLM</td><td>\(escape(a.vlm))</td>"
            for o in others { h += "<td>\(escape(o.vlm))</td>" }
            h += "</tr>"
            // Every figure side by side: shares, rewards by verdict, per-concept shares, attribute kinds.
            func row(_ label: String, _ f: (RunAnalysis) -> String) {
                h += "<tr><td>\(escape(label))</td><td class=\"n\">\(escape(f(a)))</td>"
                for o in others { h += "<td class=\"n\">\(escape(f(o)))</td>" }
                h += "</tr>"
            }
            row("descriptions judged") { "\($0.overall.informative + $0.overall.spurious)" }
            row("share informative") { pct($0.overall.informativeShare) }
            row("mean reward, informative") { num($0.rewardByVerdict.informativeMean) }
            row("mean reward, spurious") { num($0.rewardByVerdict.spuriousMean) }
            row("top spurious pattern") { $0.patterns.first.map { "\($0.pattern) (\($0.count))" } ?? "–" }
            for (ci, c) in a.concepts.enumerated() {
                row("share informative: \(c.className)") { r in
                    pct((r.concepts.first { $0.className == c.className } ?? (ci < r.concepts.count ? r.concepts[ci] : nil))?.share.informativeShare)
                }
            }
            if !a.training.isEmpty {
                row("mean reward at the last PPO step") { $0.training.last?.rewardMean.map { num($0) } ?? "–" }
            }
            for k in a.attributes {
                row("attribute: \(k.kind)") { r in pct(r.attributes.first { $0.kind == k.kind }?.share) }
            }
            h += "</tbody></table>"
            for (ci, c) in comparisons.enumerated() {
                h += "<h3>\(escape(c.other)) minus \(escape(c.base))</h3>"
                h += "<p>Share informative: \(fig("comparisons.\(ci).informative_difference", c.informativeDifference, c.informativeDifference.map { String(format: "%+.1f points", 100 * $0) } ?? "–")) (\(Int(c.level * 100))% interval \(num(c.informativeLow.map { 100 * $0 }, "%+.1f")) to \(num(c.informativeHigh.map { 100 * $0 }, "%+.1f")), \(c.resamples) bootstrap resamples).</p>"
                h += forestPlot(c)
                h += "<table><thead><tr><th>kind</th><th class=\"n\">\(escape(c.base))</th><th class=\"n\">\(escape(c.other))</th><th class=\"n\">difference</th><th class=\"n\">\(Int(c.level * 100))% interval</th></tr></thead><tbody>"
                for (i, d) in c.attributes.enumerated() {
                    h += "<tr><td>\(escape(d.kind))</td><td class=\"n\">\(pct(d.baseShare))</td><td class=\"n\">\(pct(d.otherShare))</td><td class=\"n\">\(fig("comparisons.\(ci).attributes.\(i).difference", d.difference, d.difference.map { String(format: "%+.1f pts", 100 * $0) } ?? "–"))</td><td class=\"n\">\(d.low.map { String(format: "%+.1f", 100 * $0) } ?? "–") to \(d.high.map { String(format: "%+.1f", 100 * $0) } ?? "–")</td></tr>"
                }
                h += "</tbody></table>"
            }
        }

        // Every description.
        h += "<h2 id=\"descriptions\">Every description</h2>"
        h += "<input id=\"filter\" type=\"search\" placeholder=\"Filter by concept, text, verdict or attribute…\" aria-label=\"filter descriptions\" hidden>"
        h += "<table id=\"all\"><thead><tr><th>concept</th><th class=\"n\">template</th><th>description</th><th>verdict</th><th class=\"n\">P(Yes)</th><th class=\"n\">reward</th><th>attributes</th><th>judge's explanation</th></tr></thead><tbody>"
        for d in a.descriptions {
            h += "<tr><td>\(escape(d.className))</td><td class=\"n\">\(d.template)</td><td>\(escape(d.text))</td><td class=\"v-\(d.verdict ?? "none")\">\(escape(d.verdict ?? "not judged"))</td><td class=\"n\">\(num(d.pYes, "%.2f"))</td><td class=\"n\">\(num(d.reward))</td><td>\(escape((d.attributes ?? []).joined(separator: ", ")))</td><td>\(escape(d.explanation ?? ""))</td></tr>"
        }
        h += "</tbody></table>"
        h += "<p class=\"meta\">Written by ex2 report. Spurious: the judge found nothing in the description that teaches about the concept (the EX2 inspection question).</p>"
        // Progressive enhancement: the filter box appears only when scripts run.
        h += """
            <script>
            (function(){var f=document.getElementById('filter'),rows=document.querySelectorAll('#all tbody tr');f.hidden=false;
            f.addEventListener('input',function(){var q=f.value.toLowerCase();for(var i=0;i<rows.length;i++){var r=rows[i];
            r.style.display=!q||r.textContent.toLowerCase().indexOf(q)>=0?'':'none';}});})();
            </script>
            """
        h += "</body></html>\n"
        return h
    }
}
