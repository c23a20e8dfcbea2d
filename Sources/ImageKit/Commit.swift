import BlockIO
import QCow2
import QCow2Format

/// What `qemu-img commit [-b base] [-d]` is asked to do.
public struct CommitOptions: Sendable {
    /// `-b`: commit down to this image of the chain (matched by file name as the chain names it);
    /// nil = the immediate backing image. `-b` implies `-d`, as in qemu-img.
    public var base: String?
    /// `-d`: leave the overlay as it is instead of emptying it.
    public var keepOverlay = false
    /// Bytes copied per request.
    public var chunkSize = 2 << 20
    /// `-r`: bytes per second written into the base at most, on average (nil: no limit).
    public var rateLimit: Int64?

    public init(base: String? = nil, keepOverlay: Bool = false) {
        self.base = base
        self.keepOverlay = keepOverlay
    }
}

/// `qemu-img commit`: writes the data of the layers above the base into the base, then empties
/// the top overlay (unless `-d` or `-b`).
public enum ImageCommit {
    /// Commits `path` into its base.
    /// - Parameters:
    ///   - path: the overlay (qcow2 with a backing file).
    ///   - progress: fraction done, 0...1.
    /// - Throws: `ImageError` (.usage without a backing file or with an unknown base), engine errors.
    public static func commit(
        _ path: String, options: CommitOptions = CommitOptions(), open: OpenOptions = OpenOptions(),
        progress: ((Double) -> Void)? = nil
    ) throws {
        var openOptions = open
        openOptions.writable = !options.keepOverlay && options.base == nil
        let top = try ImageOpener.open(path, options: openOptions)
        guard let immediate = top.backingDisk else {
            throw ImageError(.usage, "Image does not have a backing file")
        }
        // Find the base layer and how deep it sits.
        var baseDisk: any VirtualDisk = immediate
        var depth = 1
        if let name = options.base {
            var layer: (any VirtualDisk)? = immediate
            var d = 1
            var found: (any VirtualDisk)?
            while let l = layer {
                if l.filename == name || l.filename.hasSuffix("/" + name) || name.hasSuffix("/" + l.filename) {
                    found = l
                    break
                }
                layer = l.backingDisk
                d += 1
            }
            guard let found else {
                throw ImageError(.usage, "Did not find '\(name)' in the backing chain of '\(path)'")
            }
            baseDisk = found
            depth = d
        }
        let base = try openWritable(baseDisk)
        if base.virtualSize < top.virtualSize { try base.grow(to: top.virtualSize) }
        let size = top.virtualSize
        var buffer = AlignedBytes(count: options.chunkSize)
        var offset: UInt64 = 0
        let throttle = WriteThrottle(bytesPerSecond: options.rateLimit)
        while offset < size {
            do {
                try Cancellation.check()
            } catch {
                // The overlay is untouched until the end; what reached the base is kept, durably.
                try base.flush()
                throw error
            }
            let e = try top.chainStatus(at: offset, maxLength: min(UInt64(options.chunkSize), size - offset))
            let n = Int(e.length)
            // Only what a layer above the base decided is copied.
            if e.depth < depth {
                if e.zero {
                    try base.writeZeroes(at: offset, count: UInt64(n))
                } else {
                    try top.read(into: &buffer.bytes, range: buffer.indices(0..<n), at: offset)
                    try base.write(buffer.bytes, range: buffer.indices(0..<n), at: offset)
                    try throttle?.account(n)
                }
            }
            offset += UInt64(n)
            progress?(Double(offset) / Double(max(size, 1)))
        }
        try base.flush()
        if !options.keepOverlay && options.base == nil, let overlay = top as? QCow2Image {
            try overlay.makeEmpty()
        }
    }

    /// The base reopened for writing (the chain opened it read-only).
    static func openWritable(_ disk: any VirtualDisk) throws -> WritableBase {
        do {
            let device = try BlockFile(path: disk.filename, writable: true)
            if disk is RawImage { return .raw(device) }
            let (header, extensions) = try QCow2Image.readHeader(from: device)
            return .qcow2(
                try QCow2Image(
                    device: device, filename: disk.filename, header: header, extensions: extensions, writable: true,
                    backing: disk.backingDisk))
        } catch {
            throw ImageError.open(disk.filename, error)
        }
    }

    enum WritableBase {
        case raw(BlockFile)
        case qcow2(QCow2Image)

        var virtualSize: UInt64 {
            switch self {
            case .raw(let f): return (try? f.length()) ?? 0
            case .qcow2(let q): return q.virtualSize
            }
        }

        func grow(to size: UInt64) throws {
            switch self {
            case .raw(let f): try f.setLength(size)
            case .qcow2(let q): try q.resize(to: size)
            }
        }

        func write(_ buffer: [UInt8], range: Range<Int>, at offset: UInt64) throws {
            switch self {
            case .raw(let f): try f.write(buffer, range: range, at: offset)
            case .qcow2(let q): try q.write(buffer, range: range, at: offset)
            }
        }

        func writeZeroes(at offset: UInt64, count: UInt64) throws {
            switch self {
            case .raw(let f):
                let zeros = [UInt8](repeating: 0, count: Int(count))
                try f.write(zeros, at: offset)
            case .qcow2(let q): try q.writeZeroes(at: offset, count: count)
            }
        }

        func flush() throws {
            switch self {
            case .raw(let f): try f.flush()
            case .qcow2(let q): try q.flush()
            }
        }
    }
}
