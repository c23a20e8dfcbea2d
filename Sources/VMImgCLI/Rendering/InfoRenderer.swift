import ImageKit

/// Renders `info` like qemu-img 7.2 (`bdrv_image_info_dump` for text, the QAPI JSON otherwise).
public enum InfoRenderer {
    /// Human text for one image: `image:`, `file format:`, sizes, backing lines, the snapshot
    /// table and the "Format specific information:" block, each line ending in a newline.
    /// - Throws: only if encoding the format-specific block fails.
    public static func human(_ info: ImageInfo) throws -> String {
        let diskSize = info.actualSize.map { HumanFormat.size($0) } ?? "unavailable"
        var out = """
            image: \(info.filename)
            file format: \(info.format)
            virtual size: \(HumanFormat.size(info.virtualSize)) (\(info.virtualSize) bytes)
            disk size: \(diskSize)

            """
        if info.encrypted == true { out += "encrypted: yes\n" }
        if let clusterSize = info.clusterSize { out += "cluster_size: \(clusterSize)\n" }
        if info.dirtyFlag == true { out += "cleanly shut down: no\n" }
        if let backing = info.backingFilename {
            out += "backing file: \(backing)"
            if let full = info.fullBackingFilename {
                if full != backing { out += " (actual path: \(full))" }
            } else {
                out += " (cannot determine actual path)"
            }
            out += "\n"
            if let format = info.backingFilenameFormat { out += "backing file format: \(format)\n" }
        }
        if !info.snapshots.isEmpty {
            out += SnapshotTableRenderer.table(info.snapshots)
        }
        if let specific = info.formatSpecific {
            out += "Format specific information:\n"
            out += HumanFormat.dump(try QObjectEncoder().encode(specific), indentation: 1)
        }
        return out
    }

    /// Human text for a chain: each image's block, separated by a blank line.
    /// - Throws: see ``human(_:)``.
    public static func human(chain: [ImageInfo]) throws -> String {
        try chain.map(human).joined(separator: "\n")
    }

    /// JSON for one image (an object), with a trailing newline.
    /// - Throws: encoding errors.
    public static func json(_ info: ImageInfo) throws -> String {
        try JSONWriter.pretty(info) + "\n"
    }

    /// JSON for `--backing-chain` (an array of objects), with a trailing newline.
    /// - Throws: encoding errors.
    public static func json(chain: [ImageInfo]) throws -> String {
        try JSONWriter.pretty(chain) + "\n"
    }
}
