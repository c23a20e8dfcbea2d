import BlockIO
import QCow2Format

/// Comparison with the on-disk refcounts, COPIED flags, and their repair (QEMU 7.2
/// `compare_refcounts`, `check_oflag_copied`, `fix_l2_entry_by_zero`). Every write here either lowers
/// a refcount of an unreferenced cluster, raises one, or rewrites a flag, so a crash in between
/// leaves at most leaks.
extension QCow2State {
    /// The on-disk refcount of `cluster`, or nil (with QEMU's messages and a check error) when its
    /// refcount block offset is unaligned or unreadable. Blocks past EOF read as zeros, as in QEMU.
    mutating func checkOnDiskRefcount(_ run: inout CheckRun, cluster: Int, file: any BlockDevice) -> UInt64? {
        let (tableIndex, blockIndex) = geometry.refcountLocation(clusterIndex: UInt64(cluster))
        let blockOffset = refcountBlockOffset(tableIndex: tableIndex)
        guard blockOffset != 0 else { return 0 }
        guard geometry.isClusterAligned(blockOffset) else {
            if !run.signalledCorruption {
                run.signalledCorruption = true
                let reason = "Refblock offset 0x\(hex(blockOffset)) unaligned (reftable index: 0x\(hex(tableIndex)))"
                run.log(
                    run.fix.isEmpty
                        ? "qcow2: Image is corrupt: \(reason); further non-fatal corruption events will be suppressed"
                        : "qcow2: Marking image as corrupt: \(reason); further corruption events will be suppressed")
            }
            run.log("Can't get refcount for cluster \(cluster): Input/output error")
            run.res.checkErrors += 1
            return nil
        }
        if let last = run.lastRefcountBlock, last.offset == blockOffset {
            return RefcountBlockCodec.get(last.block, index: blockIndex, order: geometry.refcountOrder)
        }
        do {
            let block = try checkRefcountBlock(at: blockOffset, file: file)
            run.lastRefcountBlock = (blockOffset, block)
            return RefcountBlockCodec.get(block, index: blockIndex, order: geometry.refcountOrder)
        } catch {
            run.log("Can't get refcount for cluster \(cluster): \(CheckFailure(error).reason)")
            run.res.checkErrors += 1
            return nil
        }
    }

    /// A refcount block through the cache; unlike `refcountBlock(at:file:)` it accepts blocks past
    /// EOF (zeros), which the check must see as QEMU does.
    mutating func checkRefcountBlock(at offset: UInt64, file: any BlockDevice) throws -> [UInt8] {
        if let block = refcountCache.get(offset) { return block }
        let block = try file.read(count: geometry.clusterSize, at: offset)
        refcountCache.put(offset, block, dirty: false)
        return block
    }

    /// Writes one refcount entry in place: read-modify-write of the bytes holding it (one sector at
    /// most), cache updated. A cluster whose refcount drops to 0 leaves the table caches and is
    /// discarded, as QEMU's `update_refcount` with `QCOW2_DISCARD_ALWAYS` does.
    mutating func checkSetRefcount(cluster: Int, to value: UInt64, file: any BlockDevice) throws {
        let (tableIndex, blockIndex) = geometry.refcountLocation(clusterIndex: UInt64(cluster))
        let blockOffset = refcountBlockOffset(tableIndex: tableIndex)
        guard blockOffset != 0, geometry.isClusterAligned(blockOffset) else { throw CheckFailure.io }
        var block = try checkRefcountBlock(at: blockOffset, file: file)
        let order = geometry.refcountOrder
        RefcountBlockCodec.set(&block, index: blockIndex, order: order, value: value)
        let range: Range<Int> =
            order < 3
            ? (blockIndex >> (3 - order))..<((blockIndex >> (3 - order)) + 1)
            : (blockIndex << (order - 3))..<((blockIndex + 1) << (order - 3))
        try file.write(Array(block[range]), at: blockOffset + UInt64(range.lowerBound))
        refcountCache.put(blockOffset, block, dirty: false)
        let cs = UInt64(geometry.clusterSize)
        let host = UInt64(cluster) << UInt64(geometry.clusterBits)
        fileLength = max(fileLength, blockOffset + cs)
        if value == 0 {
            refcountCache.remove(host)
            l2Cache.remove(host)
            if host < fileLength { try? file.discard(offset: host, count: min(cs, fileLength - host)) }
            freeClusterHint = min(freeClusterHint, UInt64(cluster))
        }
    }

