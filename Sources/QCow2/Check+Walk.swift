import BlockIO
import QCow2Format

/// The reference walk of `qemu-img check` (QEMU 7.2 `calculate_refcounts` and helpers): every
/// structure that references host clusters adds one to its clusters in the in-memory table.
extension QCow2State {
    /// QEMU's `qcow2_check_refcounts`: expected refcounts, comparison (and repair or rebuild), COPIED
    /// flags, allocation figures, image end offset.
    mutating func checkRefcounts(_ run: inout CheckRun, file: any BlockDevice) throws {
        let length = try file.length()
        let cs = UInt64(geometry.clusterSize)
        let clusters = geometry.clustersFor(bytes: length)
        guard clusters <= UInt64(Int32.max) else {
            run.res.checkErrors += 1
            throw CheckFailure.tooLarge
        }
        // bs->total_sectors is size / 512 rounded down.
        run.res.totalClusters = geometry.clustersFor(bytes: header.size / 512 * 512)
        do {
            try run.imrt.grow(to: Int(clusters))
        } catch {
            run.res.checkErrors += 1
            throw error
        }
        try calculateRefcounts(&run, fix: run.fix, file: file)

        let preCompare = run.res
        var highest = try compareRefcounts(&run, fix: [], file: file)
        if run.rebuild && run.fix.contains(.errors) {
            // The last point to stop: the rebuild itself runs to the header switch.
            try Cancellation.check()
            let old = run.res
            var freshLeaks = 0
            run.log("Rebuilding refcount structure")
            try rebuildRefcountStructure(&run, file: file)
            run.res.corruptions = 0
            run.res.leaks = 0
            run.rebuild = false
            run.imrt.zeroAll()
            try calculateRefcounts(&run, fix: [], file: file)
            if run.fix.contains(.leaks) {
                // The old structure is now leaked; leaks left here came from the rebuild itself.
                let saved = run.res
                run.res = CheckCounts()
                highest = try compareRefcounts(&run, fix: .leaks, file: file)
                if run.rebuild { run.log("ERROR rebuilt refcount structure is still broken") }
                freshLeaks = run.res.leaks
                run.res = saved
            }
            if run.res.corruptions < old.corruptions {
                run.res.corruptionsFixed += old.corruptions - run.res.corruptions
            }
            if run.res.leaks < old.leaks { run.res.leaksFixed += old.leaks - run.res.leaks }
            run.res.leaks += freshLeaks
        } else if !run.fix.isEmpty {
            if run.rebuild {
                run.log("ERROR need to rebuild refcount structures")
                run.res.checkErrors += 1
                throw CheckFailure.io
            }
            if run.res.leaks > 0 || run.res.corruptions > 0 {
                run.res = preCompare
                highest = try compareRefcounts(&run, fix: run.fix, file: file)
            }
        }
        try checkCopiedFlags(&run, file: file)
        run.res.imageEndOffset = (highest + 1) * cs
    }

    /// QEMU's `calculate_refcounts`.
    mutating func calculateRefcounts(_ run: inout CheckRun, fix: QCow2RepairMode, file: any BlockDevice) throws {
        run.fileLength = try file.length()
        let cs = UInt64(geometry.clusterSize)
        try incRefcounts(&run, offset: 0, size: cs)
        try checkL1(&run, offset: header.l1TableOffset, size: Int(header.l1Size), active: true, fix: fix, file: file)
        if header.hasExternalDataFile && !snapshots.isEmpty {
            run.log("ERROR \(snapshots.count) snapshots in image with data file")
            run.res.corruptions += 1
        }
        for sn in snapshots {
            if !geometry.isClusterAligned(sn.l1TableOffset) {
                run.log(
                    "ERROR snapshot \(sn.id) (\(sn.name)) l1_offset=\(alternateHex(sn.l1TableOffset)): L1 table is not "
                        + "cluster aligned; snapshot table entry corrupted")
                run.res.corruptions += 1
                continue
            }
            if sn.l1Size > UInt32(QCow2Geometry.maxL1Entries) {
                run.log(
                    "ERROR snapshot \(sn.id) (\(sn.name)) l1_size=\(alternateHex(UInt64(sn.l1Size))): L1 table is too "
                        + "large; snapshot table entry corrupted")
                run.res.corruptions += 1
                continue
            }
            try checkL1(&run, offset: sn.l1TableOffset, size: Int(sn.l1Size), active: false, fix: fix, file: file)
        }
        if !snapshots.isEmpty {
            try incRefcounts(&run, offset: header.snapshotsOffset, size: UInt64(snapshotTableLength))
        }
        try incRefcounts(&run, offset: header.refcountTableOffset, size: UInt64(refcountTable.count) * 8)
        if let crypto = extensions.encryptionHeader, crypto.length > 0 {
            try incRefcounts(&run, offset: crypto.offset, size: crypto.length)
        }
        try checkBitmaps(&run, file: file)
        try checkRefcountBlocks(&run, fix: fix, file: file)
    }

