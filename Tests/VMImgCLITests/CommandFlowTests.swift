import Foundation
import ImageKit
import Testing

@testable import VMImgCLI

/// Command flows (check repair + re-check, compare, map errors, progress) with a scripted engine,
/// compared with real qemu-img runs or the §12 transcripts.
@Suite struct CommandFlowTests {
    /// A 64 MiB image with 128 KiB written and a leaked cluster 7 (file grown to 8 clusters,
    /// refcount[7] = 1), as in §12.10.
    static func makeLeakImage(_ dir: Scratch) throws {
        _ = try dir.qemuImg("create", "-f", "qcow2", "leak.qcow2", "64M")
        try dir.qemuIO("leak.qcow2", "write -P 0xaa 0 128k")
        let handle = try FileHandle(forUpdating: dir.url.appendingPathComponent("leak.qcow2"))
        defer { try? handle.close() }
        try handle.truncate(atOffset: 8 * 65536)
        try handle.seek(toOffset: 0x20000 + 7 * 2)
        handle.write(Data([0, 1]))
    }

    static let leakMessage = "Leaked cluster 7 refcount=1 reference=0"

    @Test func checkReportsLeakLikeQemu() throws {
        try requireQemu()
        let dir = try Scratch()
        try Self.makeLeakImage(dir)
        let report = CheckReport(
            filename: "leak.qcow2", format: "qcow2", imageEndOffset: 524288, leaks: 1,
            totalClusters: 1024,
            allocatedClusters: 2)
        for arguments in [["check", "leak.qcow2"], ["check", "--output=json", "leak.qcow2"]] {
            let engine = FakeEngine(checks: [report], checkMessages: [Self.leakMessage])
            let ours = runCLI(arguments, engine: engine)
            let real = try dir.run("qemu-img", arguments)
            #expect(ours.status == real.status)
            #expect(ours.out == real.stdout)
            #expect(ours.err == real.stderr)
        }
    }

    @Test func checkRepairThenRecheckLikeQemu() throws {
        try requireQemu()
        let dir = try Scratch()
        try Self.makeLeakImage(dir)
        let repaired = CheckReport(
            filename: "leak.qcow2", format: "qcow2", imageEndOffset: 458752, leaksFixed: 1,
            totalClusters: 1024,
            allocatedClusters: 2)
        let clean = CheckReport(
            filename: "leak.qcow2", format: "qcow2", imageEndOffset: 458752, totalClusters: 1024,
            allocatedClusters: 2)
        let engine = FakeEngine(
            checks: [repaired, clean],
            checkMessages: [Self.leakMessage, "Repairing cluster 7 refcount=1 reference=0"])
        let ours = runCLI(["check", "-r", "leaks", "leak.qcow2"], engine: engine)
        let real = try dir.run("qemu-img", "check", "-r", "leaks", "leak.qcow2")
        #expect(ours.status == real.status)
        #expect(ours.out == real.stdout)
        #expect(ours.err == real.stderr)
        #expect(engine.seenRequests.withLock { $0 } == ["check 1", "check 0"])
    }

