// swift-tools-version:6.0
// EX2 in Swift: the engine (tensors, model files, tokenizers, models) and the `ex2` command line.
import PackageDescription

// Kernels need AVX2/FMA code generation: without a target CPU, SIMD fused multiply-adds become
// calls to fmaf() (toolchain notes). Release builds also drop bounds checks in the hot loops.
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "haswell"]),
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

let package = Package(
    name: "EX2",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ex2", targets: ["EX2CLI"]),
        .library(name: "EX2", targets: ["EX2"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The judge's HTTP client (`ex2 inspect`) and the OpenAI-compatible server (`ex2 serve`).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        // BoringSSL's SHA-256 (SHA-NI / AVX2): the hub client checks every downloaded LFS blob.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        // AVX-512 copies of the GEMM kernels, called only on CPUs that have it (Tensors' KernelISA).
        .target(name: "CPrefetch", path: "Sources/CPrefetch"),
        .target(name: "TensorsAVX512", dependencies: ["CPrefetch"], swiftSettings: [
            .unsafeFlags(["-target-cpu", "skylake-avx512"]),
            .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
        ]),
        .target(name: "Tensors", dependencies: ["COpenBLAS", "CPrefetch", "TensorsAVX512"], swiftSettings: fastMath),
        .target(name: "ModelFiles", dependencies: ["Tensors"], swiftSettings: fastMath),
        // Resources: Python's html.unescape tables, which open_clip's tokenizer applies.
        .target(name: "Tokenizers", dependencies: ["ModelFiles"], resources: [.copy("Resources")], swiftSettings: fastMath),
        .target(name: "Imaging", dependencies: ["CTurboJPEG", "CPNG"], swiftSettings: fastMath),
        // Layer parts the model families share: Linear, the strict weight reader.
        .target(name: "Layers", dependencies: ["Tensors", "ModelFiles"], swiftSettings: fastMath),
        .target(name: "Llama", dependencies: ["Tensors", "ModelFiles", "Layers"], swiftSettings: fastMath),
        // open_clip's pretrained-tag table, model configs and BPE vocabulary ship as data (Resources/open_clip).
        .target(name: "CLIP", dependencies: ["Tensors", "ModelFiles", "Layers", "Tokenizers", "Imaging"],
                resources: [.copy("Resources")], swiftSettings: fastMath),
        // Downloads into the Hugging Face cache (the huggingface_hub protocol) for every model spec.
        .target(name: "Hub", dependencies: [
            "ModelFiles", .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "Concepts", dependencies: ["Imaging", "ModelFiles"], resources: [.copy("Resources")], swiftSettings: fastMath),
        .target(name: "PPO", dependencies: ["Llama", "Tensors"], swiftSettings: fastMath),
        .target(name: "EX2", dependencies: ["Tensors", "ModelFiles", "Tokenizers", "Llama", "Imaging", "CLIP", "Concepts", "PPO"],
                swiftSettings: fastMath),
        // Stage 3's judge client: the reference's inspection over any OpenAI-compatible endpoint.
        .target(name: "Judge", dependencies: [
            "Concepts", "ModelFiles", "ChatTemplates", .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
        // Jinja, as Hugging Face chat templates use it; JSON constrained decoding.
        .target(name: "ChatTemplates"),
        .target(name: "JSONConstraint", swiftSettings: fastMath),
        // `ex2 serve`: the OpenAI-compatible server over local models.
        .target(name: "Server", dependencies: [
            "Llama", "Tokenizers", "Tensors", "ChatTemplates", "JSONConstraint",
            .product(name: "Hummingbird", package: "hummingbird"),
        ], swiftSettings: fastMath),
        // The analysis of a run and its report (HTML, Markdown, JSON).
        .target(name: "Report", dependencies: ["EX2", "Judge"]),
        .executableTarget(name: "EX2CLI", dependencies: [
            "EX2", "Judge", "Server", "Report", "Hub", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: fastMath),
        .executableTarget(name: "ex2-bench", dependencies: ["Tensors", "ModelFiles", "Llama", "CLIP", "Imaging", "PPO"], path: "Sources/Bench",
                          swiftSettings: fastMath),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"], resources: [.copy("Fixtures")],
                    swiftSettings: fastMath),
        .testTarget(name: "ModelFilesTests", dependencies: ["ModelFiles"], resources: [.copy("Fixtures")],
                    swiftSettings: fastMath),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"], resources: [.copy("Fixtures")],
                    swiftSettings: fastMath),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "ModelFiles", "Tensors"], resources: [.copy("Fixtures")],
                    swiftSettings: fastMath),
        .testTarget(name: "CLIPTests", dependencies: ["CLIP", "ModelFiles", "Tensors"], resources: [.copy("Fixtures")],
                    swiftSettings: fastMath),
        .testTarget(name: "ConceptsTests", dependencies: ["Concepts"], resources: [.copy("Fixtures")],
                    swiftSettings: fastMath),
        // Helpers of the tests that run `ex2` as a subprocess.
        .target(name: "EX2TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "EX2Tests", dependencies: ["EX2", "PPO", "Llama", "CLIP", "Concepts", "ModelFiles", "EX2TestSupport"], resources: [.copy("Fixtures")],
                    swiftSettings: fastMath),
        .testTarget(name: "PPOTests", dependencies: ["PPO", "Llama", "ModelFiles", "Tensors"], resources: [.copy("Fixtures")],
                    swiftSettings: fastMath),
        .testTarget(name: "JudgeTests", dependencies: ["Judge", "EX2TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "EX2", "Judge", "EX2TestSupport"]),
        .testTarget(name: "ChatTemplatesTests", dependencies: ["ChatTemplates"], resources: [.copy("Fixtures")]),
        .testTarget(name: "JSONConstraintTests", dependencies: ["JSONConstraint"], resources: [.copy("Fixtures")],
                    swiftSettings: fastMath),
        // Downloads against a fake hub on loopback, checked with the real huggingface_hub.
        .testTarget(name: "HubTests", dependencies: ["Hub", "ModelFiles", "Llama", "EX2TestSupport"], swiftSettings: fastMath),
        .testTarget(name: "ServerTests", dependencies: ["Server", "EX2", "Llama", "EX2TestSupport"], swiftSettings: fastMath),
        .testTarget(name: "LlamaTests", dependencies: ["Llama", "Layers", "EX2", "ModelFiles"], resources: [.copy("Fixtures")],
                    swiftSettings: fastMath),
    ]
)
