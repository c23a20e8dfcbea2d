import Foundation
import ImageKit
import Testing

@testable import VMImgCLI

/// Renders hand-built models of images made by real qemu-img and compares with what qemu-img
/// prints for them. Host-dependent values (actual size, snapshot dates) are read from qemu-img's
/// own JSON so the comparison stays exact.
@Suite struct RealQemuRendererTests {
    static let v3Specific = QCow2SpecificInfo()

    /// §12.2: 1 GiB v3 image with data, a zero cluster and a far write.
    @Test func infoCheckMapMeasureOfDefaultImage() throws {
        try requireQemu()
        let dir = try Scratch()
        _ = try dir.qemuImg("create", "-f", "qcow2", "img.qcow2", "1G")
        try dir.qemuIO(
            "img.qcow2", "write -P 0xaa 0 128k", "write -P 0x55 1M 64k", "write -z 2M 64k",
            "write -P 0x11 512M 4k")
        let json = try #require(
            try dir.qemuJSON("info", "--output=json", "img.qcow2") as? [String: Any])
        let info = ImageInfo(
            filename: "img.qcow2", format: "qcow2", virtualSize: 1 << 30,
            actualSize: try json.int64("actual-size"),
            clusterSize: 65536, dirtyFlag: false, formatSpecific: Self.v3Specific)
        #expect(try InfoRenderer.human(info) == dir.qemuImg("info", "img.qcow2"))
        #expect(try InfoRenderer.json(info) == dir.qemuImg("info", "--output=json", "img.qcow2"))

        let report = CheckReport(
            filename: "img.qcow2", format: "qcow2", imageEndOffset: 655360, totalClusters: 16384,
            allocatedClusters: 4)
        #expect(CheckRenderer.human(report) == (try dir.qemuImg("check", "img.qcow2")))
        #expect(try CheckRenderer.json(report) == dir.qemuImg("check", "--output=json", "img.qcow2"))

        let extents = [
            MapExtent(
                start: 0, length: 65536, present: true, zero: false, data: true, offset: 0x50000,
                filename: "img.qcow2"),
            MapExtent(
                start: 65536, length: 65536, present: true, zero: false, data: true, offset: 0x60000,
                filename: "img.qcow2"),
            MapExtent(start: 131072, length: 917504, present: false, zero: true, data: false),
            MapExtent(
                start: 1 << 20, length: 65536, present: true, zero: false, data: true, offset: 0x70000,
                filename: "img.qcow2"),
            MapExtent(start: 1_114_112, length: 983040, present: false, zero: true, data: false),
            MapExtent(start: 2 << 20, length: 65536, present: true, zero: true, data: false),
            MapExtent(start: 2_162_688, length: 534_708_224, present: false, zero: true, data: false),
            MapExtent(
                start: 512 << 20, length: 65536, present: true, zero: false, data: true, offset: 0x90000,
                filename: "img.qcow2"),
            MapExtent(start: 536_936_448, length: 536_805_376, present: false, zero: true, data: false),
        ]
        #expect(MapRenderer.json(extents) == (try dir.qemuImg("map", "--output=json", "img.qcow2")))
        let human = try MapRenderer.merge(extents, human: true).compactMap(MapRenderer.humanRow)
        #expect(MapRenderer.header + human.joined() == (try dir.qemuImg("map", "img.qcow2")))

