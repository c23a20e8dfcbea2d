import BlockIO
import QCow2
import QCow2Format

/// `qemu-img create`: raw files and qcow2 images.
public enum ImageCreator {
    /// Creates a qcow2 image at `path` (truncating an existing file), and its data file when named.
    /// - Parameter flushes: false opens the file with `cache=unsafe` semantics (no fdatasync).
    /// - Returns: the image opened read-write when `openAfter`.
    @discardableResult
    public static func createQCow2(
        path: String, options: QCow2CreateOptions, openAfter: Bool = false, flushes: Bool = true
    ) throws -> QCow2Image {
        var device: BlockFile
        do {
            device = try BlockFile(path: path, writable: true, create: true, truncate: true, ignoresFlush: !flushes)
        } catch {
            throw ImageError(.open, "\(path): Could not create '\(path)': \(ImageError.reason(error))")
        }
        var dataDevice: BlockFile?
        if let dataFile = options.dataFile {
            do {
                dataDevice = try BlockFile(path: dataFile, writable: true, create: true, truncate: true)
            } catch {
                throw ImageError(.open, "\(path): Could not create '\(dataFile)': \(ImageError.reason(error))")
            }
        }
        do {
            try QCow2Image.create(on: device, filename: path, options: options, dataFileDevice: dataDevice)
        } catch {
            throw ImageError(.usage, ImageError.reason(error), path: path)
        }
        if openAfter {
            // The files were truncated through these descriptors, so ext4 (auto_da_alloc) would write
            // back everything written through them when they close: a synchronous flush of the whole
            // conversion. Fresh descriptors opened before any data is written avoid it (as qemu-img,
            // which creates, closes and reopens).
            device = try reopen(path, ignoresFlush: !flushes)
            if dataDevice != nil, let name = options.dataFile {
                dataDevice = try reopen(name, ignoresFlush: false)
            }
        }
        let (header, extensions) = try QCow2Image.readHeader(from: device)
        var backing: (any VirtualDisk)?
        if openAfter, let name = extensions.backingFile {
            let resolved = try ImageOpener.resolveBacking(name, overlay: path)
            backing = try ImageOpener.open(resolved, options: OpenOptions(format: extensions.backingFormat))
        }
        return try QCow2Image(
            device: device, filename: path, header: header, extensions: extensions, writable: true, backing: backing,
            dataFile: dataDevice)
    }

    /// A new read-write descriptor for `path` (the caller drops the old one).
    static func reopen(_ path: String, ignoresFlush: Bool) throws -> BlockFile {
        do {
            return try BlockFile(path: path, writable: true, ignoresFlush: ignoresFlush)
        } catch {
            throw ImageError(.open, "\(path): Could not open '\(path)': \(ImageError.reason(error))")
        }
    }

    /// Creates a raw file of `size` bytes (sparse unless preallocated).
    public static func createRaw(path: String, size: UInt64, preallocation: QCow2CreateOptions.Preallocation = .off)
        throws
    {
        do {
            let device = try BlockFile(path: path, writable: true, create: true, truncate: true)
            try device.setLength(size)
            switch preallocation {
            case .off, .metadata: break
            case .falloc: try device.preallocate(offset: 0, count: size)
            case .full:
                let zeros = [UInt8](repeating: 0, count: 1 << 20)
                var offset: UInt64 = 0
                while offset < size {
                    let n = Int(min(UInt64(zeros.count), size - offset))
                    try device.write(zeros, range: 0..<n, at: offset)
                    offset += UInt64(n)
                }
            }
            try device.flush()
        } catch {
            throw ImageError(.open, "\(path): Could not create '\(path)': \(ImageError.reason(error))")
        }
    }
}