    /// QEMU's `qcow2_inc_refcounts_imrt`: +1 for every cluster overlapping [offset, offset+size).
    /// A region reaching a cluster or more past the end of the file is reported, not counted, so the
    /// table never grows past the file length + 1 cluster.
    mutating func incRefcounts(_ run: inout CheckRun, offset: UInt64, size: UInt64) throws {
        guard size > 0 else { return }
        let cs = UInt64(geometry.clusterSize)
        let (end, overflow) = offset.addingReportingOverflow(size)
        if overflow || (end > run.fileLength && end - run.fileLength >= cs) {
            run.log(
                "ERROR: counting reference for region exceeding the end of the file by one cluster or more: "
                    + "offset 0x\(hex(offset)) size 0x\(hex(size))")
            run.res.corruptions += 1
            return
        }
        var cluster = offset & ~(cs - 1)
        let last = (end - 1) & ~(cs - 1)
        while cluster <= last {
            let k = Int(cluster >> UInt64(geometry.clusterBits))
            if k >= run.imrt.count {
                do {
                    try run.imrt.grow(to: k + 1)
                } catch {
                    run.res.checkErrors += 1
                    throw error
                }
            }
            let refcount = run.imrt[k]
            if refcount == run.imrt.maxValue {
                run.log("ERROR: overflow cluster offset=0x\(hex(cluster))")
                run.log(
                    "Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean "
                        + "copy if the image cannot be opened for writing")
                run.res.corruptions += 1
            } else {
                run.imrt[k] = refcount + 1
            }
            cluster += cs
        }
    }

    /// QEMU's `check_refcounts_l1`: the L1 table, each L2 table, and what the L2 tables reference.
    mutating func checkL1(
        _ run: inout CheckRun, offset: UInt64, size: Int, active: Bool, fix: QCow2RepairMode, file: any BlockDevice
    ) throws {
        guard size > 0 else { return }
        try incRefcounts(&run, offset: offset, size: UInt64(size) * 8)
        let table: [UInt64]
        if active {
            table = l1
        } else {
            do {
                table = try file.readTable(at: offset, count: size)
            } catch {
                run.log("ERROR: I/O error in check_refcounts_l1")
                run.res.checkErrors += 1
                throw CheckFailure(error)
            }
        }
        for entry in table where entry != 0 {
            // Between L2 tables: the walk only reads (a fix inside checkL2 is one complete entry).
            try Cancellation.check()
            if entry & L1Entry.reservedMask != 0 {
                run.log("ERROR found L1 entry with reserved bits set: \(hex(entry))")
                run.res.corruptions += 1
            }
            let l2Offset = entry & L1Entry.offsetMask
            try incRefcounts(&run, offset: l2Offset, size: UInt64(geometry.clusterSize))
            if !geometry.isClusterAligned(l2Offset) {
                run.log("ERROR l2_offset=\(hex(l2Offset)): Table is not cluster aligned; L1 entry corrupted")
                run.res.corruptions += 1
            }
            try checkL2(&run, l2Offset: l2Offset, fragmentInfo: active, fix: fix, active: active, file: file)
        }
    }

