import QCow2

/// How to open an image: the flags every image-opening command shares.
public struct ImageOpenOptions: Sendable, Equatable {
    /// Path as given on the command line.
    public var path: String
    /// `-f fmt`; `nil` probes the format.
    public var format: String?
    /// `-U`/`--force-share`: open without taking qemu's image locks.
    public var forceShare: Bool
    /// `--allow-data-file` (vmimg): allow opening an image that names an external data file.
    public var allowDataFile: Bool
    /// `-l snapshot_param` for commands that read a snapshot instead of the active image.
    public var snapshot: String?
    /// qcow2 cache options from `--image-opts` (QEMU's defaults when unset).
    public var cache = QCow2CacheOptions()
    /// The `--image-opts` string, which qemu-img names in open errors instead of the path.
    public var displayName: String?

    /// Creates open options.
    public init(
        path: String, format: String? = nil, forceShare: Bool = false, allowDataFile: Bool = false,
        snapshot: String? = nil
    ) {
        self.path = path
        self.format = format
        self.forceShare = forceShare
        self.allowDataFile = allowDataFile
        self.snapshot = snapshot
    }
}

/// A new virtual size for `resize`: `size`, `+size` or `-size`.
public enum SizeChange: Sendable, Equatable {
    /// Set the size.
    case absolute(Int64)
    /// Grow by this many bytes.
    case grow(Int64)
    /// Shrink by this many bytes.
    case shrink(Int64)
}

/// `snapshot -c/-a/-d name`.
public enum SnapshotAction: Sendable, Equatable {
    /// `-c`: create.
    case create(String)
    /// `-a`: apply (revert to).
    case apply(String)
    /// `-d`: delete by ID or name.
    case delete(String)
}

/// `create [-f fmt] [-b backing [-F fmt]] [-u] [-o options] filename [size]`.
public struct CreateRequest: Sendable, Equatable {
    /// Output file.
    public var filename: String
    /// `-f`, default `raw`.
    public var format: String = "raw"
    /// Size in bytes; `nil` takes the backing file's size.
    public var size: Int64?
    /// `-b`.
    public var backingFile: String?
    /// `-F`.
    public var backingFormat: String?
    /// `-u`: don't open the backing file.
    public var unsafe: Bool = false
    /// `-o` options (`backing_file`, `cluster_size`, …), values as typed.
    public var options: [String: String] = [:]

    /// Creates a request.
    public init(filename: String) { self.filename = filename }
}

/// `convert … filename [filename2 …] output_filename`.
public struct ConvertRequest: Sendable, Equatable {
    /// Source images, concatenated.
    public var sources: [ImageOpenOptions]
    /// Output file.
    public var output: String
    /// `-O`, default `raw`.
    public var outputFormat: String = "raw"
    /// `--target-image-opts`: the output's option string, parsed (`output` is its file name).
    public var targetOptions: ImageOpenOptions?
    /// `-o` options.
    public var options: [String: String] = [:]
    /// `-B`: backing file of the output.
    public var backingFile: String?
    /// `-F`: its format.
    public var backingFormat: String?
    /// `-c`: compress.
    public var compress = false
    /// `-C`: copy offloading.
    public var copyRange = false
    /// `-n`: don't create the output.
    public var skipCreate = false
    /// `-S`: minimum run of zeros to keep sparse, bytes (qemu's default 4 KiB).
    public var sparseSize: Int64 = 4096
    /// `-m`: parallel requests (1…16, default 8).
    public var coroutines = 8
    /// `-W`: allow out-of-order writes.
    public var outOfOrder = false
    /// `--target-is-zero`.
    public var targetIsZero = false
    /// `--salvage`: keep going past read errors.
    public var salvage = false
    /// `--bitmaps`: copy persistent bitmaps.
    public var bitmaps = false
    /// `--skip-broken-bitmaps`: with `--bitmaps`, leave out inconsistent (`in_use`) bitmaps.
    public var skipBrokenBitmaps = false
    /// `-r`: bytes per second written at most (nil or 0: no limit).
    public var rateLimit: Int64?
    /// `-q`: no warnings either (`--salvage`'s unreadable sectors), as qemu-img.
    public var quiet = false
    /// `--keep-snapshots` (vmimg extra): qcow2 → qcow2 with every internal snapshot, shared
    /// clusters stored once.
    public var keepSnapshots = false
    /// `-t`: output cache mode; qemu-img convert's default is `unsafe` (no flushes).
    public var cache: String?

