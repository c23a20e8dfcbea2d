import Foundation
import Testing
import TestSupport

/// The seed in a real browser: `vmimg console` on a free loopback port, headless Chromium driven
/// by Selenium (Tests/ConsoleTests/browser_test.py). Screenshots land in `out/console-browser/`
/// (or `$VMIMG_TEST_OUTPUT/console-browser/`).
@Suite(.serialized, .timeLimit(.minutes(15)))
struct ConsoleBrowserTests {
    static var outputDirectory: String {
        let base =
            ProcessInfo.processInfo.environment["VMIMG_TEST_OUTPUT"].flatMap { $0.isEmpty ? nil : $0 }
            ?? Locations.packageRoot + "/out"
        return base + "/console-browser"
    }

    @Test func seedScenarioInChromium() throws {
        _ = try Tool.require("chromium")
        _ = try Tool.require("chromedriver")
        let probe = try Tool.run("python3", ["-c", "import selenium"])
        if probe.status != 0 {
            let hint = "python3 -m pip install selenium (Samples/test.sh does it)"
            if Tool.allowSkip { try Test.cancel("selenium missing (VMIMG_ALLOW_SKIP=1): \(hint)") }
            throw ToolError.missing(program: "selenium", hint: hint)
        }
        let scratch = try Scratch(label: "browser")
        let home = scratch.path("home")
        let vmimg = try Tool.vmimgBinary()
        let token = try Tool.run(vmimg, ["console", "--print-token", "--home", home]).checked().stdoutText
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.count == 64)

        let server = try ConsoleProcess(vmimg: vmimg, home: home)
        defer { server.stop() }
        let out = Self.outputDirectory
        try? FileManager.default.removeItem(atPath: out)
        let run = try Tool.run(
            "python3",
            [
                Locations.packageRoot + "/Tests/ConsoleTests/browser_test.py", "--url", server.url, "--token", token,
                "--out", out,
            ],
            timeout: .seconds(150))
        print(run.stdoutText)
        #expect(run.status == 0, "\(run.stdoutText)\(run.stderrText)\nconsole log:\n\(server.log)")
        #expect(run.stdoutText.contains("browser_test: PASS"))
    }
}

/// `vmimg console --port 0` in the background; its URL is read from its first stderr line.
final class ConsoleProcess: Sendable {
    let process: Process
    let url: String
    private let logPath: String

    init(vmimg: String, home: String) throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vmimg-console-\(UUID().uuidString).log")
        logPath = scratch.path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: scratch)
        process = Process()
        process.executableURL = URL(fileURLWithPath: vmimg)
        process.arguments = ["console", "--home", home, "--bind", "127.0.0.1", "--port", "0", "--max-upload", "64M"]
        process.standardError = log
        process.standardOutput = log
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        var found: String?
        while Date() < deadline, found == nil, process.isRunning {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let range = text.range(of: "console on http://") {
                let rest = text[range.upperBound...].prefix { $0 != "/" && $0 != " " }
                found = "http://" + rest
            } else {
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        guard let found else {
            process.terminate()
            throw ToolError.missing(
                program: "vmimg console",
                hint: "did not start: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
        }
        url = found
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning {
            process.interrupt()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: logPath)
    }
}
