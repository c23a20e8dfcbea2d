import BlockIO
import Foundation
import QCow2
import QCow2Format

/// How to open an image: the options every command shares (`-f`, `-U`, `--allow-data-file`).
public struct OpenOptions: Sendable {
    /// `-f`: the declared format; nil probes (qcow2 magic, else raw).
    public var format: String?
    public var writable: Bool
    /// `-U`/`--force-share`: take no lock that would stop a writer.
    public var forceShare: Bool
    /// Consent to open an external data file named inside the image.
    public var allowDataFile: Bool
    /// `-o data-file=PATH`: an explicit data file (implies consent).
    public var dataFilePath: String?
    /// Follow backing files (false for `info` without `--backing-chain`, as qemu-img).
    public var openBacking: Bool
    /// Longest backing chain followed; deeper is an error (a loop would otherwise never end).
    public var maxChainDepth: Int
    /// Metadata only (`info`): no data file is opened, as qemu-img info since CVE-2024-4467.
    public var inspectOnly = false
    /// `check -r` repairs a dirty image itself, so the open must not.
    public var skipDirtyRepair = false
    /// qcow2 metadata cache options for the top image (`--image-opts`); backing images get
    /// QEMU's defaults, as options name only the node they are given to.
    public var cache = QCow2CacheOptions()
    /// How errors name the top image: the whole option string for `--image-opts`, as qemu-img.
    public var displayName: String?

    public init(
        format: String? = nil, writable: Bool = false, forceShare: Bool = false, allowDataFile: Bool = false,
        dataFilePath: String? = nil, openBacking: Bool = true, maxChainDepth: Int = 64
    ) {
        self.format = format
        self.writable = writable
        self.forceShare = forceShare
        self.allowDataFile = allowDataFile
        self.dataFilePath = dataFilePath
        self.openBacking = openBacking
        self.maxChainDepth = maxChainDepth
    }
}

/// Opens raw and qcow2 images and their backing chains under the host-file policy
/// (Formats/qcow2.md): plain paths only, declared or qcow2-probed backing formats, data files by consent.
public enum ImageOpener {
    public static let formats = ["qcow2", "raw"]

    /// Opens `path` and, unless told not to, its whole backing chain.
    public static func open(_ path: String, options: OpenOptions = OpenOptions()) throws -> any VirtualDisk {
        var seen: [String] = []
        return try open(path, format: options.format, options: options, depth: 0, seen: &seen)
    }

    /// Whether the first bytes of `device` are a qcow2 header.
    public static func probe(_ device: any BlockDevice) throws -> String {
        guard try device.length() >= 4 else { return "raw" }
        let magic = try device.read(count: 4, at: 0)
        return magic == [0x51, 0x46, 0x49, 0xFB] ? "qcow2" : "raw"
    }

    static func open(
        _ path: String, format: String?, options: OpenOptions, depth: Int, seen: inout [String]
    ) throws -> any VirtualDisk {
        if let format, !formats.contains(format) {
            throw ImageError(.unsupported, "Unknown file format '\(format)'")
        }
        let device: BlockFile
        do {
            device = try BlockFile(path: path, writable: options.writable && depth == 0)
        } catch {
            if depth == 0, let shown = options.displayName {
                throw ImageError(.open, "Could not open '\(shown)': \(ImageError.open(path, error).message)")
            }
            throw ImageError.open(path, error)
        }
        // The file itself (device and inode), so every path to it (symlinks, `..`, hard links)
        // matches; cheaper at start-up than resolving the path through Foundation's URL.
        let identity = (try? FileStamp(path: path)).map { "\($0.device):\($0.inode)" } ?? path
        if seen.contains(identity) {
            throw ImageError(.open, "Could not open '\(path)': backing chain loops back to '\(path)'")
        }
        seen.append(identity)
        let detected = try format ?? probe(device)
        let mode: LockMode = options.forceShare ? .shareAll : (options.writable && depth == 0 ? .readWrite : .readOnly)
        do {
            try device.lock(mode, format: detected == "qcow2" ? .qcow2 : .raw)
        } catch {
            let hint = error.lockHint.map { "; " + $0 } ?? ""
            throw ImageError(
                .open, "Could not open '\(path)': \(error.detail.isEmpty ? error.errnoText : error.detail)\(hint)")
        }
        if detected == "raw" {
            if depth == 0, let shown = options.displayName, let key = options.cache.setKeys.first {
                throw ImageError(
                    .open, "Could not open '\(shown)': Block format 'raw' does not support the option '\(key)'")
            }
            return try RawImage(device: device, filename: path)
        }
        do {
            let (header, extensions) = try QCow2Image.readHeader(from: device)
            var backing: (any VirtualDisk)?
            if options.openBacking, let name = extensions.backingFile {
                guard depth + 1 < options.maxChainDepth else {
                    throw ImageError(
                        .open, "Could not open '\(path)': backing chain deeper than \(options.maxChainDepth)")
                }
                let resolved = try resolveBacking(name, overlay: path)
                let backingFormat = try backingFormat(extensions.backingFormat, resolved: resolved, overlay: path)
                var chainOptions = options
                chainOptions.dataFilePath = nil
                backing = try open(
                    resolved, format: backingFormat, options: chainOptions, depth: depth + 1, seen: &seen)
            }
            var dataFile: (any BlockDevice)?
            if header.hasExternalDataFile && !options.inspectOnly {
                dataFile = try openDataFile(extensions.externalDataFile, options: options, image: path, depth: depth)
            }
            let image = try QCow2Image(
                device: device, filename: path, header: header, extensions: extensions,
                writable: options.writable && depth == 0, backing: backing, dataFile: dataFile,
                cache: depth == 0 ? options.cache : QCow2CacheOptions(), requireDataFile: !options.inspectOnly)
            // QEMU repairs a dirty (lazy refcounts) image on every read-write open.
            if image.isWritable && header.incompatibleFeatures.contains(.dirty) && !options.skipDirtyRepair {
                _ = try image.rebuildRefcountsIfDirty()
            }
            return image
        } catch let error as ImageError {
            throw error
        } catch {
            throw ImageError.open(depth == 0 ? options.displayName ?? path : path, error)
        }
    }

