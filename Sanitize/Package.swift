// swift-tools-version: 6.2
import PackageDescription

// The engine's test suites under AddressSanitizer / ThreadSanitizer (issue 6), built without the
// rest of the product (NIO, Hummingbird, GRDB, the CLI): `Samples/test.sh` runs
//
//   swift test --package-path Sanitize --scratch-path .build-asan --sanitize=address
//   swift test --package-path Sanitize --scratch-path .build-tsan --sanitize=thread --filter Concurrency
//
// The root package is a path dependency, so only the engine modules it exports as products
// (QCow2Format, BlockIO, Codecs, QCow2, ImageKit, TestSupport) are compiled with the sanitizer.
// Tests/* are symbolic links to the root package's suites: the same files run here unchanged,
// under other module names (a package graph cannot hold two targets of one name).

let package = Package(
    name: "vmimg-sanitize",
    dependencies: [
        .package(name: "vmimg", path: "../")
    ],
    targets: [
        .testTarget(
            name: "SanitizeQCow2FormatTests",
            dependencies: [
                .product(name: "QCow2Format", package: "vmimg"), .product(name: "TestSupport", package: "vmimg"),
            ],
            path: "Tests/QCow2FormatTests"),
        .testTarget(
            name: "SanitizeCodecsTests",
            dependencies: [
                .product(name: "Codecs", package: "vmimg"), .product(name: "TestSupport", package: "vmimg"),
            ],
            path: "Tests/CodecsTests"),
        .testTarget(
            name: "SanitizeBlockIOTests",
            dependencies: [
                .product(name: "BlockIO", package: "vmimg"), .product(name: "TestSupport", package: "vmimg"),
            ],
            path: "Tests/BlockIOTests"),
        .testTarget(
            name: "SanitizeQCow2Tests",
            dependencies: [
                .product(name: "QCow2", package: "vmimg"), .product(name: "ImageKit", package: "vmimg"),
                .product(name: "TestSupport", package: "vmimg"),
            ],
            path: "Tests/QCow2Tests"),
    ]
)