    /// An L2 table as the check sees it: the cached copy when there is one (it is what the engine
    /// will write), else the bytes on disk (zeros past EOF).
    mutating func checkReadL2(at offset: UInt64, file: any BlockDevice) throws -> [UInt64] {
        if let table = l2Cache.peek(offset) { return table }
        return try file.readTable(at: offset, count: geometry.clusterSize / 8)
    }

    /// QEMU's `check_refcounts_l2`: per-entry checks, data and compressed clusters counted, and the
    /// allocation figures for the active tree.
    mutating func checkL2(
        _ run: inout CheckRun, l2Offset: UInt64, fragmentInfo: Bool, fix: QCow2RepairMode, active: Bool,
        file: any BlockDevice
    ) throws {
        var table: [UInt64]
        do {
            table = try checkReadL2(at: l2Offset, file: file)
        } catch {
            run.log("ERROR: I/O error in check_refcounts_l2")
            run.res.checkErrors += 1
            throw CheckFailure(error)
        }
        let g = geometry
        let cs = UInt64(g.clusterSize)
        let dataFile = header.hasExternalDataFile
        var nextContiguous: UInt64 = 0
        for i in 0..<g.l2Entries {
            var e = entry(table, i)
            let type = e.clusterType(extendedL2: g.extendedL2, externalDataFile: dataFile)
            if type != .compressed && e.raw & L2Entry.reservedMask != 0 {
                run.log("ERROR found l2 entry with reserved bits set: \(hex(e.raw))")
                run.res.corruptions += 1
            }
            switch type {
            case .compressed:
                let shift = UInt64(62 - (g.clusterBits - 8))
                let offsetMask = (UInt64(1) << shift) - 1
                if e.isCopied {
                    run.log(
                        "ERROR: coffset=0x\(hex(e.raw & offsetMask)): copied flag must never be set for compressed "
                            + "clusters")
                    e.raw &= ~L2Entry.copiedFlag
                    run.res.corruptions += 1
                }
                if dataFile {
                    run.log("ERROR compressed cluster \(i) with data file, entry=0x\(hex(e.raw))")
                    run.res.corruptions += 1
                    break
                }
                if e.bitmap != 0 {
                    run.log(
                        "ERROR compressed cluster \(i) with non-zero subcluster allocation bitmap, entry=0x\(hex(e.raw))"
                    )
                    run.res.corruptions += 1
                    break
                }
                // qcow2_parse_compressed_l2_entry, without masking the offset to 56 bits.
                let coffset = e.raw & offsetMask
                let sectors = ((e.raw >> shift) & ((UInt64(1) << UInt64(g.clusterBits - 8)) - 1)) + 1
                try incRefcounts(&run, offset: coffset, size: sectors * 512 - (coffset & 511))
                if fragmentInfo {
                    run.res.allocated += 1
                    run.res.compressed += 1
                    // Compressed clusters are fragmented by nature (sector-granular re-reads).
                    run.res.fragmented += 1
                }
            case .zeroAllocated, .normal:
                let offset = e.hostOffset
                if (e.bitmap >> 32) & e.bitmap != 0 {
                    run.res.corruptions += 1
                    run.log("ERROR offset=\(hex(offset)): Allocated cluster has corrupted subcluster allocation bitmap")
                }
                if !g.isClusterAligned(offset) {
                    run.res.corruptions += 1
                    let containsData =
                        g.extendedL2 ? e.bitmap & 0xffff_ffff != 0 : e.raw & L2Entry.zeroFlag == 0
                    if containsData {
                        run.log(
                            "ERROR offset=\(hex(offset)): Data cluster is not properly aligned; L2 entry corrupted.")
                    } else {
                        run.log(
                            "\(fix.contains(.errors) ? "Repairing" : "ERROR") offset=\(hex(offset)): Preallocated "
                                + "cluster is not properly aligned; L2 entry corrupted.")
                        if fix.contains(.errors),
                            try fixL2EntryByZero(&run, l2Offset: l2Offset, table: &table, index: i, file: file)
                        {
                            continue
                        }
                    }
                }
                if fragmentInfo {
                    run.res.allocated += 1
                    if nextContiguous != 0 && offset != nextContiguous { run.res.fragmented += 1 }
                    nextContiguous = offset &+ cs  // offset < 2^56: cannot wrap
                }
                if !dataFile { try incRefcounts(&run, offset: offset, size: cs) }
            case .zeroPlain:
                break
            case .unallocated:
                if e.bitmap & 0xffff_ffff != 0 {
                    run.res.corruptions += 1
                    run.log("ERROR: Unallocated cluster has non-zero subcluster allocation map")
                }
            }
        }
    }

