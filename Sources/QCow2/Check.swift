import BlockIO
import QCow2Format

/// Which inconsistencies `check(repair:)` may fix: qemu-img's `-r leaks` and `-r all`.
public struct QCow2RepairMode: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// Lower refcounts that exceed the number of references (QEMU's `BDRV_FIX_LEAKS`).
    public static let leaks = QCow2RepairMode(rawValue: 1)
    /// Raise too-low refcounts, fix COPIED flags, rebuild the refcount structure (`BDRV_FIX_ERRORS`).
    public static let errors = QCow2RepairMode(rawValue: 2)
    /// `-r all`.
    public static let all: QCow2RepairMode = [.leaks, .errors]
}

/// What `qemu-img check` reports for a qcow2 image (QEMU's `BdrvCheckResult` plus the lines it prints).
/// After a repair that fixed anything the counts describe the re-checked image, as qemu-img reports
/// them, with `leaksFixed`/`corruptionsFixed` from the repair pass.
public struct QCow2CheckResult: Equatable, Sendable {
    /// Inconsistencies that may lose data: refcounts below the references, bad flags or offsets.
    public var corruptions = 0
    /// Clusters whose refcount exceeds their references (wasted space only).
    public var leaks = 0
    /// Internal errors (I/O, memory) that kept the check from completing.
    public var checkErrors = 0
    public var corruptionsFixed = 0
    public var leaksFixed = 0
    /// (Highest cluster with a non-zero on-disk or expected refcount + 1) × cluster size.
    public var imageEndOffset: UInt64 = 0
    /// Guest clusters: ceil(size / cluster size).
    public var totalClusters: UInt64 = 0
    /// Allocated clusters of the active tree (data, preallocated zero and compressed).
    public var allocatedClusters: UInt64 = 0
    /// Allocated clusters not directly after their predecessor in the same L2 table, plus every
    /// compressed cluster.
    public var fragmentedClusters: UInt64 = 0
    public var compressedClusters: UInt64 = 0
    /// Every line qemu-img prints on stderr during the check, in order, across the repair pass and
    /// the re-check (`Leaked cluster 7 refcount=1 reference=0`, `ERROR …`, `Repairing …`,
    /// `Rebuilding refcount structure`).
    public var messages: [String] = []
    /// The `Repairing …` lines among `messages`.
    public var repairedMessages: [String] { messages.filter { $0.hasPrefix("Repairing") } }
    /// Set when the check could not complete (qemu-img: `Check failed: <failure>`, exit 1), e.g.
    /// "Input/output error" when `-r leaks` would need a refcount rebuild. Counts are then partial.
    public var failure: String?

    public init() {}

    /// qemu-img check's exit code: 1 not completed, 2 corruptions remain, 3 only leaks remain, 0 clean.
    public var exitCode: Int32 {
        if failure != nil || checkErrors > 0 { return 1 }
        if corruptions > 0 { return 2 }
        return leaks > 0 ? 3 : 0
    }
}

extension QCow2CheckResult {
    /// Copies the counters of a pass into the result.
    mutating func take(_ counts: CheckCounts) {
        corruptions = counts.corruptions
        leaks = counts.leaks
        checkErrors = counts.checkErrors
        corruptionsFixed = counts.corruptionsFixed
        leaksFixed = counts.leaksFixed
        imageEndOffset = counts.imageEndOffset
        totalClusters = counts.totalClusters
        allocatedClusters = counts.allocated
        fragmentedClusters = counts.fragmented
        compressedClusters = counts.compressed
    }
}

/// Counters of one check pass (QEMU's `BdrvCheckResult` without the lines).
struct CheckCounts: Equatable {
    var corruptions = 0
    var leaks = 0
    var checkErrors = 0
    var corruptionsFixed = 0
    var leaksFixed = 0
    var imageEndOffset: UInt64 = 0
    var totalClusters: UInt64 = 0
    var allocated: UInt64 = 0
    var fragmented: UInt64 = 0
    var compressed: UInt64 = 0

    /// QEMU's `qcow2_add_check_result`.
    mutating func add(_ other: CheckCounts, allocationInfo: Bool) {
        corruptions += other.corruptions
        leaks += other.leaks
        checkErrors += other.checkErrors
        corruptionsFixed += other.corruptionsFixed
        leaksFixed += other.leaksFixed
        if allocationInfo {
            imageEndOffset = other.imageEndOffset
            totalClusters = other.totalClusters
            allocated = other.allocated
            fragmented = other.fragmented
            compressed = other.compressed
        }
    }
}

/// A check that had to stop; `reason` is the strerror text qemu-img prints after "Check failed: ".
struct CheckFailure: Error, Equatable {
    var reason: String
    static let io = CheckFailure(reason: "Input/output error")
    static let noMemory = CheckFailure(reason: "Cannot allocate memory")
    static let tooLarge = CheckFailure(reason: "File too large")
    static let invalid = CheckFailure(reason: "Invalid argument")

    init(reason: String) { self.reason = reason }
    init(_ error: any Error) {
        reason = (error as? BlockIOError)?.errnoText ?? "Input/output error"
    }
}

extension QCow2Image {
    /// Checks refcounts and metadata exactly as `qemu-img check [-r leaks|all]` does (QEMU 7.2
    /// `qcow2_co_check_locked` and `img_check`), optionally repairing, then re-checking if anything
    /// was fixed.
    /// - Parameter repair: what to fix; non-empty needs an image opened writable.
    /// - Returns: the final figures and the stderr lines; `failure` is set when qemu-img would say
    ///   "Check failed".
    /// - Throws: `QCow2Error.unsupported` when repairing a read-only image.
    public func check(repair: QCow2RepairMode = []) throws -> QCow2CheckResult {
        try check(repair: repair, recheck: true)
    }

