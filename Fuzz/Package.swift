// swift-tools-version:5.4
import PackageDescription

// libFuzzer targets for the qcow2 engine (issue 6). Build and run with `Fuzz/run.sh [SECONDS]`:
//
//   swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//
// The target bodies are the root package's FuzzSupport library (so the main build keeps them
// compiling). The root package is a path dependency, so the engine's own targets are built with the fuzzer's
// coverage instrumentation and ASan too (and keep their strict-memory-safety settings). Each
// target's main.swift exports `LLVMFuzzerTestOneInput`; libFuzzer supplies `main`.
//
// Tools version 5.4 on purpose: from 5.5 on, SwiftPM renames an executable's entry point to
// `<Target>_main` and links with `--defsym main=<Target>_main`, which fails when libFuzzer, not
// Swift, provides `main` (checked with Swift 6.3.1: "undefined symbol 'FuzzWrite_main'").

let package = Package(
    name: "vmimg-fuzz",
    dependencies: [
        .package(name: "vmimg", path: "../")
    ],
    targets: [
        .executableTarget(
            name: "FuzzHeader",
            dependencies: [.product(name: "FuzzSupport", package: "vmimg"), .product(name: "QCow2Format", package: "vmimg")]),
        .executableTarget(
            name: "FuzzImage",
            dependencies: [
                .product(name: "FuzzSupport", package: "vmimg"), .product(name: "QCow2", package: "vmimg"), .product(name: "ImageKit", package: "vmimg"),
            ]),
        .executableTarget(
            name: "FuzzWrite",
            dependencies: [.product(name: "FuzzSupport", package: "vmimg"), .product(name: "QCow2", package: "vmimg")]),
    ]
)
