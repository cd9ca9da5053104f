// Readers for the on-disk layouts of the six datasets EX2 was run on, matching the loaders the reference
// uses (its own CUB-200-2011 and Stanford Dogs readers; torchvision's Flowers102, OxfordIIITPet,
// StanfordCars and FGVCAircraft): the same files, the same image order, the same 0-based labels. Class
// names come from the reference's lists (`ClassNames`), which is what the reference trains with; where a
// layout carries its own class list (variants.txt, cars_meta.mat) its length must agree. `folder:PATH`
// reads a user's concepts: one sub-folder per concept, images at any depth below it.
import Foundation

public enum DatasetLoader {
    public static let datasetNames = ["cub", "flowers", "pets", "stanford_cars", "stanford_dogs", "fgvc_aircraft"]

    public struct Options: Sendable {
        /// Record images the annotations list but that are missing in `ConceptDataset.skipped` instead of failing.
        public var skipMissingImages: Bool
        /// Replace the built-in class names (same count and order as the dataset's labels).
        public var classNames: [String]?

        public init(skipMissingImages: Bool = false, classNames: [String]? = nil) {
            self.skipMissingImages = skipMissingImages
            self.classNames = classNames
        }
    }

    /// The splits of each dataset, the first being the default (the split the reference trains on:
    /// `trainval` for Oxford-IIIT Pet and FGVC-Aircraft, `train` elsewhere).
    public static func splits(of dataset: String) -> [String]? {
        switch dataset {
        case "cub", "stanford_cars", "stanford_dogs": return ["train", "test"]
        case "flowers": return ["train", "val", "test"]
        case "pets": return ["trainval", "test"]
        case "fgvc_aircraft": return ["trainval", "train", "val", "test"]
        default: return nil
        }
    }

    /// Loads `name` ("cub", ..., or "folder:PATH") from the data root `root`, which holds each dataset's
    /// usual folder (`cub/CUB_200_2011` or `CUB_200_2011`, `flowers-102`, `oxford-iiit-pet`,
    /// `stanford_cars`, `stanford_dogs`, `fgvc-aircraft-2013b`); `root` may also be that folder itself.
    /// A relative folder PATH is resolved against the current directory.
    public static func load(name: String, root: URL, split: String? = nil, options: Options = Options()) throws
        -> ConceptDataset
    {
        if name.hasPrefix("folder:") {
            if let split, split != "all" { throw ConceptsError.unknownSplit(dataset: name, split: split, valid: ["all"]) }
            return try loadFolder(name: name, path: String(name.dropFirst("folder:".count)), options: options)
        }
        guard let valid = splits(of: name) else { throw ConceptsError.unknownDataset(name) }
        let split = split ?? valid[0]
        guard valid.contains(split) else { throw ConceptsError.unknownSplit(dataset: name, split: split, valid: valid) }
        let names = try options.classNames ?? ClassNames.builtIn(name)
        let ctx = Context(dataset: name, layout: layouts[name]!, classCount: names.count)
        let base = try ctx.base(root: root)
        let pairs: [(String, Int)]
        switch name {
        case "cub": pairs = try ctx.cub(base: base, split: split)
        case "flowers": pairs = try ctx.flowers(base: base, split: split)
        case "pets": pairs = try ctx.pets(base: base, split: split)
        case "stanford_cars": pairs = try ctx.cars(base: base, split: split)
        case "stanford_dogs": pairs = try ctx.dogs(base: base, split: split)
        default: pairs = try ctx.aircraft(base: base, split: split)
        }
        var images: [LabeledImage] = []
        var missing: [SkippedImage] = []
        images.reserveCapacity(pairs.count)
        for (path, label) in pairs {
            let url = URL(fileURLWithPath: path)
            if FileManager.default.fileExists(atPath: path) {
                images.append(LabeledImage(url: url, label: label))
            } else {
                missing.append(SkippedImage(url: url, reason: "listed in the annotations but not on disk"))
            }
        }
        if !missing.isEmpty && !options.skipMissingImages {
            throw ConceptsError.missingImages(dataset: name, paths: missing.prefix(5).map(\.url.path), total: missing.count)
        }
        return ConceptDataset(name: name, split: split, root: base, classNames: names, images: images, skipped: missing)
    }

    // MARK: - layouts

