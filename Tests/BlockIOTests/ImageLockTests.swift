import BlockIO
import Foundation
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(10))) struct ImageLockTests {
    func qcow2(_ scratch: Scratch) throws -> String {
        let path = scratch.path("img.qcow2")
        let result = try Tool.run("qemu-img", ["create", "-q", "-f", "qcow2", path, "1M"])
        #expect(result.status == 0, "\(result.stderrText)")
        return path
    }

    @Test func byteSetsMatchQemu() {
        #expect(LockSet(.readWrite, format: .qcow2).bytes == [100, 101, 103, 201, 203])
        #expect(LockSet(.readOnly, format: .qcow2).bytes == [100, 201, 203])
        #expect(LockSet(.shareAll, format: .qcow2).bytes == [100])
        #expect(LockSet(.readWrite, format: .raw).bytes == [100, 101])
        #expect(LockSet(.readOnly, format: .raw).bytes == [100])
        #expect(LockSet(.shareAll, format: .raw).bytes == [100])
        #expect(LockSet.creating.bytes == [101, 103, 203])
    }

    @Test func ourWriterBlocksQemuImgInfoButNotForceShare() throws {
        let scratch = try Scratch()
        let path = try qcow2(scratch)
        let file = try BlockFile(path: path, writable: true)
        try file.lock(.readWrite, format: .qcow2)
        #expect(file.heldLocks == [100, 101, 103, 201, 203])
        let info = try Tool.run("qemu-img", ["info", path])
        #expect(info.status == 1)
        #expect(info.stderrText.contains("Failed to get shared \"write\" lock"), "\(info.stderrText)")
        #expect(info.stderrText.contains("Is another process using the image [\(path)]?"), "\(info.stderrText)")
        #expect(try Tool.run("qemu-img", ["info", "-U", path]).status == 0)
        file.unlock()
        #expect(file.heldLocks.isEmpty)
        #expect(try Tool.run("qemu-img", ["info", path]).status == 0)
    }

    @Test func ourReaderAllowsInfoButBlocksQemuWriters() throws {
        let scratch = try Scratch()
        let path = try qcow2(scratch)
        let file = try BlockFile(path: path, writable: false)
        try file.lock(.readOnly, format: .qcow2)
        #expect(try Tool.run("qemu-img", ["info", path]).status == 0)
        let write = try Tool.run("qemu-io", ["-c", "write 0 512", path])
        #expect(write.stderrText.contains("Failed to get \"write\" lock"), "\(write.stderrText)")
        // Downgrading to share-all lets the writer in.
        try file.lock(.shareAll, format: .qcow2)
        #expect(file.heldLocks == [100])
        let retry = try Tool.run("qemu-io", ["-c", "write 0 512", path])
        #expect(retry.status == 0 && !retry.stderrText.contains("lock"), "\(retry.stderrText)")
    }

    @Test func qemuIoWriterBlocksUs() throws {
        let scratch = try Scratch()
        let path = try qcow2(scratch)
        let holder = try BackgroundProcess("qemu-io", ["-f", "qcow2", path])
        #expect(try eventually { try LockProbe(path: path).hasWriter })
        #expect(try LockProbe(path: path).heldBytes == [100, 101, 103, 201, 203])

        let file = try BlockFile(path: path, writable: true)
        let writer = #expect(throws: BlockIOError.self) { try file.lock(.readWrite, format: .qcow2) }
        #expect(writer?.detail == "Failed to get \"write\" lock")
        #expect(writer?.isLockConflict == true)
        #expect(writer?.lockHint == "Is another process using the image [\(path)]?")
        #expect(file.heldLocks.isEmpty)  // rolled back

        let reader = #expect(throws: BlockIOError.self) { try file.lock(.readOnly, format: .qcow2) }
        #expect(reader?.detail == "Failed to get shared \"write\" lock")
        try file.lock(.shareAll, format: .qcow2)  // like -U
        holder.stop()
        #expect(try eventually { try !LockProbe(path: path).hasWriter })
        try file.lock(.readWrite, format: .qcow2)
    }

    @Test func qemuSystemDriveBlocksUs() throws {
        let scratch = try Scratch()
        let path = try qcow2(scratch)
        let holder = try BackgroundProcess(
            "qemu-system-x86_64",
            [
                "-machine", "none", "-S", "-nographic", "-nodefaults", "-monitor", "none",
                "-drive", "file=\(path),if=none,id=d0,format=qcow2",
            ])
        #expect(try eventually { try LockProbe(path: path).hasWriter })
        let file = try BlockFile(path: path, writable: true)
        let error = #expect(throws: BlockIOError.self) { try file.lock(.readWrite, format: .qcow2) }
        #expect(error?.detail == "Failed to get \"write\" lock")
        holder.stop()
    }

    @Test func twoOfOurFilesConflict() throws {
        let scratch = try Scratch()
        let path = scratch.path("r.raw")
        let first = try BlockFile(path: path, writable: true, create: true)
        try first.lock(.readOnly, format: .qcow2)
        #expect(try LockProbe(path: path).blocksWriters)
        let second = try BlockFile(path: path, writable: true)
        #expect(throws: BlockIOError.self) { try second.lock(.readWrite, format: .qcow2) }
        try second.lock(.readOnly, format: .qcow2)  // readers coexist
        first.unlock()
        second.unlock()
        #expect(try LockProbe(path: path).isUnlocked)
        try second.lock(.readWrite, format: .raw)
        #expect(try LockProbe(path: path).heldBytes == [100, 101])
    }

    @Test func failedUpgradeKeepsPreviousSet() throws {
        let scratch = try Scratch()
        let path = scratch.path("u.raw")
        let ours = try BlockFile(path: path, writable: true, create: true)
        let other = try BlockFile(path: path, writable: false)
        try other.lock(.readOnly, format: .qcow2)
        try ours.lock(.readOnly, format: .qcow2)
        #expect(throws: BlockIOError.self) { try ours.lock(.readWrite, format: .qcow2) }
        #expect(ours.heldLocks == [100, 201, 203])
        other.unlock()
        try ours.lock(.readWrite, format: .qcow2)
        #expect(ours.heldLocks == [100, 101, 103, 201, 203])
    }

    @Test func rawQemuIoWriterSeenByProbe() throws {
        let scratch = try Scratch()
        let path = scratch.path("w.raw")
        try BlockFile(path: path, writable: true, create: true).setLength(1 << 20)
        let holder = try BackgroundProcess("qemu-io", ["-f", "raw", path])
        #expect(try eventually { try LockProbe(path: path).heldBytes == [100, 101] })
        let file = try BlockFile(path: path, writable: true)
        let error = #expect(throws: BlockIOError.self) { try file.lock(.readOnly, format: .qcow2) }
        #expect(error?.detail == "Failed to get shared \"write\" lock")
        try file.lock(.readWrite, format: .raw)  // raw shares everything, as qemu-io -f raw does
        holder.stop()
    }
}