    /// QEMU's `compare_refcounts`: every cluster of the table against its on-disk refcount.
    /// - Returns: the highest cluster index with a non-zero on-disk or expected refcount.
    mutating func compareRefcounts(_ run: inout CheckRun, fix: QCow2RepairMode, file: any BlockDevice) throws -> UInt64
    {
        var highest: UInt64 = 0
        var wrote = false
        var poll = CancellationPoll()
        for i in 0..<run.imrt.count {
            do {
                try poll.check()
            } catch {
                // Each fix is a whole refcount: the ones made so far are kept, durably.
                if wrote { try file.flush() }
                throw error
            }
            guard let onDisk = checkOnDiskRefcount(&run, cluster: i, file: file) else { continue }
            let expected = run.imrt[i]
            if onDisk > 0 || expected > 0 { highest = UInt64(i) }
            guard onDisk != expected else { continue }
            var fixing = false
            var isLeakFix = false
            if onDisk == 0 {
                run.rebuild = true
            } else if onDisk > expected && fix.contains(.leaks) {
                fixing = true
                isLeakFix = true
            } else if onDisk < expected && fix.contains(.errors) {
                fixing = true
            }
            let verb = fixing ? "Repairing" : (onDisk < expected ? "ERROR" : "Leaked")
            run.log("\(verb) cluster \(i) refcount=\(onDisk) reference=\(expected)")
            if fixing {
                do {
                    run.lastRefcountBlock = nil
                    try checkSetRefcount(cluster: i, to: expected, file: file)
                    wrote = true
                    if isLeakFix { run.res.leaksFixed += 1 } else { run.res.corruptionsFixed += 1 }
                    continue
                } catch {
                    // Counted below as still present, as QEMU does when update_refcount fails.
                }
            }
            if onDisk < expected { run.res.corruptions += 1 } else { run.res.leaks += 1 }
        }
        // Refcount fixes are durable before any COPIED flag is changed to match them.
        if wrote { try file.flush() }
        return highest
    }