    static let layouts: [String: String] = [
        "cub": """
              <root>/cub/CUB_200_2011/ (or <root>/CUB_200_2011/)
                images.txt              "<image id> <class folder>/<file>.jpg" per line
                image_class_labels.txt  "<image id> <class 1...200>"
                train_test_split.txt    "<image id> <1 = train, 0 = test>"
                images/<class folder>/<file>.jpg
            """,
        "flowers": """
              <root>/flowers-102/
                imagelabels.mat   labels: class (1...102) of image i
                setid.mat         trnid / valid / tstid: image ids of the train / val / test splits
                jpg/image_00001.jpg ... (image_<id, 5 digits>.jpg)
            """,
        "pets": """
              <root>/oxford-iiit-pet/
                annotations/trainval.txt, annotations/test.txt   "<image name> <class 1...37> <species> <breed id>"
                images/<image name>.jpg
            """,
        "stanford_cars": """
              <root>/stanford_cars/
                devkit/cars_meta.mat            class_names: cell array of the 196 class names
                devkit/cars_train_annos.mat     annotations: struct array with fields class (1...196) and fname
                cars_test_annos_withlabels.mat  annotations: the same, for the test split
                cars_train/<fname>, cars_test/<fname>
            """,
        "stanford_dogs": """
              <root>/stanford_dogs/
                train_list.mat, test_list.mat   file_list: cell array of "<wnid>-<breed>/<file>.jpg"; labels: 1...120
                Images/<wnid>-<breed>/<file>.jpg
            """,
        "fgvc_aircraft": """
              <root>/fgvc-aircraft-2013b/data/
                variants.txt                  one variant name per line (100 lines)
                images_variant_<split>.txt    "<image id> <variant name>" (split: train, val, trainval, test)
                images/<image id>.jpg
            """,
    ]

    /// Per-load state shared by the layout readers: which dataset, for errors, and the class count.
    struct Context {
        let dataset: String
        let layout: String
        let classCount: Int

        func missing(_ url: URL) -> ConceptsError { .missing(dataset: dataset, path: url.path, layout: layout) }

        func malformed(_ url: URL, _ problem: String) -> ConceptsError {
            .malformed(dataset: dataset, path: url.path, problem: problem, layout: layout)
        }

        /// The layout's base folder: `root/<usual folder>`, or `root` itself when it already is one.
        func base(root: URL) throws -> URL {
            let (candidates, marker): ([String], String) = switch dataset {
            case "cub": (["cub/CUB_200_2011", "CUB_200_2011"], "images.txt")
            case "flowers": (["flowers-102"], "imagelabels.mat")
            case "pets": (["oxford-iiit-pet"], "annotations")
            case "stanford_cars": (["stanford_cars"], "devkit")
            case "stanford_dogs": (["stanford_dogs"], "Images")
            default: (["fgvc-aircraft-2013b"], "data/variants.txt")
            }
            let fm = FileManager.default
            for c in candidates {
                let url = root.appendingPathComponent(c)
                if fm.fileExists(atPath: url.path) { return url }
            }
            if fm.fileExists(atPath: root.appendingPathComponent(marker).path) { return root }
            throw missing(root.appendingPathComponent(candidates[0]))
        }

        func text(_ url: URL) throws -> String {
            guard FileManager.default.fileExists(atPath: url.path) else { throw missing(url) }
            guard let data = FileManager.default.contents(atPath: url.path) else { throw malformed(url, "cannot be read") }
            guard let s = String(data: data, encoding: .utf8) else { throw malformed(url, "is not UTF-8 text") }
            return s
        }

        /// Non-empty lines, each with its 1-based line number; CRLF endings are tolerated.
        func lines(_ url: URL) throws -> [(Int, Substring)] {
            try text(url).split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { i, line in
                let l = line.hasSuffix("\r") ? line.dropLast() : line
                return l.allSatisfy(\.isWhitespace) ? nil : (i + 1, l)
            }
        }

        func mat(_ url: URL) throws -> MATFile {
            guard FileManager.default.fileExists(atPath: url.path) else { throw missing(url) }
            do { return try MATFile(contentsOf: url) } catch let e as MATError { throw malformed(url, e.message) }
        }

        func check(_ label: Int, _ url: URL) throws -> Int {
            guard label >= 0 && label < classCount else {
                throw ConceptsError.labelOutOfRange(dataset: dataset, path: url.path, label: label, classCount: classCount)
            }
            return label
        }

        /// Runs a MAT accessor, turning its error into one that shows the layout.
        func field<T>(_ url: URL, _ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as MATError { throw malformed(url, e.message) }
        }

