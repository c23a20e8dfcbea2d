import CBlockIO

// QEMU-compatible image locking (block/file-posix.c). QEMU takes one-byte shared OFD locks:
// byte 100+i for each permission i it holds and byte 200+i for each permission it does not
// share, then tests with F_OFD_GETLK/F_WRLCK whether another open file description holds a
// byte that conflicts. Taking the same bytes makes QEMU refuse while we write and us refuse
// while a VM runs. Permission bits: 0 consistent read, 1 write, 2 write unchanged, 3 resize.

/// How an image is opened, in QEMU's terms.
public enum LockMode: Sendable, Equatable {
    /// A writer: qemu-io, a VM drive, a `convert` target.
    case readWrite
    /// A reader that still refuses concurrent writers (`qemu-img info` without `-U`).
    case readOnly
    /// `-U` / `force-share=on`: read and share everything, so nobody is blocked.
    case shareAll
}

/// The format driver on top of the file; it decides which permissions are shared.
public enum LockedFormat: Sendable, Equatable {
    /// qcow2 never shares WRITE or RESIZE of its file (metadata would go stale).
    case qcow2
    /// raw passes its user's permissions through and shares everything.
    case raw
}

/// QEMU block permissions (`BLK_PERM_*`), one lock byte each.
public struct BlockPermissions: OptionSet, Sendable, Hashable {
    /// The `BLK_PERM_*` mask (bits 0–3).
    public let rawValue: UInt8
    /// A mask; bits above `BLK_PERM_ALL` are dropped.
    public init(rawValue: UInt8) { self.rawValue = rawValue & 0x0f }

    /// `BLK_PERM_CONSISTENT_READ`, bytes 100/200.
    public static let consistentRead = BlockPermissions(rawValue: 0x01)
    /// `BLK_PERM_WRITE`, bytes 101/201.
    public static let write = BlockPermissions(rawValue: 0x02)
    /// `BLK_PERM_WRITE_UNCHANGED`, bytes 102/202.
    public static let writeUnchanged = BlockPermissions(rawValue: 0x04)
    /// `BLK_PERM_RESIZE`, bytes 103/203.
    public static let resize = BlockPermissions(rawValue: 0x08)
    /// `BLK_PERM_ALL`.
    public static let all = BlockPermissions(rawValue: 0x0f)

    /// QEMU's `bdrv_perm_names`, used verbatim in lock error messages.
    static let names = ["consistent read", "write", "write unchanged", "resize"]
}

/// The permissions an opener holds and shares; determines its lock bytes.
public struct LockSet: Sendable, Hashable {
    /// First byte of "permission held" locks (`RAW_LOCK_PERM_BASE`).
    public static let permBase: Int64 = 100
    /// First byte of "permission not shared" locks (`RAW_LOCK_SHARED_BASE`).
    public static let sharedBase: Int64 = 200

    /// Permissions taken.
    public var perm: BlockPermissions
    /// Permissions others may take at the same time.
    public var shared: BlockPermissions

    /// A set from QEMU permission masks.
    public init(perm: BlockPermissions, shared: BlockPermissions) {
        self.perm = perm
        self.shared = shared
    }

    /// The set QEMU's driver for `format` uses when opened in `mode`; observed on QEMU 7.2:
    /// qcow2 read-write 100,101,103,201,203; qcow2 read-only 100,201,203; `-U` 100;
    /// raw read-write (qemu-io) 100,101; raw read-only 100.
    public init(_ mode: LockMode, format: LockedFormat) {
        switch (mode, format) {
        case (.readWrite, .qcow2):
            self.init(perm: [.consistentRead, .write, .resize], shared: [.consistentRead, .writeUnchanged])
        case (.readOnly, .qcow2):
            self.init(perm: [.consistentRead], shared: [.consistentRead, .writeUnchanged])
        case (.readWrite, .raw):
            self.init(perm: [.consistentRead, .write], shared: .all)
        case (.readOnly, .raw), (.shareAll, _):
            self.init(perm: [.consistentRead], shared: .all)
        }
    }

    /// What `raw_co_create` holds while creating or truncating a file: bytes 101, 103, 203.
    public static let creating = LockSet(perm: [.write, .resize], shared: [.consistentRead, .write, .writeUnchanged])

    /// The bytes to lock, ascending.
    public var bytes: [Int64] {
        let unshared = BlockPermissions.all.subtracting(shared)
        return (0..<4).filter { perm.rawValue >> $0 & 1 == 1 }.map { Self.permBase + Int64($0) }
            + (0..<4).filter { unshared.rawValue >> $0 & 1 == 1 }.map { Self.sharedBase + Int64($0) }
    }
}

extension BlockFile {
    /// Takes QEMU's lock bytes for `mode` and `format`, replacing any set held before.
    ///
    /// - Throws: ``BlockIOError`` with operation `lock` and errno `EAGAIN` when another process
    ///   conflicts; `detail` is QEMU's message (`Failed to get "write" lock` or
    ///   `Failed to get shared "write" lock`) and ``BlockIOError/lockHint`` its hint.
    public func lock(_ mode: LockMode, format: LockedFormat) throws(BlockIOError) {
        try lock(LockSet(mode, format: format))
    }