    @Test func checkJSONAfterRepairCarriesFixedCounts() throws {
        // §12.10 `check -r all --output=json leak2.qcow2`.
        let engine = FakeEngine(checks: [
            CheckReport(filename: "leak2.qcow2", format: "qcow2", leaksFixed: 1),
            CheckReport(
                filename: "leak2.qcow2", format: "qcow2", imageEndOffset: 458752, totalClusters: 1024,
                allocatedClusters: 2),
        ])
        let result = runCLI(["check", "-r", "all", "--output=json", "leak2.qcow2"], engine: engine)
        #expect(result.status == 0)
        #expect(
            result.out == """
                {
                    "image-end-offset": 458752,
                    "total-clusters": 1024,
                    "check-errors": 0,
                    "leaks-fixed": 1,
                    "allocated-clusters": 2,
                    "filename": "leak2.qcow2",
                    "format": "qcow2"
                }

                """)
    }

    @Test func checkCorruptionsAndLeaksTranscript() throws {
        // §12.10 both.qcow2 and l1past.qcow2.
        let both = CheckReport(
            filename: "both.qcow2", format: "qcow2", imageEndOffset: 458752, corruptions: 1, leaks: 1,
            totalClusters: 1024, allocatedClusters: 2)
        #expect(
            CheckRenderer.human(both) == """

                1 errors were found on the image.
                Data may be corrupted, or further writes to the image may corrupt it.

                1 leaked clusters were found on the image.
                This means waste of disk space, but no harm to data.
                2/1024 = 0.20% allocated, 0.00% fragmented, 0.00% compressed clusters
                Image end offset: 458752

                """)
        #expect(CheckRenderer.exitCode(both) == 2)
        let zstd = CheckReport(
            filename: "zstd.qcow2", format: "qcow2", imageEndOffset: 458752, totalClusters: 64,
            allocatedClusters: 4,
            fragmentedClusters: 3, compressedClusters: 3)
        #expect(
            CheckRenderer.human(zstd)
                == "No errors were found on the image.\n"
                + "4/64 = 6.25% allocated, 75.00% fragmented, 75.00% compressed clusters\nImage end offset: 458752\n"
        )
        #expect(
            try CheckRenderer.json(zstd) == """
                {
                    "image-end-offset": 458752,
                    "compressed-clusters": 3,
                    "total-clusters": 64,
                    "check-errors": 0,
                    "allocated-clusters": 4,
                    "filename": "zstd.qcow2",
                    "format": "qcow2",
                    "fragmented-clusters": 3
                }

                """)
    }

    @Test func checkExitCodes() {
        let unsupported = FakeEngine(
            failure: .init(kind: .checkNotSupported, message: "This image format does not support checks")
        )
        let raw = runCLI(["check", "disk.raw"], engine: unsupported)
        #expect(raw.status == 63)
        #expect(raw.err == "vmimg: This image format does not support checks\n")
        let rebuild = FakeEngine(failure: .init(kind: .corrupt, message: "Input/output error"))
        let failed = runCLI(["check", "-r", "leaks", "corrupt.qcow2"], engine: rebuild)
        #expect(failed.status == 1)
        #expect(failed.err == "vmimg: Check failed: Input/output error\n")
    }

    @Test func compareTranscripts() {
        // §12.11.
        let cases: [(CompareResult, String, Int32)] = [
            (.init(size1: 64, size2: 64, outcome: .identical), "Images are identical.\n", 0),
            (
                .init(size1: 64, size2: 64, outcome: .contentMismatch(offset: 1_048_576)),
                "Content mismatch at offset 1048576!\n", 1
            ),
            (
                .init(size1: 64 << 20, size2: 128 << 20, outcome: .identical),
                "Warning: Image size mismatch!\nImages are identical.\n", 0
            ),
            (
                .init(size1: 64 << 20, size2: 128 << 20, outcome: .strictSizeMismatch),
                "Strict mode: Image size mismatch!\n", 1
            ),
            (
                .init(size1: 64 << 20, size2: 128 << 20, outcome: .contentMismatch(offset: 104_857_600)),
                "Warning: Image size mismatch!\nContent mismatch at offset 104857600!\n", 1
            ),
            (
                .init(size1: 64, size2: 64, outcome: .blockStatusMismatch(offset: 65536)),
                "Strict mode: Offset 65536 block status mismatch!\n", 1
            ),
        ]
        for (result, text, code) in cases {
            #expect(CompareRenderer.human(result) == text)
            let run = runCLI(["compare", "a.qcow2", "b.qcow2"], engine: FakeEngine(compare: result))
            #expect(run.out == text)
            #expect(run.status == code)
        }
        let progress = runCLI(
            ["compare", "-p", "a.qcow2", "b.qcow2"],
            engine: FakeEngine(compare: .init(size1: 1, size2: 1, outcome: .identical)))
        #expect(progress.out == "    (0.00/100%)\r    (100.00/100%)\rImages are identical.\n\n")
        let quiet = runCLI(
            ["compare", "-q", "a.qcow2", "c.qcow2"],
            engine: FakeEngine(compare: .init(size1: 1, size2: 1, outcome: .contentMismatch(offset: 0))))
        #expect(quiet.out.isEmpty && quiet.status == 1)
        let missing = runCLI(
            ["compare", "a.qcow2", "nonexist.qcow2"],
            engine: FakeEngine(
                failure: .init(
                    kind: .open,
                    message:
                        "Could not open 'nonexist.qcow2': Could not open 'nonexist.qcow2': No such file or directory"
                )))
        #expect(missing.status == 2)
        #expect(
            missing.err
                == "vmimg: Could not open 'nonexist.qcow2': Could not open 'nonexist.qcow2': No such file or directory\n"
        )
    }

    @Test func convertProgressTranscript() {
        // §12.12: 0, 25, 50, 75, 100, then the final 100 and a newline.
        let result = runCLI(
            ["convert", "-p", "-O", "qcow2", "src.raw", "dst.qcow2"], engine: FakeEngine())
        #expect(result.status == 0)
        #expect(
            result.out
                == "    (0.00/100%)\r    (25.00/100%)\r    (50.00/100%)\r    (75.00/100%)\r    (100.00/100%)\r"
                + "    (100.00/100%)\r\n")
    }

    @Test func mapRefusesCompressedClustersInHumanOutput() {
        // §12.7: header on stdout, error on stderr, exit 1.
        let engine = FakeEngine(map: [
            MapExtent(start: 0, length: 131072, present: true, zero: false, data: true),
            MapExtent(
                start: 131072, length: 65536, present: true, zero: false, data: true, offset: 393216),
        ])
        let result = runCLI(["map", "zlib.qcow2"], engine: engine)
        #expect(result.status == 1)
        #expect(result.out == MapRenderer.header)
        #expect(result.err == "vmimg: File contains external, encrypted or compressed clusters.\n")
        let json = runCLI(
            ["map", "--output", "json", "--start-offset=64k", "zlib.qcow2"], engine: engine)
        #expect(json.status == 0)
        #expect(
            json.out
                == "[{ \"start\": 0, \"length\": 131072, \"depth\": 0, \"present\": true, \"zero\": false, "
                + "\"data\": true},\n{ \"start\": 131072, \"length\": 65536, \"depth\": 0, \"present\": true, "
                + "\"zero\": false, \"data\": true, \"offset\": 393216}]\n")
        #expect(engine.seenRequests.withLock { $0 }.last == "map 65536 nil")
    }

    @Test(arguments: [
        (UInt64(0), "0 B"), (1023, "0.999 KiB"), (999, "999 B"), (1000, "0.977 KiB"),
        (593920, "580 KiB"), (1_314_816, "1.25 MiB"),
        (1 << 30, "1 GiB"), (67_108_864, "64 MiB"), (1_572_864, "1.5 MiB"), (1 << 40, "1 TiB"),
    ])
    func sizeToStr(bytes: UInt64, text: String) {
        #expect(HumanFormat.size(bytes) == text)
    }

    @Test func formatSpecificDumpWithBitmaps() throws {
        var specific = QCow2SpecificInfo()
        specific.bitmaps = [BitmapInfo(name: "b1", granularity: 65536, flags: ["auto"])]
        let text = HumanFormat.dump(try QObjectEncoder().encode(specific), indentation: 1)
        #expect(text.contains("    bitmaps:\n        [0]:\n"))
        #expect(text.contains("            name: b1\n"))
        #expect(text.contains("                [0]: auto\n"))
    }
}