        // CUB-200-2011: images.txt order, joined with labels and the split flag on the image id.
        func cub(base: URL, split: String) throws -> [(String, Int)] {
            func table(_ file: String) throws -> (URL, [(Int, Substring, Substring)]) {
                let url = base.appendingPathComponent(file)
                return (url, try lines(url).map { n, line in
                    let parts = line.split(separator: " ", maxSplits: 1)
                    guard parts.count == 2 else { throw malformed(url, "line \(n) is not \"<image id> <value>\"") }
                    return (n, parts[0], parts[1].drop { $0 == " " })
                })
            }
            let (imagesURL, images) = try table("images.txt")
            let (labelsURL, labelRows) = try table("image_class_labels.txt")
            let (splitURL, splitRows) = try table("train_test_split.txt")
            var labels: [Substring: Int] = [:], flags: [Substring: Bool] = [:]
            for (n, id, v) in labelRows {
                guard let l = Int(v.trimmingCharacters(in: .whitespaces)) else { throw malformed(labelsURL, "line \(n): class '\(v)' is not a number") }
                labels[id] = l
            }
            for (n, id, v) in splitRows {
                switch v.trimmingCharacters(in: .whitespaces) {
                case "1": flags[id] = true
                case "0": flags[id] = false
                default: throw malformed(splitURL, "line \(n): '\(v)' is neither 1 (train) nor 0 (test)")
                }
            }
            let imageRoot = base.appendingPathComponent("images")
            var out: [(String, Int)] = []
            for (_, id, path) in images {
                guard let l = labels[id] else { throw malformed(labelsURL, "has no class for image id \(id) of \(imagesURL.lastPathComponent)") }
                guard let train = flags[id] else { throw malformed(splitURL, "has no split for image id \(id) of \(imagesURL.lastPathComponent)") }
                if train == (split == "train") {
                    out.append((imageRoot.appendingPathComponent(String(path)).path, try check(l - 1, labelsURL)))
                }
            }
            return out
        }

        // Flowers102: ids of the split from setid.mat, labels indexed by 1-based image id.
        func flowers(base: URL, split: String) throws -> [(String, Int)] {
            let setURL = base.appendingPathComponent("setid.mat")
            let labelURL = base.appendingPathComponent("imagelabels.mat")
            let key = ["train": "trnid", "val": "valid", "test": "tstid"][split]!
            let ids = try field(setURL) { try mat(setURL).variable(key).integers() }
            let labels = try field(labelURL) { try mat(labelURL).variable("labels").integers() }
            let folder = base.appendingPathComponent("jpg")
            return try ids.map { id in
                guard id >= 1 && id <= labels.count else {
                    throw malformed(setURL, "\(key) has image id \(id), but imagelabels.mat labels only \(labels.count) images")
                }
                let file = "image_" + String(repeating: "0", count: max(0, 5 - String(id).count)) + String(id) + ".jpg"
                return (folder.appendingPathComponent(file).path, try check(labels[id - 1] - 1, labelURL))
            }
        }

        // Oxford-IIIT Pet: annotations/<split>.txt, "<image name> <class> <species> <breed id>".
        func pets(base: URL, split: String) throws -> [(String, Int)] {
            let url = base.appendingPathComponent("annotations/\(split).txt")
            let folder = base.appendingPathComponent("images")
            return try lines(url).compactMap { n, line in
                if line.hasPrefix("#") { return nil }
                let parts = line.split(whereSeparator: \.isWhitespace)
                guard parts.count >= 2, let cls = Int(parts[1]) else {
                    throw malformed(url, "line \(n) is not \"<image name> <class> <species> <breed id>\"")
                }
                return (folder.appendingPathComponent("\(parts[0]).jpg").path, try check(cls - 1, url))
            }
        }

        // Stanford Cars: struct-array annotations (class, fname); the class list in devkit/cars_meta.mat.
        func cars(base: URL, split: String) throws -> [(String, Int)] {
            let devkit = base.appendingPathComponent("devkit")
            let metaURL = devkit.appendingPathComponent("cars_meta.mat")
            let classes = try field(metaURL) { try mat(metaURL).variable("class_names").strings() }
            guard classes.count == classCount else {
                throw ConceptsError.classCountMismatch(dataset: dataset, path: metaURL.path, found: classes.count, expected: classCount)
            }
            let (annURL, folder) = split == "train"
                ? (devkit.appendingPathComponent("cars_train_annos.mat"), base.appendingPathComponent("cars_train"))
                : (base.appendingPathComponent("cars_test_annos_withlabels.mat"), base.appendingPathComponent("cars_test"))
            let (labels, names) = try field(annURL) { () throws -> ([MATArray], [MATArray]) in
                let ann = try mat(annURL).variable("annotations")
                return (try ann.field("class"), try ann.field("fname"))
            }
            return try zip(labels, names).map { l, f in
                let (cls, fname) = try field(annURL) { () throws -> (Int, String) in
                    let v = try l.integers()
                    guard v.count == 1 else { throw l.error("expected one class number, found \(v.count)") }
                    return (v[0], try f.string())
                }
                return (folder.appendingPathComponent(fname).path, try check(cls - 1, annURL))
            }
        }