    /// QEMU's `check_refblocks`: each refcount block must be aligned, inside the image, and
    /// referenced exactly once; `-r all` extends the file for a block past its end.
    mutating func checkRefcountBlocks(_ run: inout CheckRun, fix: QCow2RepairMode, file: any BlockDevice) throws {
        let cs = UInt64(geometry.clusterSize)
        var poll = CancellationPoll()
        for (i, raw) in refcountTable.enumerated() {
            try poll.check()
            let offset = raw & 0xffff_ffff_ffff_fe00
            let cluster = offset >> UInt64(geometry.clusterBits)
            if raw & 0x1ff != 0 {
                run.log("ERROR refcount table entry \(i) has reserved bits set")
                run.res.corruptions += 1
                run.rebuild = true
                continue
            }
            if !geometry.isClusterAligned(offset) {
                run.log("ERROR refcount block \(i) is not cluster aligned; refcount table entry corrupted")
                run.res.corruptions += 1
                run.rebuild = true
                continue
            }
            if cluster >= UInt64(run.imrt.count) {
                run.res.corruptions += 1
                run.log("\(fix.contains(.errors) ? "Repairing" : "ERROR") refcount block \(i) is outside image")
                guard fix.contains(.errors) else { continue }
                // Stricter than QEMU: never extend the file past what the in-memory table may describe,
                // nor by more than `maxRepairGrowth` (QEMU grows a 24 KiB image to 1 TiB for one poked
                // reftable entry, then walks every cluster of it). A refcount block a crash left
                // unwritten lies a few clusters past the end; one further out is garbage, and the
                // rebuild drops it.
                let newClusters = cluster + 1
                guard offset <= UInt64(Int64.max) - cs, newClusters <= UInt64(run.imrt.maxEntries) else {
                    run.rebuild = true
                    run.log("ERROR could not resize image: File too large")
                    continue
                }
                guard offset + cs <= max(run.fileLength, fileLength) + CheckRun.maxRepairGrowth else {
                    run.rebuild = true
                    run.log("ERROR could not resize image: refcount block \(i) lies more than 1 GiB past the end")
                    continue
                }
                do {
                    try file.setLength(offset + cs)
                    fileLength = max(fileLength, offset + cs)
                    run.fileLength = try file.length()
                } catch {
                    run.rebuild = true
                    run.log("ERROR could not resize image: \(CheckFailure(error).reason)")
                    continue
                }
                do {
                    try run.imrt.grow(to: Int(geometry.clustersFor(bytes: run.fileLength)))
                } catch {
                    run.res.checkErrors += 1
                    throw error
                }
                run.res.corruptions -= 1
                run.res.corruptionsFixed += 1
                try incRefcounts(&run, offset: offset, size: cs)
                continue
            }
            if offset != 0 {
                try incRefcounts(&run, offset: offset, size: cs)
                let count = run.imrt[Int(cluster)]
                if count != 1 {
                    run.log("ERROR refcount block \(i) refcount=\(count)")
                    run.res.corruptions += 1
                    run.rebuild = true
                }
            }
        }
    }
}
