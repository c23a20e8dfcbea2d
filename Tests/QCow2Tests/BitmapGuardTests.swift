import BlockIO
import Foundation
import QCow2
import QCow2Format
import Testing

/// The library's side of persistent bitmaps: bitmaps added through the API are written so that
/// qemu-img reads them, and a write after them (same session) still marks the enabled ones
/// `in_use`, since vmimg does not record writes in bitmaps.
struct BitmapGuardTests {
    @Test func writeAfterAddingMarksNewEnabledBitmapsInUse() throws {
        let dir = try scratchDir()
        let path = try SnapFixture.make(dir, options: "cluster_size=4096", size: "8M", ops: ["write -P 1 0 64k"])
        let image = try QCow2Image(path: path, writable: true)
        let on = (nameBytes: Array("on".utf8), granularityBits: UInt8(16), flags: BitmapDirectoryEntry.flagAuto)
        let off = (nameBytes: Array("off".utf8), granularityBits: UInt8(12), flags: UInt32(0))
        // One bit set in each: the first granule.
        try image.addPersistentBitmaps([on, off]) { _, piece in
            piece == 0 ? [1] + [UInt8](repeating: 0, count: 4095) : nil
        }
        var flags = try image.persistentBitmaps().map { ($0.name, $0.inUse, $0.isAuto) }
        #expect(flags.map(\.0) == ["on", "off"] && flags.allSatisfy { !$0.1 })
        try image.write([UInt8](repeating: 7, count: 4096), range: 0..<4096, at: 1 << 20)
        flags = try image.persistentBitmaps().map { ($0.name, $0.inUse, $0.isAuto) }
        #expect(flags.first { $0.0 == "on" }?.1 == true, "the enabled bitmap is in use after a write")
        #expect(flags.first { $0.0 == "off" }?.1 == false, "the disabled bitmap stays valid")
        try image.close()
        let (code, out) = try SnapFixture.check(path)
        #expect(code == 0, "\(out)")
        let (_, info, _) = try run("qemu-img", ["info", "--output=json", path])
        #expect(info.contains("\"in-use\"") && info.contains("\"off\""), "\(info)")
    }
}