        // Stanford Dogs (the reference's reader): file_list and labels of <split>_list.mat.
        func dogs(base: URL, split: String) throws -> [(String, Int)] {
            let url = base.appendingPathComponent("\(split)_list.mat")
            let (files, labels) = try field(url) { () throws -> ([String], [Int]) in
                let m = try mat(url)
                return (try m.variable("file_list").strings(), try m.variable("labels").integers())
            }
            guard files.count == labels.count else {
                throw malformed(url, "file_list has \(files.count) entries but labels has \(labels.count)")
            }
            let folder = base.appendingPathComponent("Images")
            return try zip(files, labels).map { (folder.appendingPathComponent($0).path, try check($1 - 1, url)) }
        }

        // FGVC-Aircraft at the variant level: class index = line of the variant in variants.txt.
        func aircraft(base: URL, split: String) throws -> [(String, Int)] {
            let data = base.appendingPathComponent("data")
            let variantsURL = data.appendingPathComponent("variants.txt")
            var lines = try text(variantsURL).split(separator: "\n", omittingEmptySubsequences: false)
            if lines.last?.isEmpty == true { lines.removeLast() }
            let variants = lines.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            guard variants.count == classCount else {
                throw ConceptsError.classCountMismatch(dataset: dataset, path: variantsURL.path, found: variants.count, expected: classCount)
            }
            var index: [String: Int] = [:]
            for (i, v) in variants.enumerated() where index[v] == nil { index[v] = i }
            let url = data.appendingPathComponent("images_variant_\(split).txt")
            let folder = data.appendingPathComponent("images")
            return try self.lines(url).map { n, line in
                let parts = line.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1)
                guard parts.count == 2 else { throw malformed(url, "line \(n) is not \"<image id> <variant name>\"") }
                guard let l = index[String(parts[1])] else {
                    throw malformed(url, "line \(n): variant '\(parts[1])' is not in variants.txt")
                }
                return (folder.appendingPathComponent("\(parts[0]).jpg").path, l)
            }
        }
    }

    // MARK: - concept folders

    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    static let folderLayout = """
          PATH/
            <concept name>/...any depth.../<image>.jpg|.jpeg|.png   (one sub-folder per concept;
            <another concept>/...                                   '_' in a folder name becomes a space)
        """

    static func loadFolder(name: String, path: String, options: Options) throws -> ConceptDataset {
        let expanded = (path as NSString).expandingTildeInPath
        let root = expanded.hasPrefix("/")
            ? URL(fileURLWithPath: expanded)
            : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(expanded)
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            throw ConceptsError.missing(dataset: name, path: root.path, layout: folderLayout)
        }
        let entries = (try? fm.contentsOfDirectory(atPath: root.path)) ?? []
        let folders = entries.filter { entry in
            var d: ObjCBool = false
            return !entry.hasPrefix(".") && fm.fileExists(atPath: root.appendingPathComponent(entry).path, isDirectory: &d) && d.boolValue
        }.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        guard !folders.isEmpty else {
            throw ConceptsError.malformed(dataset: name, path: root.path, problem: "it has no concept sub-folders", layout: folderLayout)
        }
        let classNames = options.classNames ?? folders.map { $0.replacingOccurrences(of: "_", with: " ") }
        guard classNames.count == folders.count else {
            throw ConceptsError.classCountMismatch(dataset: name, path: root.path, found: folders.count, expected: classNames.count)
        }
        var images: [LabeledImage] = []
        for (c, folder) in folders.enumerated() {
            // A concept folder may be a symbolic link (a subset of a dataset made of links); image files may be links too.
            let dir = root.appendingPathComponent(folder).resolvingSymlinksInPath()
            var found: [URL] = []
            if let walker = fm.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]) {
                for case let url as URL in walker where imageExtensions.contains(url.pathExtension.lowercased()) {
                    var d: ObjCBool = false
                    if fm.fileExists(atPath: url.path, isDirectory: &d), !d.boolValue { found.append(url) }
                }
            }
            guard !found.isEmpty else { throw ConceptsError.emptyConcept(dataset: name, classIndex: c, name: classNames[c]) }
            found.sort { $0.path.unicodeScalars.lexicographicallyPrecedes($1.path.unicodeScalars) }
            images += found.map { LabeledImage(url: $0, label: c) }
        }
        return ConceptDataset(name: name, split: nil, root: root, classNames: classNames, images: images)
    }
}
