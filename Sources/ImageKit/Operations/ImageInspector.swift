import BlockIO
import QCow2
import QCow2Format

/// Builds what `info` reports from an open image (qemu-img's `bdrv_query_image_info`).
public enum ImageInspector {
    /// Describes `path`; with `backingChain`, every backing image too (opened, so a missing
    /// backing file is an error then, as in qemu-img).
    public static func info(path: String, options: OpenOptions, backingChain: Bool) throws -> ImageInfo {
        var opts = options
        opts.openBacking = backingChain
        opts.inspectOnly = true
        let disk = try ImageOpener.open(path, options: opts)
        return try describe(disk, chain: backingChain)
    }

    /// Describes an open disk (and its backing disks when `chain`).
    public static func describe(_ disk: any VirtualDisk, chain: Bool) throws -> ImageInfo {
        var info = ImageInfo(filename: disk.filename, format: disk.formatName, virtualSize: Int64(disk.virtualSize))
        if let raw = disk as? RawImage {
            info.actualSize = (raw.device as? BlockFile).flatMap { try? Int64($0.allocatedBytes()) }
            // qemu-img prints `"dirty-flag": false` for raw images too.
            info.dirtyFlag = false
        }
        if let image = disk as? QCow2Image {
            let header = image.header
            let ext = image.extensions
            info.clusterSize = Int64(header.clusterSize)
            info.dirtyFlag = header.incompatibleFeatures.contains(.dirty)
            info.actualSize = (image.file as? BlockFile).flatMap { try? Int64($0.allocatedBytes()) }
            if let backing = ext.backingFile {
                info.backingFilename = backing
                info.fullBackingFilename = (try? ImageOpener.resolveBacking(backing, overlay: disk.filename)) ?? backing
                info.backingFilenameFormat = ext.backingFormat
            }
            info.snapshots = snapshotInfos(image)
            info.formatSpecific = specific(header, ext)
            if header.version >= 3, let bitmaps = try? image.persistentBitmaps(), !bitmaps.isEmpty {
                info.formatSpecific?.bitmaps = bitmaps.map(bitmapInfo)
            }
        }
        if chain, let backing = disk.backingDisk {
            info.backingImage = try describe(backing, chain: true)
        }
        return info
    }

    /// The snapshots with vmimg's space figures beside qemu-img's fields (`vmimg-unique-bytes`:
    /// freed if only this snapshot is deleted; `vmimg-shared-bytes`: shared with the active layer;
    /// `vmimg-written-bytes`: not in the previous snapshot).
    public static func snapshotInfos(_ image: QCow2Image) -> [SnapshotInfo] {
        let space = image.snapshots.isEmpty ? nil : try? image.snapshotSpace()
        return image.snapshots.enumerated().map { i, entry in
            var info = snapshotInfo(entry)
            if let space, i < space.snapshots.count {
                let figures = space.snapshots[i]
                info.uniqueBytes = Int64(figures.uniqueBytes)
                info.sharedBytes = Int64(figures.sharedWithActiveBytes)
                info.writtenBytes = Int64(figures.writtenBytes)
            }
            return info
        }
    }

    /// One snapshot as `info`/`snapshot -l` list it.
    public static func snapshotInfo(_ s: SnapshotEntry) -> SnapshotInfo {
        SnapshotInfo(
            id: s.id, name: s.name, vmStateSize: Int64(truncatingIfNeeded: s.vmStateSize),
            dateSec: Int64(s.dateSeconds), dateNsec: Int64(s.dateNanoseconds), vmClockNsec: s.vmClockNanoseconds,
            icount: s.icount.map { Int64(truncatingIfNeeded: $0) })
    }

    /// One bitmap as qemu-img lists it (flags in QEMU's order: `in-use`, then `auto`).
    static func bitmapInfo(_ e: BitmapDirectoryEntry) -> BitmapInfo {
        BitmapInfo(
            name: e.name, granularity: Int64(e.granularity),
            flags: (e.inUse ? ["in-use"] : []) + (e.isAuto ? ["auto"] : []))
    }

    static func specific(_ h: QCow2Header, _ ext: HeaderExtensions) -> QCow2SpecificInfo {
        guard h.version >= 3 else { return .version2(refcountBits: Int64(h.refcountBits)) }
        var info = QCow2SpecificInfo.version2(refcountBits: Int64(h.refcountBits))
        info.compat = "1.1"
        info.compressionType = h.compressionType.name
        info.lazyRefcounts = h.compatibleFeatures.contains(.lazyRefcounts)
        info.corrupt = h.incompatibleFeatures.contains(.corrupt)
        info.extendedL2 = h.hasExtendedL2
        if h.hasExternalDataFile {
            info.dataFile = ext.externalDataFile
            info.dataFileRaw = h.autoclearFeatures.contains(.dataFileRaw)
        }
        return info
    }
}
