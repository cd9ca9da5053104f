// `ex2 tokenize`: token ids and pieces of a text as JSON.
import ArgumentParser
import EX2
import Foundation

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the token ids and pieces of a text as JSON.")

    @OptionGroup var model: PolicyOptions
    @Flag(help: "Do not add BOS/EOS.") var noSpecialTokens = false
    @Argument(help: "The text to tokenize.") var text: String

    func run() throws {
        let lm = try model.load()
        let ids = lm.encode(text, addSpecialTokens: !noSpecialTokens)
        try printJSON(["ids": ids, "pieces": ids.map { lm.tokenizer.piece(for: $0) ?? "" }] as [String: Any])
    }
}