    /// Takes the lock bytes of `set` (QEMU `raw_handle_perm_lock`): lock the new bytes first, then
    /// test for conflicts, so two racing openers may both fail but never both succeed. On failure
    /// the previous set stays held and nothing new is.
    ///
    /// - Throws: ``BlockIOError`` with operation `lock` (see ``lock(_:format:)``).
    public func lock(_ set: LockSet) throws(BlockIOError) {
        let fd = descriptor
        try heldLockBytes.withLock { (held: inout [Int64]) throws(BlockIOError) in
            var wanted: [Int64] = []
            for byte in set.bytes.sorted() where wanted.last != byte { wanted.append(byte) }
            let added = wanted.filter { !held.contains($0) }
            var locked: [Int64] = []
            func rollBack() {
                for byte in locked { _ = cblockio_ofd_setlk(fd, byte, 1, Int32(CBLOCKIO_LOCK_UNLOCK.rawValue)) }
            }
            for byte in added {
                let err = cblockio_ofd_setlk(fd, byte, 1, Int32(CBLOCKIO_LOCK_READ.rawValue))
                guard err == 0 else {
                    rollBack()
                    throw error("lock", err, "Failed to lock byte \(byte)")
                }
                locked.append(byte)
            }
            if let conflict = Self.conflict(fd: fd, set: set) {
                rollBack()
                switch conflict {
                case .failed(let err): throw error("lock", err, "Failed to test lock bytes")
                case .message(let message): throw error("lock", 11, message)  // EAGAIN, as QEMU
                }
            }
            for byte in held where !wanted.contains(byte) {
                _ = cblockio_ofd_setlk(fd, byte, 1, Int32(CBLOCKIO_LOCK_UNLOCK.rawValue))
            }
            held = wanted
        }
    }

    /// Releases every lock byte held through this file. Unlocking an owned range cannot fail
    /// short of a bad descriptor, and closing the file drops the locks anyway.
    public func unlock() {
        let fd = descriptor
        heldLockBytes.withLock { held in
            for byte in held { _ = cblockio_ofd_setlk(fd, byte, 1, Int32(CBLOCKIO_LOCK_UNLOCK.rawValue)) }
            held = []
        }
    }

    /// The lock bytes currently held through this file, ascending.
    public var heldLocks: [Int64] { heldLockBytes.withLock { $0 } }

    /// QEMU `raw_check_lock_bytes`: the first conflict as QEMU's message, or nil.
    enum Conflict { case message(String), failed(Int32) }
    enum ByteState { case free, held, failed(Int32) }

    static func conflict(fd: Int32, set: LockSet) -> Conflict? {
        let unshared = BlockPermissions.all.subtracting(set.shared)
        for bit in 0..<4 where set.perm.rawValue >> bit & 1 == 1 {
            switch testByte(fd, LockSet.sharedBase + Int64(bit)) {
            case .failed(let err): return .failed(err)
            case .held: return .message("Failed to get \"\(BlockPermissions.names[bit])\" lock")
            case .free: continue
            }
        }
        for bit in 0..<4 where unshared.rawValue >> bit & 1 == 1 {
            switch testByte(fd, LockSet.permBase + Int64(bit)) {
            case .failed(let err): return .failed(err)
            case .held: return .message("Failed to get shared \"\(BlockPermissions.names[bit])\" lock")
            case .free: continue
            }
        }
        return nil
    }

    /// Whether another open file description holds a lock on `byte` (F_OFD_GETLK with F_WRLCK).
    static func testByte(_ fd: Int32, _ byte: Int64) -> ByteState {
        var conflict: Int32 = 0
        let err = unsafe cblockio_ofd_test(fd, byte, 1, Int32(CBLOCKIO_LOCK_WRITE.rawValue), &conflict)
        guard err == 0 else { return .failed(err) }
        return conflict != 0 ? .held : .free
    }
}

/// Who else holds QEMU lock bytes on an image, seen from outside.
public struct LockProbe: Sendable, Equatable {
    /// Bytes among 100–103 and 200–203 that another open file description holds.
    public var heldBytes: [Int64]

    /// Someone holds the write permission (byte 101): a VM, qemu-io or qemu-nbd is writing.
    public var hasWriter: Bool { heldBytes.contains(LockSet.permBase + 1) }
    /// Someone refuses to share writing (byte 201): even a read-only qcow2 user blocks writers.
    public var blocksWriters: Bool { heldBytes.contains(LockSet.sharedBase + 1) }
    /// Nobody holds any QEMU lock byte.
    public var isUnlocked: Bool { heldBytes.isEmpty }

    /// Tests every QEMU lock byte of the file at `path` without taking any lock.
    ///
    /// Our own `BlockFile`s on the same path count as "others": OFD locks belong to open file
    /// descriptions, not processes.
    /// - Throws: ``BlockIOError`` from opening the file (operation `open`) or testing (`lock`).
    public init(path: String) throws(BlockIOError) {
        let file = try BlockFile(path: path, writable: false)
        var held: [Int64] = []
        for byte in Array(100...103) + Array(200...203) {
            switch BlockFile.testByte(file.descriptor, Int64(byte)) {
            case .failed(let err): throw BlockIOError(path: path, operation: "lock", errno: err)
            case .held: held.append(Int64(byte))
            case .free: break
            }
        }
        heldBytes = held
    }
}

extension BlockIOError {
    /// Whether this is a QEMU-style lock conflict (another process uses the image).
    public var isLockConflict: Bool { operation == "lock" && errno == 11 }

    /// QEMU's hint for a lock conflict: `Is another process using the image [<filename>]?`.
    public var lockHint: String? {
        isLockConflict ? "Is another process using the image [\(path)]?" : nil
    }
}
