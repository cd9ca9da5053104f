import Foundation
import ModelFiles
import Llama
import Tensors

let args = CommandLine.arguments
let path = args[1]
let ids = args[2].split(separator: ",").map { Int($0)! }
let t0 = Date()
let gguf = try GGUFFile(url: URL(fileURLWithPath: path))
let model = try DecoderModel.load(gguf: gguf)
print("loaded in", Date().timeIntervalSince(t0))
let cache = model.makeCache(slots: 1, capacity: 128)
let logits = model.forward([SequenceChunk(slot: 0, tokens: ids, startPosition: 0)], cache: cache, logits: .all)
let V = model.config.vocabSize
for p in [0, ids.count - 1] {
    let row = Array(logits[p * V..<(p + 1) * V])
    let top = row.indices.sorted { row[$0] > row[$1] }.prefix(5)
    print("pos", p, top.map { "\($0):\(row[$0])" })
}
let gen = Generator(model: model, stopTokens: [])
let r = gen.generate(prompts: [ids], seeds: [0], params: SamplingParameters(temperature: 0, maxNewTokens: 12))
print("greedy", r[0].tokens)