    /// Creates a request.
    public init(sources: [ImageOpenOptions], output: String) {
        self.sources = sources
        self.output = output
    }
}

/// `measure [-O fmt] [-o options] [--size N | [-f fmt] [-l snapshot] filename]`.
public struct MeasureRequest: Sendable, Equatable {
    /// `--size`: measure a new empty image of this size.
    public var size: Int64?
    /// The image to measure (with `-f`, `-l`), when not `--size`.
    public var source: ImageOpenOptions?
    /// `-O`, default `raw`.
    public var outputFormat: String = "raw"
    /// `-o` options.
    public var options: [String: String] = [:]

    /// Creates a request.
    public init(size: Int64? = nil, source: ImageOpenOptions? = nil) {
        self.size = size
        self.source = source
    }
}

/// `commit [-b base] [-d] [-r rate] filename`.
public struct CommitRequest: Sendable, Equatable {
    /// The overlay to commit.
    public var image: ImageOpenOptions
    /// `-b`: commit down to this backing image instead of the immediate one.
    public var base: String?
    /// `-d`: leave the overlay as it is instead of emptying it.
    public var keepOverlay = false
    /// `-r`: bytes per second limit.
    public var rateLimit: Int64?

    /// Creates a request.
    public init(image: ImageOpenOptions) { self.image = image }
}

/// `rebase [-u] -b backing [-F fmt] filename`.
public struct RebaseRequest: Sendable, Equatable {
    /// The image to rebase.
    public var image: ImageOpenOptions
    /// `-b`: new backing file; empty removes it.
    public var backingFile: String
    /// `-F`.
    public var backingFormat: String?
    /// `-u`: only rewrite the header, don't copy data.
    public var unsafe = false

    /// Creates a request.
    public init(image: ImageOpenOptions, backingFile: String) {
        self.image = image
        self.backingFile = backingFile
    }
}

/// `bench` parameters, with qemu-img's defaults.
public struct BenchRequest: Sendable, Equatable {
    /// The image.
    public var image: ImageOpenOptions
    /// `-c`: requests.
    public var count = 75000
    /// `-d`: requests in flight.
    public var depth = 64
    /// `-s`: bytes a request.
    public var bufferSize: Int64 = 4096
    /// `-o`: first offset.
    public var offset: Int64 = 0
    /// `-S`: step between requests; defaults to the request size.
    public var step: Int64?
    /// `-w`: write instead of read.
    public var write = false
    /// `--pattern`: byte to write.
    public var pattern: UInt8 = 0
    /// `--flush-interval`: flush every N requests (writes).
    public var flushInterval = 0
    /// `--no-drain`: flush without draining.
    public var noDrain = false
    /// `-i`: AIO engine (`threads`, `native`, `io_uring`).
    public var aio: String?
    /// `-t`: cache mode.
    public var cache: String?
    /// `--flush-log` (vmimg extension): print `flushed N` after each completed flush.
    public var flushLog = false

    /// Creates a request.
    public init(image: ImageOpenOptions) { self.image = image }
}

/// `bitmap OPERATIONS filename bitmap`.
public struct BitmapRequest: Sendable, Equatable {
    public enum Operation: Sendable, Equatable { case add, remove, clear, enable, disable }
    public var image: ImageOpenOptions
    /// The bitmap's name.
    public var name: String
    /// Applied in this order.
    public var operations: [Operation] = []
    /// `-g` for `--add`, bytes (nil: qemu-img's default from the cluster size).
    public var granularity: Int64?

    public init(image: ImageOpenOptions, name: String) {
        self.image = image
        self.name = name
    }
}
