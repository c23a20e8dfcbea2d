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
            info.snapshots = image.snapshots.map(snapshotInfo)
            info.formatSpecific = specific(header, ext)
        }
        if chain, let backing = disk.backingDisk {
            info.backingImage = try describe(backing, chain: true)
        }
        return info
    }

    /// One snapshot as `info`/`snapshot -l` list it.
    public static func snapshotInfo(_ s: SnapshotEntry) -> SnapshotInfo {
        SnapshotInfo(
            id: s.id, name: s.name, vmStateSize: Int64(truncatingIfNeeded: s.vmStateSize),
            dateSec: Int64(s.dateSeconds), dateNsec: Int64(s.dateNanoseconds), vmClockNsec: s.vmClockNanoseconds,
            icount: s.icount.map { Int64(truncatingIfNeeded: $0) })
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
