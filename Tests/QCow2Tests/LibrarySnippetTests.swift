import Foundation
import ImageKit
import QCow2
import Testing

/// The README's library snippet, kept compiling and passing here.
@Test func readmeLibrarySnippet() throws {
    let dir = try scratchDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/disk.qcow2"
    // README snippet begins
    do {
        // Create a 1 GiB qcow2 image (QEMU's defaults) and write 64 KiB at 1 MiB.
        let image = try ImageCreator.createQCow2(
            path: path, options: QCow2CreateOptions(size: 1 << 30), openAfter: true)
        try image.write([UInt8](repeating: 0xab, count: 65536), range: 0..<65536, at: 1 << 20)
        try image.flush()  // refcounts → L2 → L1, each made durable before the next
    }
    let disk = try ImageOpener.open(path)  // qcow2 or raw, with its backing chain
    let bytes = try disk.read(count: 4096, at: 1 << 20)
    let extents = try disk.mapExtents()  // what `vmimg map --output=json` prints
    // README snippet ends
    #expect(bytes == [UInt8](repeating: 0xab, count: 4096))
    #expect(extents.contains { $0.start == 1 << 20 && $0.length == 65536 && $0.data })
    let (code, out, _) = try run("qemu-img", ["check", path])
    #expect(code == 0, "\(out)")
}