    /// One pass of `check`, without qemu-img's re-check after a repair (the CLI runs that flow).
    public func checkPass(repair: QCow2RepairMode = []) throws -> QCow2CheckResult {
        try check(repair: repair, recheck: false)
    }

    func check(repair: QCow2RepairMode, recheck: Bool) throws -> QCow2CheckResult {
        if !repair.isEmpty && !isWritable {
            throw QCow2Error.unsupported(
                "the image must be opened read/write to repair it (repair: \(repair.rawValue))")
        }
        return try state.withLock { s in
            // Cached metadata and deferred decrements must be on disk before refcounts are compared.
            if isWritable { try s.flushMetadata(file: file, dataFile: dataFile) }
            var out = QCow2CheckResult()
            var (counts, failure) = try s.checkLocked(fix: repair, file: file, messages: &out.messages)
            if recheck && failure == nil && (counts.corruptionsFixed > 0 || counts.leaksFixed > 0) {
                let fixed = (counts.corruptionsFixed, counts.leaksFixed)
                (counts, failure) = try s.checkLocked(fix: [], file: file, messages: &out.messages)
                (counts.corruptionsFixed, counts.leaksFixed) = fixed
            }
            out.failure = failure?.reason
            out.take(counts)
            return out
        }
    }

    /// What QEMU does on a read-write open of an image whose dirty bit (incompatible bit 0) is set:
    /// one check pass repairing leaks and errors, which clears the bit when nothing is left.
    /// - Returns: nil when the image is not dirty or not writable; else the repair pass (its
    ///   `messages` are what QEMU prints on stderr).
    /// - Throws: `QCow2Error.invalid(field: "dirty bit", …)` ("Could not repair dirty image") when
    ///   the pass failed or had internal errors.
    @discardableResult
    public func rebuildRefcountsIfDirty() throws -> QCow2CheckResult? {
        guard isWritable, header.incompatibleFeatures.contains(.dirty) else { return nil }
        return try state.withLock { s in
            var out = QCow2CheckResult()
            let (counts, failure) = try s.checkLocked(fix: .all, file: file, messages: &out.messages)
            if failure != nil || counts.checkErrors > 0 {
                throw QCow2Error.invalid(
                    field: "dirty bit",
                    reason: "Could not repair dirty image: \(failure?.reason ?? "Input/output error")")
            }
            out.take(counts)
            return out
        }
    }
}

extension QCow2State {
    /// One pass of QEMU's `qcow2_co_check_locked`: snapshot table checks, refcount check (with
    /// repair), then clearing the dirty and corrupt bits when repairing left no corruption.
    /// - Throws: only ``OperationCancelled`` (every other failure is in the result, as in QEMU);
    ///   repairs made so far are durable, and the dirty and corrupt bits stay as they were.
    mutating func checkLocked(
        fix: QCow2RepairMode, file: any BlockDevice, messages: inout [String]
    ) throws(OperationCancelled) -> (CheckCounts, CheckFailure?) {
        var result = CheckCounts()
        var snapshotCounts = CheckCounts()
        // qcow2_check_read_snapshot_table: v3 entries need at least 16 bytes of extra data.
        if header.version >= 3 {
            for (i, sn) in snapshots.enumerated() where sn.storedExtraDataSize < 16 {
                snapshotCounts.corruptions += 1
                messages.append(
                    "\(fix.contains(.errors) ? "Repairing" : "ERROR") snapshot table entry \(i) is incomplete")
            }
        }
        var run = CheckRun(fix: fix, geometry: geometry)
        let failure: CheckFailure?
        do {
            try checkRefcounts(&run, file: file)
            failure = nil
        } catch let error as CheckFailure {
            failure = error
        } catch let error as OperationCancelled {
            throw error
        } catch {
            run.res.checkErrors += 1
            failure = CheckFailure(error)
        }
        messages += run.messages
        result.add(run.res, allocationInfo: true)
        // Rewriting an incomplete snapshot table needs the allocator (qcow2_check_fix_snapshot_table);
        // until then the entries stay reported as corruptions.
        result.add(snapshotCounts, allocationInfo: false)
        if let failure { return (result, failure) }
        if !fix.isEmpty && result.checkErrors == 0 && result.corruptions == 0 {
            do {
                try markCleanAndConsistent(file: file)
            } catch {
                return (result, CheckFailure(error))
            }
        }
        return (result, nil)
    }

    /// QEMU's `qcow2_mark_clean` + `qcow2_mark_consistent`: once everything is on disk, clear the
    /// dirty and corrupt bits with one 8-byte write of `incompatible_features`.
    mutating func markCleanAndConsistent(file: any BlockDevice) throws {
        let bits: IncompatibleFeatures = [.dirty, .corrupt]
        guard header.version >= 3, !header.incompatibleFeatures.isDisjoint(with: bits) else { return }
        try file.flush()
        var features = header.incompatibleFeatures
        features.subtract(bits)
        try file.write(bigEndianBytes(features.rawValue), at: UInt64(QCow2Header.FieldOffset.incompatibleFeatures))
        try file.flush()
        header.incompatibleFeatures = features
        markedCorrupt = false
    }
}

/// Big-endian bytes of a 64-bit value.
func bigEndianBytes(_ value: UInt64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }
}
