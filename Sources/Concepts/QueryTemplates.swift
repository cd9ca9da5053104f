// Class names as the EX2 reference presents them to the LLM, and the query templates that turn a class
// name into training prompts. The built-in lists are the reference's data files, bundled as resources;
// a user may bring their own templates file. A query is `template.format(classname) + "\n\n"` (Python's
// str.format, of which the `{}` / `{0}` / `{{` / `}}` subset is supported), and the prompt list is
// class-major, template-minor, exactly as the reference builds it.
import Foundation

public enum ClassNames {
    static func resource(_ relative: String) throws -> URL {
        guard let base = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
            throw ConceptsError.missing(dataset: "built-in data", path: "Resources (bundle of the Concepts target)",
                                        layout: "the package's Sources/Concepts/Resources folder")
        }
        return base.appendingPathComponent(relative)
    }

    /// The reference's class list for a dataset, before processing.
    public static func raw(_ dataset: String) throws -> [String] {
        guard DatasetLoader.datasetNames.contains(dataset) else { throw ConceptsError.unknownDataset(dataset) }
        let url = try resource("classnames/\(dataset).json")
        do { return try JSONDecoder().decode([String].self, from: Data(contentsOf: url)) } catch {
            throw ConceptsError.malformed(dataset: dataset, path: url.path, problem: "\(error)", layout: "a JSON list of class names")
        }
    }

    /// `_` becomes a space; aircraft get " aircraft"; dog breeds get " dog" unless the name has "dog".
    public static func process(_ names: [String], dataset: String) -> [String] {
        names.map { name in
            let spaced = name.replacingOccurrences(of: "_", with: " ")
            switch dataset {
            case "fgvc_aircraft": return spaced + " aircraft"
            case "stanford_dogs": return name.contains("dog") ? spaced : spaced + " dog"
            default: return spaced
            }
        }
    }

    /// The processed class names of a built-in dataset, in class-index order.
    public static func builtIn(_ dataset: String) throws -> [String] {
        process(try raw(dataset), dataset: dataset)
    }
}

/// One training prompt: the query text and the class it asks about.
public struct ConceptPrompt: Sendable, Equatable {
    public let text: String
    public let classIndex: Int
    public let templateIndex: Int
}

public struct QueryTemplates: Sendable, Equatable {
    enum Piece: Sendable, Equatable {
        case text(String)
        case name
    }

    public let templates: [String]
    let parsed: [[Piece]]

    /// Validates every template; `source` names where they came from, for errors.
    public init(_ templates: [String], source: String = "templates") throws {
        guard !templates.isEmpty else { throw ConceptsError.badTemplates(path: source, problem: "the list is empty") }
        self.templates = templates
        parsed = try templates.enumerated().map { i, t in
            do { return try Self.parse(t) } catch let problem as TemplateProblem {
                throw ConceptsError.badTemplates(path: source, problem: "template \(i) (\"\(t)\"): \(problem.message)")
            }
        }
    }

    /// The reference's 25 templates (`mult_template_v1.json`).
    public static func builtIn() throws -> QueryTemplates {
        try load(ClassNames.resource("query-templates.json"))
    }

    public static func load(_ url: URL) throws -> QueryTemplates {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ConceptsError.badTemplates(path: url.path, problem: "cannot be read (\(error.localizedDescription))")
        }
        let list: [String]
        do { list = try JSONDecoder().decode([String].self, from: data) } catch {
            throw ConceptsError.badTemplates(path: url.path, problem: "not a JSON list of strings")
        }
        return try QueryTemplates(list, source: url.path)
    }

    /// `templates[template].format(className) + "\n\n"`.
    public func query(template: Int, className: String) -> String {
        var s = ""
        for piece in parsed[template] {
            switch piece {
            case .text(let t): s += t
            case .name: s += className
            }
        }
        return s + "\n\n"
    }

    /// Every (class, template) pair, class-major.
    public func prompts(classNames: [String]) -> [ConceptPrompt] {
        classNames.enumerated().flatMap { c, name in
            templates.indices.map { ConceptPrompt(text: query(template: $0, className: name), classIndex: c, templateIndex: $0) }
        }
    }

    public func prompts(for dataset: ConceptDataset) -> [ConceptPrompt] { prompts(classNames: dataset.classNames) }

    struct TemplateProblem: Error { let message: String }

    /// Python's format-string grammar, restricted to one positional argument.
    static func parse(_ t: String) throws -> [Piece] {
        var pieces: [Piece] = []
        var text = ""
        var auto = 0, manual = false
        var i = t.startIndex
        while i < t.endIndex {
            let ch = t[i]
            let next = t.index(after: i)
            if ch == "{" {
                if next < t.endIndex && t[next] == "{" { text.append("{"); i = t.index(after: next); continue }
                guard let close = t[next...].firstIndex(of: "}") else { throw TemplateProblem(message: "a '{' is never closed") }
                let field = t[next ..< close]
                if field.isEmpty { auto += 1 } else if field == "0" { manual = true } else {
                    throw TemplateProblem(message: "field {\(field)} is not supported; use {} for the class name")
                }
                if auto > 1 { throw TemplateProblem(message: "more than one {} (Python's format would need more arguments)") }
                if auto > 0 && manual { throw TemplateProblem(message: "mixes {} and {0}") }
                if !text.isEmpty { pieces.append(.text(text)); text = "" }
                pieces.append(.name)
                i = t.index(after: close)
            } else if ch == "}" {
                guard next < t.endIndex && t[next] == "}" else { throw TemplateProblem(message: "a single '}' must be written '}}'") }
                text.append("}")
                i = t.index(after: next)
            } else {
                text.append(ch)
                i = next
            }
        }
        if !text.isEmpty { pieces.append(.text(text)) }
        guard pieces.contains(.name) else { throw TemplateProblem(message: "has no {} for the class name") }
        return pieces
    }
}
