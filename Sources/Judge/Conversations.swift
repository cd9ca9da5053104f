// What the judge is asked. `reference` is the reference inspection's conversation, character for
// character (its system message, the one-shot tench example whose assistant reply is Python's
// json.dumps(..., indent=0), the question with the concept and the snippet substituted) and its request
// settings. `local` is built for small local judges: the same question and rule, a few-shot conversation
// with both verdicts, the verdict first in a fixed JSON shape (json_schema), and the verdict read from
// the log-probabilities of Yes and No. The attribute question asks which attribute kinds an informative
// description mentions, in the same JSON style.
import ChatTemplates
import Foundation

public enum JudgeMode: String, Sendable, CaseIterable, Codable {
    case reference, local
}

public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

public enum Conversations {
    public static let referenceModel = "gpt-3.5-turbo-1106"

    static let systemMessage = "You are a knowledgeable teacher. Answer the questions in JSON format."

    /// The reference's question for concept `cn` and snippet `it` (its string.Template, substituted).
    public static func question(className cn: String, snippet it: String) -> String {
        "You want to explain what a \(cn) is to your students. Does the following text snippet mention any specific details about \(cn) that increases your students' knowledge about \(cn)? Answer yes or no. Provide an explanation for your answer.\n\nText snippet: \(it)"
    }

    /// Python's json.dumps(dict, indent=0) of string values: one "key": value per line, no indentation.
    public static func pythonJSONIndent0(_ pairs: [(String, String)]) -> String {
        JinjaValue.object(pairs.map { ($0.0, .string($0.1)) }).jsonString(indent: 0, ensureASCII: true)
    }

    /// json.dumps of a string (ensure_ascii=True), as Python writes it.
    public static func pythonJSONString(_ s: String) -> String { JinjaValue.string(s).jsonString(ensureASCII: true) }

    /// The reference inspection's four messages.
    public static func reference(className: String, description: String) -> [ChatMessage] {
        [
            ChatMessage(role: "system", content: systemMessage),
            ChatMessage(role: "user", content: question(className: "tench", snippet: "A photo of a tench, with dark green color.")),
            ChatMessage(role: "assistant", content: pythonJSONIndent0([
                ("explanation", "It teaches the students about the color of a tench."), ("increases_knowledge", "Yes"),
            ])),
            ChatMessage(role: "user", content: question(className: className, snippet: description)),
        ]
    }

    // MARK: local judge

    static let localSystemMessage = """
        You are a knowledgeable teacher. Answer the questions in JSON format. A snippet increases your \
        students' knowledge only if it states a specific fact about the concept itself: its colour, shape, \
        size, markings, parts, habitat, behaviour, diet, origin or use. A snippet that only says it is a \
        photo, image or picture of the concept, praises it with generic words, or talks about the photo, \
        the photographer, a website, a download or a licence does not.
        """

    /// Few-shot pairs for the local judge: both verdicts, on concepts outside the six datasets.
    static let localExamples: [(concept: String, snippet: String, verdict: String, why: String)] = [
        ("tench", "A photo of a tench, with dark green color.", "Yes", "It teaches the students about the color of a tench."),
        ("tench", "Click to enlarge photo of a tench.", "No", "It only says that there is a photo of a tench."),
        ("zebra", "A zebra grazing on the African savanna, its black and white stripes", "Yes",
         "It teaches the students about the stripes and habitat of a zebra."),
        ("zebra", "This beautiful high-resolution picture of a zebra is available for download.", "No",
         "It talks about the picture, not about the zebra."),
    ]

    /// The local judge's answer: the verdict first, then the explanation.
    public static func localAnswer(verdict: String, explanation: String) -> String {
        pythonJSONIndent0([("increases_knowledge", verdict), ("explanation", explanation)])
    }

    public static func local(className: String, description: String) -> [ChatMessage] {
        var m = [ChatMessage(role: "system", content: localSystemMessage)]
        for e in localExamples {
            m.append(ChatMessage(role: "user", content: question(className: e.concept, snippet: e.snippet)))
            m.append(ChatMessage(role: "assistant", content: localAnswer(verdict: e.verdict, explanation: e.why)))
        }
        m.append(ChatMessage(role: "user", content: question(className: className, snippet: description)))
        return m
    }

    /// The json_schema that fixes the local judge's answer shape (verdict first).
    public static var localSchema: [String: Any] { [
        "type": "object",
        "properties": [
            "increases_knowledge": ["type": "string", "enum": ["Yes", "No"]],
            "explanation": ["type": "string", "maxLength": 200],
        ],
        "required": ["increases_knowledge", "explanation"],
        "additionalProperties": false,
    ] }

    // MARK: attributes

    public static let defaultAttributes = [
        "colour", "shape", "size", "texture/pattern", "parts", "habitat/location", "behaviour", "diet",
        "origin/history", "use/function", "other",
    ]

    public static func attributeQuestion(className: String, snippet: String, attributes: [String]) -> String {
        "The following text snippet describes a \(className). Which kinds of attribute of \(className) does it mention? Choose only from this list: \(attributes.joined(separator: ", ")). Answer with the list of kinds it mentions and an explanation.\n\nText snippet: \(snippet)"
    }

    public static func attributes(className: String, description: String, attributes: [String]) -> [ChatMessage] {
        let example = "{\n\"explanation\": \(pythonJSONString("It mentions the color of a tench.")),\n\"attributes\": [\"colour\"]\n}"
        return [
            ChatMessage(role: "system", content: systemMessage),
            ChatMessage(role: "user", content: attributeQuestion(className: "tench", snippet: "A photo of a tench, with dark green color.",
                                                                  attributes: attributes)),
            ChatMessage(role: "assistant", content: example),
            ChatMessage(role: "user", content: attributeQuestion(className: className, snippet: description, attributes: attributes)),
        ]
    }

    public static func attributeSchema(_ attributes: [String]) -> [String: Any] {
        [
            "type": "object",
            "properties": [
                "explanation": ["type": "string", "maxLength": 200],
                "attributes": ["type": "array", "items": ["type": "string", "enum": attributes], "maxItems": attributes.count],
            ],
            "required": ["explanation", "attributes"],
            "additionalProperties": false,
        ]
    }
}
