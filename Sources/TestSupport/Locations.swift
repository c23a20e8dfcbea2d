import Foundation

/// Where the package, its scripts and its built products are.
public enum Locations {
    /// The package root (the folder holding `Package.swift`), derived from this file's path at
    /// compile time: `<root>/Sources/TestSupport/Locations.swift`.
    public static let packageRoot: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    /// The `Samples/` folder with the guest and sample-image scripts.
    public static var samples: String { packageRoot + "/Samples" }
}

extension Tool {
    /// Finds the built `vmimg` executable for end-to-end tests.
    ///
    /// Order: `$VMIMG_BIN`; then `vmimg` beside the running test executable (SwiftPM puts
    /// `vmimgPackageTests.xctest` and `vmimg` in the same `.build/<triple>/<config>/` folder, whatever
    /// `--scratch-path` is); then `<root>/.build/debug/vmimg`.
    /// - Returns: the executable's path.
    /// - Throws: ``ToolError/missing(program:hint:)`` when none exists (or cancels the test under
    ///   `VMIMG_ALLOW_SKIP=1`, as ``require(_:)`` does).
    public static func vmimgBinary() throws -> String {
        let fm = FileManager.default
        if let bin = ProcessInfo.processInfo.environment["VMIMG_BIN"], !bin.isEmpty {
            return try require(bin)
        }
        var dirs: [String] = []
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            dirs.append(URL(fileURLWithPath: exe).deletingLastPathComponent().path)
        }
        if let first = CommandLine.arguments.first {
            dirs.append(URL(fileURLWithPath: first).standardizedFileURL.deletingLastPathComponent().path)
        }
        if let bundle = Bundle.main.executableURL {
            dirs.append(bundle.deletingLastPathComponent().path)
        }
        dirs.append(Locations.packageRoot + "/.build/debug")
        for dir in dirs {
            // On macOS the runner sits inside the .xctest bundle, three levels below the products.
            for candidate in [dir + "/vmimg", dir + "/../../../vmimg"] where fm.isExecutableFile(atPath: candidate) {
                return URL(fileURLWithPath: candidate).standardizedFileURL.path
            }
        }
        return try require("vmimg")
    }

    /// Runs the built `vmimg` with `arguments` (see ``vmimgBinary()`` and ``run(_:_:cwd:environment:stdin:timeout:interrupt:)``).
    /// - Parameters:
    ///   - arguments: the command line after `vmimg`.
    ///   - cwd: the working directory.
    ///   - timeout: the time limit.
    ///   - interrupt: a signal to send after a delay (see ``run(_:_:cwd:environment:stdin:timeout:interrupt:)``).
    /// - Returns: the result, whatever the exit status.
    /// - Throws: as ``vmimgBinary()`` or the run.
    public static func vmimg(
        _ arguments: [String], cwd: String? = nil, timeout: Duration = .seconds(60),
        interrupt: (signal: Int32, after: Duration)? = nil
    ) throws -> ToolResult {
        try run(try vmimgBinary(), arguments, cwd: cwd, timeout: timeout, interrupt: interrupt)
    }
}
