// swift-tools-version: 6.2
import Foundation
import PackageDescription

// Unsafe code is confined to Codecs, BlockIO and the C shims; everywhere else the compiler refuses it.
let safety: [SwiftSetting] = [
    .strictMemorySafety(),
    .treatWarning("StrictMemorySafety", as: .error),
]

/// libstdc++ linked statically into `vmimg` (the static Swift runtime's and ICU's C++ support):
/// ld.so then neither maps it nor runs its initializers, ~0.5 ms of a 6 ms `check` (Formats/
/// performance.md, "Start-up"). swiftc's static-stdlib arguments end in a plain `-lstdc++`, which
/// GCC's directory answers with `libstdc++.so`; a directory holding only a link to GCC's
/// `libstdc++.a`, searched first, answers it with the archive. Without GCC's archive this is empty
/// and libstdc++ stays dynamic.
func staticLibstdcxxSearchPath() -> [String] {
    let gcc = "/usr/lib/gcc/x86_64-linux-gnu"
    let files = FileManager.default
    guard let versions = try? files.contentsOfDirectory(atPath: gcc) else { return [] }
    // The newest GCC, the one clang's GCC detection picks.
    let archive = versions.compactMap(Int.init).sorted(by: >).map { "\(gcc)/\($0)/libstdc++.a" }
        .first { files.fileExists(atPath: $0) }
    guard let archive else { return [] }
    let directory = Context.packageDirectory + "/.build-link"
    let link = directory + "/libstdc++.a"
    if (try? files.destinationOfSymbolicLink(atPath: link)) != archive {
        try? files.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? files.removeItem(atPath: link)
        guard (try? files.createSymbolicLink(atPath: link, withDestinationPath: archive)) != nil else { return [] }
    }
    return ["-L", directory]
}

let package = Package(
    name: "vmimg",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vmimg", targets: ["vmimg"]),
        .library(name: "QCow2Format", targets: ["QCow2Format"]),
        .library(name: "QCow2", targets: ["QCow2"]),
        .library(name: "ImageKit", targets: ["ImageKit"]),
        // For Sanitize/ (the engine's suites under ASan/TSan without the rest of the product).
        .library(name: "BlockIO", targets: ["BlockIO"]),
        .library(name: "Codecs", targets: ["Codecs"]),
        .library(name: "TestSupport", targets: ["TestSupport"]),
        // For Fuzz/: the fuzz target bodies live here so every build compiles them against the
        // current engine API (and FuzzRegressionTests can replay findings through them).
        .library(name: "FuzzSupport", targets: ["FuzzSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // libdeflate inflates raw deflate about twice as fast as zlib (Samples/bench-codecs.sh).
        .systemLibrary(name: "CLibDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // ISA-L's igzip: a fast "will not compress" test before zlib (Sources/CIsal/shim.h).
        .systemLibrary(name: "CIsal", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
        .target(name: "CBlockIO"),
        .target(name: "Codecs", dependencies: ["CZlib", "CZstd", "CLibDeflate", "CIsal"], swiftSettings: safety),
        .target(name: "BlockIO", dependencies: ["CBlockIO"], swiftSettings: safety),
        .target(name: "QCow2Format", swiftSettings: safety),
        .target(name: "QCow2", dependencies: ["QCow2Format", "BlockIO", "Codecs"], swiftSettings: safety),
        .target(name: "ImageKit", dependencies: ["QCow2", "BlockIO"], swiftSettings: safety),
        .target(name: "FuzzSupport", dependencies: ["QCow2Format", "QCow2", "ImageKit"], swiftSettings: safety),
        .target(name: "Catalog", dependencies: [.product(name: "GRDB", package: "GRDB.swift")], swiftSettings: safety),
        .target(name: "Instances", dependencies: ["Catalog", "ImageKit"], swiftSettings: safety),
        .target(
            name: "NBDProtocol", dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: safety),
        .target(
            name: "NBDServer",
            dependencies: [
                "NBDProtocol", "ImageKit", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ], swiftSettings: safety),
        .target(
            name: "Console",
            dependencies: [
                "Instances", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: safety),
        .target(
            name: "VMImgCLI",
            dependencies: [
                "ImageKit", "Instances", "NBDServer", "Console",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: safety),
        // Static Swift runtime and Foundation: the dynamic linker no longer binds ~11,000 symbols
        // across 15 libraries at every start (Formats/performance.md, "Start-up"). main.swift is
        // compiled with the flag too: its `import Foundation` then autolinks the static
        // Foundation's own dependencies (ICU, _FoundationCollections, …).
        // Exports no symbols: dladdr in the Swift runtime's start-up scanned ~32,000 of them (1M
        // instructions). It stays a PIE: linking it -no-pie saved ~1.5 ms of start-up (ld.so's
        // ~119,000 relative relocations, ~320 page faults) but would put 140 MB of code at a fixed
        // address in a tool that parses images from strangers (ASLR is a mitigation we keep).
        .executableTarget(
            name: "vmimg", dependencies: ["VMImgCLI"],
            swiftSettings: safety + [.unsafeFlags(["-static-stdlib"], .when(platforms: [.linux]))],
            linkerSettings: [
                .unsafeFlags(
                    ["-static-stdlib", "-Xlinker", "--no-export-dynamic"] + staticLibstdcxxSearchPath(),
                    .when(platforms: [.linux]))
            ]),
        .target(name: "TestSupport", dependencies: ["BlockIO"], swiftSettings: safety),
        .testTarget(name: "CodecsTests", dependencies: ["Codecs", "TestSupport"]),
        .testTarget(name: "BlockIOTests", dependencies: ["BlockIO", "TestSupport"]),
        .testTarget(name: "QCow2FormatTests", dependencies: ["QCow2Format", "TestSupport"]),
        .testTarget(name: "QCow2Tests", dependencies: ["QCow2", "ImageKit", "TestSupport", "FuzzSupport"]),
        .testTarget(name: "VMImgCLITests", dependencies: ["VMImgCLI", "ImageKit", "TestSupport"]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog", "TestSupport"]),
        .testTarget(name: "InstancesTests", dependencies: ["Instances", "TestSupport"]),
        .testTarget(
            name: "ConsoleTests",
            dependencies: [
                "Console", "TestSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
            ], exclude: ["browser_test.py", "openapi_check.py"]),
        .testTarget(
            name: "NBDTests",
            dependencies: [
                "NBDProtocol", "NBDServer", "TestSupport", .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),
    ]
)
