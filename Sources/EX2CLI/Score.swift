// `ex2 score`: the VLM reward of given descriptions against a concept dataset's images, per description
// (written with --output) and per class (printed as a table), optionally with the zero-shot accuracy of
// classifying the split's images by those descriptions.
import ArgumentParser
import Concepts
import EX2
import Foundation

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score descriptions with the VLM reward (scale x cosine to their concept's images).",
        discussion: """
            A description of class c is rewarded with the mean, over the first N images of c by sorted path, \
            of scale x cosine(image embedding, description embedding); scale is exp(logit_scale) for HF CLIP \
            checkpoints and 100 for OpenCLIP ones, as in the EX2 reference. Image embeddings are cached on \
            disk (--cache-dir), so a second run only embeds the texts.

            \(DescriptionSet.formatHelp)
            --output writes each description's reward in the input's shape: a list per class of numbers for \
            the JSON format, the same objects with a "reward" key added for JSON Lines.
            """)

    @Option(name: .customLong("run"), help: ArgumentHelp("A run directory (`ex2 train --output-dir`): its VLM, dataset and RUN/descriptions.json are the defaults; the rewards go to RUN/rewards.json and RUN/descriptions.jsonl (class, template, text, reward).", valueName: "RUN"))
    var runDirectory: String?
    @Option(help: "The VLM: an HF CLIP, ALIGN or SigLIP directory or hub id (downloaded into the HF cache when missing), a directory with open_clip_config.json, r-open-clip:MODEL:PRETRAINED or r-open-clip:hf-hub:ORG/NAME (`ex2 embed --list-vlms` lists what loads).")
    var vlm: String?
    @OptionGroup var vlmRevision: VLMOnlyRevision
    @Option(help: "cub, flowers, pets, stanford_cars, stanford_dogs, fgvc_aircraft, or folder:PATH (one sub-folder of images per concept).")
    var dataset: String?
    @Option(help: "The folder holding the dataset's usual folder (e.g. CUB_200_2011); not needed for folder:PATH.")
    var dataRoot: String?
    @Option(help: "The split (default: the one the reference trains on).")
    var split: String?
    @Option(help: "The descriptions: JSON (a list per class of strings) or JSON Lines (see below).")
    var descriptions: String?
    @Option(help: "Write every description's reward here, in the input's shape.")
    var output: String?
    @Option(help: "Images per class the reward averages over: the first N by sorted path; 0 or -1 = all.")
    var imagesPerClass: Int = 256
    @Flag(help: "Also report the accuracy of classifying the split's images by the descriptions (each class = mean of its normalised description embeddings).")
    var zeroShot = false
    @Flag(help: "Skip images that cannot be read or decoded, with a warning, instead of failing.")
    var skipUnreadable = false
    @Option(help: "Override the similarity scale (default: the model's own).")
    var scale: Float?
    @Option(help: "Where image embeddings are cached (default: $EX2_CACHE/image-embeddings or ~/.cache/ex2/image-embeddings).")
    var cacheDir: String?
    @Flag(help: "Do not read or write the image embedding cache.")
    var noCache = false

    func validate() throws {
        guard runDirectory != nil || (vlm != nil && dataset != nil && descriptions != nil) else {
            throw ValidationError("give --vlm, --dataset and --descriptions, or --run RUN")
        }
        guard imagesPerClass >= -1 else { throw ValidationError("--images-per-class must be positive, or 0 / -1 for all images") }
        if let scale, !(scale > 0 && scale.isFinite) { throw ValidationError("--scale must be a positive number") }
        if noCache && cacheDir != nil { throw ValidationError("--no-cache and --cache-dir contradict each other; pass one") }
    }

    func run() throws {
        let cache: URL? = noCache ? nil : cacheDir.map { URL(fileURLWithPath: $0) } ?? RewardOptions.defaultCacheDirectory
        let run = try runDirectory.map(RunDirectory.init)
        let dataset = dataset ?? run!.dataset
        let descriptions = try descriptions.map { URL(fileURLWithPath: $0) } ?? run!.require(run!.descriptions, writtenBy: "ex2 describe")
        let dataRoot = dataRoot.map { URL(fileURLWithPath: $0) } ?? run?.dataRoot
        // Checked here, not in validate(): with --run the data root may come from the run's settings.
        if !dataset.hasPrefix("folder:") && dataRoot == nil {
            throw ValidationError("--data-root is required for --dataset \(dataset) (the folder holding its files); only folder:PATH datasets go without")
        }
        let output = output ?? run?.rewards.path
        let request = ScoreRequest(
            vlm: vlm ?? run!.vlm, dataset: dataset, dataRoot: dataRoot, split: split ?? run?.split,
            descriptions: descriptions,
            reward: RewardOptions(imagesPerClass: imagesPerClass, scale: scale, cacheDirectory: cache, skipUnreadable: skipUnreadable),
            zeroShot: zeroShot)
        var bar: ProgressBar?
        let report = try Scoring.run(request) { stage, done, total in
            let label = stage == .rewardImages ? "embedding reward images" : "embedding zero-shot images"
            if bar?.label != label { bar?.finish(); bar = ProgressBar(label: label, unit: "images") }
            bar?.update(done, of: total)
        }
        bar?.finish()
        for note in report.notes { warn("note: \(note)") }
        for s in report.skipped { warn("warning: skipped unreadable image \(s.url.path): \(s.reason)") }
        printTable(report)
        if let output {
            let data = try report.descriptions.render(rewards: report.rewards)
            do { try data.write(to: URL(fileURLWithPath: output)) } catch {
                throw ScoreError.cannotWrite(path: output, reason: error.localizedDescription)
            }
            print("rewards of \(report.rewards.count) descriptions written to \(output)")
        }
        if let run, case .perClassLists = report.descriptions.format {
            let templates = try run.templates.map(QueryTemplates.load) ?? QueryTemplates.builtIn()
            try DescriptionRecords.write(classNames: report.classNames, entries: report.descriptions.entries, rewards: report.rewards,
                                         templates: templates.templates, to: run.descriptionRecords)
            print("records of every description (class, template, text, reward) written to \(run.descriptionRecords.path)")
        }
    }

    private func printTable(_ r: ScoreReport) {
        let means = r.classMeans, counts = r.descriptionCounts
        let nameWidth = min(40, max(5, r.classNames.map(\.count).max() ?? 5))
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            let s = s.count > w ? String(s.prefix(w - 1)) + "…" : s
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return left ? s + fill : fill + s
        }
        let fmt = { (x: Double) in String(format: "%.4f", x) }
        var header = pad("#", 4) + "  " + pad("class", nameWidth, left: true) + "  " + pad("images", 6) + "  "
            + pad("descr.", 6) + "  " + pad("mean reward", 11)
        if r.zeroShot != nil { header += "  " + pad("zero-shot acc.", 14) }
        print("\(r.dataset)\(r.split.map { " (\($0))" } ?? ""): \(r.classNames.count) classes, scale \(String(format: "%.4g", r.scale))")
        print(header)
        print(String(repeating: "-", count: header.count))
        for c in r.classNames.indices {
            var line = pad("\(c)", 4) + "  " + pad(r.classNames[c], nameWidth, left: true) + "  "
                + pad("\(r.rewardImageCounts[c])", 6) + "  " + pad("\(counts[c])", 6) + "  " + pad(means[c].map(fmt) ?? "-", 11)
            if let z = r.zeroShot { line += "  " + pad(z.perClassAccuracy[c].map { String(format: "%.1f%%", 100 * $0) } ?? "-", 14) }
            print(line)
        }
        print(String(repeating: "-", count: header.count))
        var total = pad("", 4) + "  " + pad("all", nameWidth, left: true) + "  " + pad("\(r.rewardImageCounts.reduce(0, +))", 6)
            + "  " + pad("\(r.rewards.count)", 6) + "  " + pad(fmt(r.overallMean), 11)
        if let z = r.zeroShot { total += "  " + pad(String(format: "%.1f%%", 100 * z.accuracy), 14) }
        print(total)
        if let z = r.zeroShot {
            print("zero-shot accuracy: \(z.correct)/\(z.labels.count) images = \(String(format: "%.2f%%", 100 * z.accuracy))")
        }
    }
}

private func warn(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