    /// QEMU's `check_oflag_copied` over the active tree: COPIED must be set exactly when the
    /// refcount is 1. With `-r leaks` flags are fixed only if nothing else is left.
    mutating func checkCopiedFlags(_ run: inout CheckRun, file: any BlockDevice) throws {
        let repair =
            run.fix.contains(.errors)
            || (run.fix.contains(.leaks) && run.res.checkErrors == 0 && run.res.corruptions == 0 && run.res.leaks == 0)
        let verb = repair ? "Repairing" : "ERROR"
        let g = geometry
        let dataFile = header.hasExternalDataFile
        var wrote = false
        // Refcount lookups only (QEMU's check_oflag_copied logs nothing for them); this phase
        // writes L1 and L2 entries, never refcounts, so its block memo stays valid throughout.
        var scratch = CheckRun(fix: [], geometry: g)
        for i in 0..<l1.count {
            let l1Entry = l1[i]
            let l2Offset = l1Entry & L1Entry.offsetMask
            guard l2Offset != 0 else { continue }
            do {
                try Cancellation.check()
            } catch {
                if wrote { try file.flush() }
                throw error
            }
            scratch.messages.removeAll(keepingCapacity: true)
            if let refcount = checkOnDiskRefcount(
                &scratch, cluster: Int(l2Offset >> UInt64(g.clusterBits)), file: file),
                (refcount == 1) != (l1Entry & L1Entry.copiedFlag != 0)
            {
                run.res.corruptions += 1
                run.log("\(verb) OFLAG_COPIED L2 cluster: l1_index=\(i) l1_entry=\(hex(l1Entry)) refcount=\(refcount)")
                if repair {
                    let fixed = refcount == 1 ? l1Entry | L1Entry.copiedFlag : l1Entry & ~L1Entry.copiedFlag
                    do {
                        try file.write(bigEndianBytes(fixed), at: header.l1TableOffset + UInt64(i) * 8)
                        try file.flush()
                    } catch {
                        run.res.checkErrors += 1
                        throw CheckFailure(error)
                    }
                    l1[i] = fixed
                    run.res.corruptions -= 1
                    run.res.corruptionsFixed += 1
                }
            }
            var table: [UInt64]
            do {
                table = try checkReadL2(at: l2Offset, file: file)
            } catch {
                run.log("ERROR: Could not read L2 table: \(CheckFailure(error).reason)")
                run.res.checkErrors += 1
                throw CheckFailure(error)
            }
            var dirty = 0
            for j in 0..<g.l2Entries {
                let e = entry(table, j)
                let type = e.clusterType(extendedL2: g.extendedL2, externalDataFile: dataFile)
                guard type == .normal || type == .zeroAllocated else { continue }
                let refcount: UInt64
                if dataFile {
                    refcount = 1
                } else if let r = checkOnDiskRefcount(
                    &scratch, cluster: Int(e.hostOffset >> UInt64(g.clusterBits)), file: file)
                {
                    refcount = r
                } else {
                    continue
                }
                guard (refcount == 1) != e.isCopied else { continue }
                run.res.corruptions += 1
                run.log("\(verb) OFLAG_COPIED data cluster: l2_entry=\(hex(e.raw)) refcount=\(refcount)")
                if repair {
                    let word = g.extendedL2 ? j * 2 : j
                    table[word] = refcount == 1 ? e.raw | L2Entry.copiedFlag : e.raw & ~L2Entry.copiedFlag
                    dirty += 1
                }
            }
            if dirty > 0 {
                do {
                    try file.writeTable(table, at: l2Offset)
                } catch {
                    run.log("ERROR: Could not write L2 table: \(CheckFailure(error).reason)")
                    run.res.checkErrors += 1
                    throw CheckFailure(error)
                }
                if l2Cache.peek(l2Offset) != nil { l2Cache.put(l2Offset, table, dirty: false) }
                wrote = true
                run.res.corruptions -= dirty
                run.res.corruptionsFixed += dirty
            }
        }
        if wrote { try file.flush() }
    }

    /// QEMU's `fix_l2_entry_by_zero`: a misaligned preallocated zero cluster becomes a plain zero
    /// cluster (extended L2: all allocated subclusters become zero), written synchronously.
    /// - Returns: true when fixed (the caller then skips counting the cluster).
    mutating func fixL2EntryByZero(
        _ run: inout CheckRun, l2Offset: UInt64, table: inout [UInt64], index: Int, file: any BlockDevice
    ) throws -> Bool {
        let g = geometry
        let entryWords: [UInt64]
        if g.extendedL2 {
            var bitmap = table[index * 2 + 1]
            bitmap |= bitmap << 32
            bitmap &= L2Entry.allZeroBitmap
            table[index * 2] = 0
            table[index * 2 + 1] = bitmap
            entryWords = [0, bitmap]
        } else {
            table[index] = L2Entry.zeroFlag
            entryWords = [L2Entry.zeroFlag]
        }
        do {
            try file.writeTable(entryWords, at: l2Offset + UInt64(index * g.l2EntrySize))
            try file.flush()
        } catch {
            run.log("ERROR: Failed to overwrite L2 table entry: \(CheckFailure(error).reason)")
            run.res.checkErrors += 1
            return false
        }
        if l2Cache.peek(l2Offset) != nil { l2Cache.put(l2Offset, table, dirty: false) }
        run.res.corruptions -= 1
        run.res.corruptionsFixed += 1
        return true
    }
}