    /// QEMU's rule: a relative name is appended to the directory part of the overlay's name as given.
    /// `json:` and `protocol:` names are refused: an image may only name plain files.
    public static func resolveBacking(_ name: String, overlay: String) throws -> String {
        if name.hasPrefix("json:") || hasProtocol(name) {
            throw ImageError(
                .open, "Could not open '\(overlay)': backing file name '\(name)' is not a plain path (refused)")
        }
        if name.hasPrefix("/") { return name }
        guard let slash = overlay.lastIndex(of: "/") else { return name }
        return String(overlay[...slash]) + name
    }

    /// A ':' before any '/' marks a protocol prefix (QEMU's `path_has_protocol`).
    static func hasProtocol(_ name: String) -> Bool {
        guard let colon = name.firstIndex(of: ":") else { return false }
        guard let slash = name.firstIndex(of: "/") else { return true }
        return colon < slash
    }

    /// The backing format: recorded in the image, else only a file that probes as qcow2.
    static func backingFormat(_ recorded: String?, resolved: String, overlay: String) throws -> String {
        if let recorded {
            guard formats.contains(recorded) else {
                throw ImageError(
                    .unsupported, "Could not open backing file '\(resolved)': Unknown format '\(recorded)'")
            }
            return recorded
        }
        let probe: String
        do {
            probe = try Self.probe(BlockFile(path: resolved, writable: false))
        } catch {
            throw ImageError.open(resolved, error)
        }
        guard probe == "qcow2" else {
            throw ImageError(
                .open,
                "Could not open '\(overlay)': backing file '\(resolved)' has no recorded format and is not qcow2; "
                    + "declare it with 'vmimg rebase -u -b \(resolved) -F raw \(overlay)'")
        }
        return probe
    }

    static func openDataFile(_ stored: String?, options: OpenOptions, image: String, depth: Int) throws
        -> any BlockDevice
    {
        let path: String
        if let explicit = options.dataFilePath, depth == 0 {
            path = explicit
        } else {
            guard let stored, !stored.isEmpty else {
                throw ImageError(.usage, "Could not open '\(image)': 'data-file' is required for this image")
            }
            guard options.allowDataFile else {
                throw ImageError(
                    .open,
                    "Could not open '\(image)': the image uses the external data file '\(stored)'; "
                        + "pass --allow-data-file to open it")
            }
            if stored.hasPrefix("json:") || hasProtocol(stored) {
                throw ImageError(.open, "Could not open '\(image)': data file name '\(stored)' is not a plain path")
            }
            // QEMU resolves a relative data file name against the working directory (qcow2-format.md §8.2).
            path = stored
        }
        do {
            return try BlockFile(path: path, writable: options.writable && depth == 0)
        } catch {
            throw ImageError.open(path, error)
        }
    }
}
