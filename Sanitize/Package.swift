// swift-tools-version: 6.2
import PackageDescription

// The engine's test suites under ThreadSanitizer and AddressSanitizer (issue 6), built without
// the rest of the product (NIO, Hummingbird, GRDB, the CLI). `Samples/test.sh` (so `.ci/run`) runs
// both by default, before the normal pass:
//
//   swift test --package-path Sanitize --scratch-path .build-tsan-engine --sanitize=thread --skip 'RandomWorkload|HeavyEngineTests'
//   swift test --package-path Sanitize --scratch-path .build-asan-engine --sanitize=address --skip 'RandomWorkload|HeavyEngineTests'
//
// The two skipped suites are the long randomized workloads (9-10 minutes under TSan at load 5);
// the normal pass runs them, and `test.sh --sanitize-engine-all` runs them here too.
// Measured 2026-11-24 on the 2-core VM: TSan over every suite 123 tests, 0 reports, 581 s at
// load ~5 (the build 33 s on top of a warm debug build); ASan without the two, 116 tests, 0
// errors, 144 s at load 3-4 (a clean build 104 s). LeakSanitizer only sees Foundation's
// Data(contentsOf:) buffers in the tests' helpers (Samples/lsan.supp).
// TSan is clean because the engine's locks are `BlockIO.Locked` (pthread mutexes, which TSan
// intercepts): Synchronization.Mutex locks with bare futex calls on Linux, which TSan cannot
// see, and produced 168 false "Swift access race" reports on state only touched under the lock.
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
                .product(name: "TestSupport", package: "vmimg"), .product(name: "FuzzSupport", package: "vmimg"),
            ],
            path: "Tests/QCow2Tests"),
    ]
)