        let measure = MeasureResult(required: 655360, fullyAllocated: 1_074_135_040, bitmaps: 0)
        #expect(
            MeasureRenderer.human(measure) == (try dir.qemuImg("measure", "-O", "qcow2", "img.qcow2")))
        #expect(
            try MeasureRenderer.json(measure)
                == dir.qemuImg("measure", "--output=json", "-O", "qcow2", "img.qcow2"))
        let sized = MeasureResult(required: 1_900_544, fullyAllocated: 10_739_318_784)
        #expect(
            try MeasureRenderer.json(sized)
                == dir.qemuImg("measure", "--output=json", "--size", "10G", "-O", "qcow2"))
    }

    /// §12.3: v2 images report only compat, compression type and refcount bits.
    @Test func infoOfVersion2Image() throws {
        try requireQemu()
        let dir = try Scratch()
        _ = try dir.qemuImg("create", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "64M")
        let json = try #require(try dir.qemuJSON("info", "--output=json", "v2.qcow2") as? [String: Any])
        let info = ImageInfo(
            filename: "v2.qcow2", format: "qcow2", virtualSize: 64 << 20,
            actualSize: try json.int64("actual-size"),
            clusterSize: 65536, dirtyFlag: false, formatSpecific: .version2())
        #expect(try InfoRenderer.human(info) == dir.qemuImg("info", "v2.qcow2"))
        #expect(try InfoRenderer.json(info) == dir.qemuImg("info", "--output=json", "v2.qcow2"))
    }

    /// §12.6: snapshot table in `info` and `snapshot -l`, snapshot objects in JSON.
    @Test func snapshotsInInfoAndList() throws {
        try requireQemu()
        let dir = try Scratch()
        _ = try dir.qemuImg("create", "-f", "qcow2", "img.qcow2", "64M")
        try dir.qemuIO("img.qcow2", "write -P 0x11 0 128k")
        _ = try dir.qemuImg("snapshot", "-c", "s1", "img.qcow2")
        _ = try dir.qemuImg("snapshot", "-c", "a-much-longer-snapshot-name", "img.qcow2")
        let json = try #require(
            try dir.qemuJSON("info", "--output=json", "img.qcow2") as? [String: Any])
        let rows = try #require(json["snapshots"] as? [[String: Any]])
        let snapshots = try rows.map { row in
            SnapshotInfo(
                id: try #require(row["id"] as? String), name: try #require(row["name"] as? String),
                dateSec: try row.int64("date-sec"), dateNsec: try row.int64("date-nsec"), icount: 0)
        }
        let info = ImageInfo(
            filename: "img.qcow2", format: "qcow2", virtualSize: 64 << 20,
            actualSize: try json.int64("actual-size"),
            clusterSize: 65536, dirtyFlag: false, snapshots: snapshots, formatSpecific: Self.v3Specific)
        #expect(try InfoRenderer.human(info) == dir.qemuImg("info", "img.qcow2"))
        #expect(try InfoRenderer.json(info) == dir.qemuImg("info", "--output=json", "img.qcow2"))
        #expect(
            SnapshotTableRenderer.table(snapshots) == (try dir.qemuImg("snapshot", "-l", "img.qcow2")))
    }

    /// §12.5: `--backing-chain` text and JSON list, and map across the chain.
    @Test func backingChain() throws {
        try requireQemu()
        let dir = try Scratch()
        _ = try dir.qemuImg("create", "-f", "qcow2", "base.qcow2", "64M")
        try dir.qemuIO("base.qcow2", "write -P 0x11 0 1M")
        _ = try dir.qemuImg("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "img.qcow2")
        try dir.qemuIO("img.qcow2", "write -P 0x22 512k 64k")
        let list = try #require(
            try dir.qemuJSON("info", "--backing-chain", "--output=json", "img.qcow2") as? [[String: Any]])
        let base = ImageInfo(
            filename: "base.qcow2", format: "qcow2", virtualSize: 64 << 20,
            actualSize: try list[1].int64("actual-size"),
            clusterSize: 65536, dirtyFlag: false, formatSpecific: Self.v3Specific)
        let top = ImageInfo(
            filename: "img.qcow2", format: "qcow2", virtualSize: 64 << 20,
            actualSize: try list[0].int64("actual-size"),
            clusterSize: 65536, dirtyFlag: false, backingFilename: "base.qcow2",
            fullBackingFilename: "base.qcow2",
            backingFilenameFormat: "qcow2", backingImage: base, formatSpecific: Self.v3Specific)
        #expect(
            try InfoRenderer.human(chain: top.chain)
                == dir.qemuImg("info", "--backing-chain", "img.qcow2"))
        #expect(
            try InfoRenderer.json(chain: top.chain)
                == dir.qemuImg("info", "--backing-chain", "--output=json", "img.qcow2"))
        var single = top
        single.backingImage = nil
        #expect(try InfoRenderer.human(single) == dir.qemuImg("info", "img.qcow2"))

        let extents = [
            MapExtent(
                start: 0, length: 524288, depth: 1, present: true, zero: false, data: true, offset: 0x50000,
                filename: "base.qcow2"),
            MapExtent(
                start: 524288, length: 65536, present: true, zero: false, data: true, offset: 0x50000,
                filename: "img.qcow2"),
            MapExtent(
                start: 589824, length: 458752, depth: 1, present: true, zero: false, data: true,
                offset: 0xe0000, filename: "base.qcow2"),
            MapExtent(
                start: 1 << 20, length: 66_060_288, depth: 1, present: false, zero: true, data: false),
        ]
        #expect(MapRenderer.json(extents) == (try dir.qemuImg("map", "--output=json", "img.qcow2")))
        let human = try MapRenderer.merge(extents, human: true).compactMap(MapRenderer.humanRow)
        #expect(MapRenderer.header + human.joined() == (try dir.qemuImg("map", "img.qcow2")))
    }

    /// §12.9: external data file lines in the format-specific block.
    @Test func externalDataFile() throws {
        try requireQemu()
        let dir = try Scratch()
        _ = try dir.qemuImg("create", "-f", "qcow2", "-o", "data_file=img.data", "img.qcow2", "64M")
        let json = try #require(
            try dir.qemuJSON("info", "--output=json", "img.qcow2") as? [String: Any])
        let info = ImageInfo(
            filename: "img.qcow2", format: "qcow2", virtualSize: 64 << 20,
            actualSize: try json.int64("actual-size"),
            clusterSize: 65536, dirtyFlag: false,
            formatSpecific: QCow2SpecificInfo(dataFile: "img.data", dataFileRaw: false))
        #expect(try InfoRenderer.human(info) == dir.qemuImg("info", "img.qcow2"))
        #expect(try InfoRenderer.json(info) == dir.qemuImg("info", "--output=json", "img.qcow2"))
    }

    /// Raw images have no format-specific block; `check` exits 63.
    @Test func rawImage() throws {
        try requireQemu()
        let dir = try Scratch()
        _ = try dir.qemuImg("create", "-f", "raw", "disk.raw", "1M")
        let json = try #require(try dir.qemuJSON("info", "--output=json", "disk.raw") as? [String: Any])
        let info = ImageInfo(
            filename: "disk.raw", format: "raw", virtualSize: 1 << 20,
            actualSize: try json.int64("actual-size"),
            dirtyFlag: false)
        #expect(try InfoRenderer.human(info) == dir.qemuImg("info", "disk.raw"))
        #expect(try InfoRenderer.json(info) == dir.qemuImg("info", "--output=json", "disk.raw"))
    }
}
