import BlockIO
import Codecs
import QCow2Format

/// How `writeSnapshotPreservingCopy(to:options:)` lays out the new image (`convert --keep-snapshots`,
/// `compact`).
public struct SnapshotCopyOptions: Sendable, Equatable {
    /// What happens to the source's backing file.
    public enum Backing: Sendable, Equatable {
        /// Unallocated clusters are read from the source's backing chain and stored (no backing).
        case flatten
        /// The output names this backing file; unallocated clusters stay unallocated.
        case keep(file: String, format: String?)
    }
    /// 2 (`compat=0.10`) or 3 (`compat=1.1`).
    public var version: UInt32
    public var clusterBits: UInt32
    public var refcountOrder: UInt32
    public var compressionType: QCow2CompressionType
    public var lazyRefcounts: Bool
    /// `-c`: store every data cluster compressed when that makes it smaller.
    public var compress: Bool
    public var backing: Backing

    /// The source's own layout: what `compact` keeps (geometry, compat, compression, backing).
    public init(matching image: QCow2Image) {
        let h = image.header
        version = h.version
        clusterBits = h.clusterBits
        refcountOrder = h.refcountOrder
        compressionType = h.compressionType
        lazyRefcounts = h.compatibleFeatures.contains(.lazyRefcounts)
        compress = false
        let ext = image.extensions
        backing = ext.backingFile.map { .keep(file: $0, format: ext.backingFormat) } ?? .flatten
    }

    /// `convert -O qcow2 -o …`: the creation options' layout; `-B` keeps that backing file.
    public init(create: QCow2CreateOptions, compress: Bool) throws {
        try create.validate()
        guard !create.extendedL2, create.dataFile == nil, create.preallocation == .off else {
            throw QCow2Error.unsupported(
                "--keep-snapshots does not support extended_l2, data_file or preallocation in the output")
        }
        version = create.version
        clusterBits = create.clusterBits
        refcountOrder = create.refcountOrder
        compressionType = create.compressionType
        lazyRefcounts = create.lazyRefcounts
        self.compress = compress
        backing = create.backingFile.map { .keep(file: $0, format: create.backingFormat) } ?? .flatten
    }

    var keepsBacking: Bool { if case .keep = backing { true } else { false } }
}

/// What a snapshot-preserving copy wrote.
public struct SnapshotCopyReport: Sendable, Equatable {
    /// Host clusters of guest data written (each stored once, however many layers use it).
    public var dataClusters = 0
    /// Compressed streams written.
    public var compressedClusters = 0
    /// L2 entries, over all layers, that point at stored data.
    public var dataReferences = 0
    /// Distinct L2 tables written (a table identical in several layers is stored once).
    public var l2Tables = 0
    public var snapshots = 0
    /// Length of the new file.
    public var fileLength: UInt64 = 0
}

/// One run of a source layer, as the identity of what an output cluster holds: two output
/// clusters with equal runs hold equal bytes, so they share one host cluster.
enum SourceRun: Hashable {
    case data(host: UInt64, length: UInt64)
    case compressed(host: UInt64, sectors: Int, from: UInt64, length: UInt64)
    case zero(length: UInt64)
    /// Reads from the backing chain at this guest offset (only when flattening).
    case backing(guest: UInt64, length: UInt64)
    /// Falls through to the output's backing file (read from it only beside data).
    case unallocated(guest: UInt64, length: UInt64)

    var isUnallocated: Bool { if case .unallocated = self { true } else { false } }

    var hasData: Bool {
        switch self {
        case .data, .compressed, .backing: true
        case .zero, .unallocated: false
        }
    }
}

/// One layer of the source (a snapshot or the active image) and its tables in the output.
struct CopyLayer {
    var sourceL1: [UInt64]
    var diskSize: UInt64
    var vmStateSize: UInt64
    var sourceVMStart: UInt64
    var outputVMStart: UInt64
    var outputL1Size: Int
    /// Output L2 tables by L1 index (entries without COPIED bits until the refcounts are known).
    var tables: [Int: [UInt64]] = [:]
}

extension QCow2Image {
    /// Writes this image, every internal snapshot included, as a new qcow2 file on `out`: each
    /// source data cluster (or compressed cluster) that k layers reference is stored once: the active
    /// layer's data first in guest order, then what each snapshot adds; L2 tables equal in several layers are stored once; the metadata
    /// follows the data, the header is written last. Refcounts are exact (§5), COPIED bits are set
    /// where the refcount is 1, snapshot entries keep name, ID, dates, VM clock, VM state and extra data.
    /// - Parameters:
    ///   - out: an empty, writable device (the new file).
    ///   - options: output layout; see ``SnapshotCopyOptions``.
    /// - Throws: `QCow2Error.unsupported` for external data files or a refcount width too narrow
    ///   for the sharing; I/O and corruption errors from the source.
    public func writeSnapshotPreservingCopy(to out: any BlockDevice, options: SnapshotCopyOptions) throws
        -> SnapshotCopyReport
    {
        let (header, snapshots, activeL1) = state.withLock { ($0.header, $0.snapshots, $0.l1) }
        guard !header.hasExternalDataFile, dataFile == nil else {
            throw QCow2Error.unsupported("images with an external data file cannot keep snapshots in a copy")
        }
        guard header.cryptMethod == 0 else { throw QCow2Error.unsupported("encrypted images cannot be copied") }
        if options.version < 3 && options.compressionType != .zlib {
            throw QCow2Error.invalid(field: "compression_type", reason: "compat=0.10 supports zlib only")
        }
        let og = QCow2Geometry(
            clusterBits: Int(options.clusterBits), extendedL2: false, refcountOrder: Int(options.refcountOrder))
        let sg = geometry
        var layers: [CopyLayer] = []
        func layer(_ l1: [UInt64], size: UInt64, vmState: UInt64) -> CopyLayer {
            let sourceVM = sg.l1EntriesNeeded(size: size) * sg.bytesPerL1Entry
            let outputVM = og.l1EntriesNeeded(size: size) * og.bytesPerL1Entry
            let l1Size =
                vmState > 0 ? og.l1Index(outputVM + vmState - 1) + 1 : Int(og.l1EntriesNeeded(size: size))
            return CopyLayer(
                sourceL1: l1, diskSize: size, vmStateSize: vmState, sourceVMStart: sourceVM, outputVMStart: outputVM,
                outputL1Size: l1Size)
        }
        for s in snapshots {
            let l1 = try snapshotL1(s)
            layers.append(layer(l1, size: s.diskSize ?? header.size, vmState: s.vmStateSize))
        }
        layers.append(layer(activeL1, size: header.size, vmState: 0))
        for l in layers where l.outputL1Size > QCow2Geometry.maxL1Entries {
            throw QCow2Error.tooLarge(
                field: "l1_size", value: UInt64(l.outputL1Size), limit: UInt64(QCow2Geometry.maxL1Entries))
        }
        var copier = try SnapshotCopier(
            image: self, out: out, options: options, outputGeometry: og, hasSourceBacking: backingDisk != nil)
        try copier.copyData(&layers)
        var entries = snapshots
        for i in entries.indices where entries[i].diskSize == nil { entries[i].diskSize = header.size }
        return try copier.writeMetadata(layers: layers, snapshots: entries, size: header.size)
    }
}

/// The data pass of a snapshot-preserving copy: walks every layer's tables, stores each distinct
/// source run once, and records each layer's output L2 entries.
struct SnapshotCopier {
    let image: QCow2Image
    let options: SnapshotCopyOptions
    let og: QCow2Geometry
    let hasSourceBacking: Bool
    var writer: SequentialWriter
    var report = SnapshotCopyReport()
    /// Output L2 entry (without COPIED) for each distinct source content already stored.
    var stored: [[SourceRun]: UInt64] = [:]
    /// Write position for data; compressed streams are packed byte by byte from here.
    var cursor: UInt64
    /// End of the last compressed descriptor's sector range: the next normal cluster starts after it.
    var reservedEnd: UInt64 = 0
    let compressor: ClusterCompressor?

    init(
        image: QCow2Image, out: any BlockDevice, options: SnapshotCopyOptions, outputGeometry: QCow2Geometry,
        hasSourceBacking: Bool
    ) throws {
        self.image = image
        self.options = options
        og = outputGeometry
        self.hasSourceBacking = hasSourceBacking
        writer = SequentialWriter(device: out)
        cursor = UInt64(og.clusterSize)
        let codec: CompressionType = options.compressionType == .zstd ? .zstd : .zlib
        let needsCompressor =
            options.compress || image.header.compressionType != options.compressionType
            || image.geometry.clusterSize != og.clusterSize
        compressor = needsCompressor ? try ClusterCompressor(type: codec, clusterSize: og.clusterSize) : nil
    }

    /// The active layer first, whole, in guest order (so the disk the guest runs on is contiguous:
    /// `check` reports no fragmentation, sequential reads stay sequential), then each snapshot in
    /// table order, storing only what no earlier layer stored; then the VM state areas.
    mutating func copyData(_ layers: inout [CopyLayer]) throws {
        let cs = UInt64(og.clusterSize)
        let scs = UInt64(image.geometry.clusterSize)
        // `layers` ends with the active layer (`copy` appends it after the snapshots).
        let order = layers.indices.last.map { [$0] + layers.indices.dropLast() } ?? []
        for k in order {
            let clusters = og.clustersFor(bytes: layers[k].diskSize)
            let end = roundUp(layers[k].diskSize, scs)
            var c: UInt64 = 0
            while c < clusters {
                // The copy goes to a new file its caller removes on any error: stopping is always safe.
                try Cancellation.check()
                try copyCluster(&layers[k], output: c * cs, source: c * cs, sourceEnd: end)
                c += 1
            }
        }
        for k in layers.indices where layers[k].vmStateSize > 0 {
            let l = layers[k]
            let end = l.sourceVMStart + roundUp(l.vmStateSize, scs)
            var done: UInt64 = 0
            while done < l.vmStateSize {
                try Cancellation.check()
                try copyCluster(
                    &layers[k], output: l.outputVMStart + done, source: l.sourceVMStart + done, sourceEnd: end)
                done += cs
            }
        }
        try writer.flush()
    }

    /// Maps one output cluster of `layer` to its source runs and stores (or reuses) its data.
    mutating func copyCluster(_ layer: inout CopyLayer, output: UInt64, source: UInt64, sourceEnd: UInt64) throws {
        let runs = try sourceRuns(layer.sourceL1, from: source, count: UInt64(og.clusterSize), end: sourceEnd)
        let entry: UInt64
        if runs.allSatisfy(\.isUnallocated) {
            entry = 0
        } else if !runs.contains(where: { $0.hasData || $0.isUnallocated }) {
            entry = try zeroEntry(runs: runs, guest: output)
        } else if let known = stored[runs] {
            entry = known
        } else {
            entry = try store(runs)
            stored[runs] = entry
        }
        guard entry != 0 else { return }
        let l1Index = og.l1Index(output)
        layer.tables[l1Index, default: [UInt64](repeating: 0, count: og.l2Entries)][og.l2Index(output)] = entry
    }

    /// An all-zero cluster: unallocated without an output backing file, the zero flag in v3 with
    /// one; v2 has no zero flag, so the zeros are stored (once per guest offset).
    mutating func zeroEntry(runs: [SourceRun], guest: UInt64) throws -> UInt64 {
        guard options.keepsBacking else { return 0 }
        if options.version >= 3 { return L2Entry.zeroFlag }
        let key = runs + [.backing(guest: guest, length: 0)]
        if let known = stored[key] { return known }
        let entry = try writeNormal([UInt8](repeating: 0, count: og.clusterSize))
        stored[key] = entry
        return entry
    }

    /// The source runs covering `[from, from + count)` in one layer, clipped at `end` (zeros after).
    mutating func sourceRuns(_ l1: [UInt64], from: UInt64, count: UInt64, end: UInt64) throws -> [SourceRun] {
        var runs: [SourceRun] = []
        var pos = from
        let stop = from + count
        while pos < stop {
            guard pos < end else {
                runs.append(.zero(length: stop - pos))
                break
            }
            let (mapping, length) = try image.state.withLock { s in
                try s.lookup(pos, maxLength: min(stop, end) - pos, l1: l1, file: image.file)
            }
            let n = min(length, min(stop, end) - pos)
            switch mapping {
            case .data(let host): runs.append(.data(host: host, length: n))
            case .zero: runs.append(.zero(length: n))
            case .compressed(let d, let clusterOffset):
                runs.append(
                    .compressed(host: d.hostOffset, sectors: d.sectorCount, from: pos - clusterOffset, length: n))
            case .unallocated:
                if options.keepsBacking {
                    runs.append(.unallocated(guest: pos, length: n))
                } else if hasSourceBacking {
                    runs.append(.backing(guest: pos, length: n))
                } else {
                    runs.append(.zero(length: n))
                }
            }
            pos += n
        }
        return runs
    }

    /// Stores one output cluster's content and returns its L2 entry.
    mutating func store(_ runs: [SourceRun]) throws -> UInt64 {
        let cs = og.clusterSize
        // A compressed source cluster of the same size and codec is copied as it is stored.
        if runs.count == 1, case .compressed(let host, let sectors, 0, let length) = runs[0], length == UInt64(cs),
            image.geometry.clusterSize == cs, image.header.compressionType == options.compressionType
        {
            let d = CompressedDescriptor(hostOffset: host, sectorCount: sectors)
            let fileLength = try image.file.length()
            let count = Int(min(UInt64(d.byteLength), fileLength > host ? fileLength - host : 0))
            let stream = try image.file.read(count: count, at: host)
            if let entry = try writeCompressed(stream) { return entry }
        }
        var buffer = [UInt8](repeating: 0, count: cs)
        var at = 0
        for run in runs {
            switch run {
            case .data(let host, let length):
                try image.file.read(into: &buffer, range: at..<(at + Int(length)), at: host)
                at += Int(length)
            case .compressed(let host, let sectors, let from, let length):
                let fileLength = try image.file.length()
                let cluster = try image.decompress(
                    CompressedDescriptor(hostOffset: host, sectorCount: sectors), fileLength: fileLength)
                buffer.replaceSubrange(at..<(at + Int(length)), with: cluster[Int(from)..<Int(from + length)])
                at += Int(length)
            case .backing(let guest, let length), .unallocated(let guest, let length):
                // An unallocated run beside data: the output cluster is allocated, so the
                // backing chain's bytes are stored in it.
                try image.readBacking(into: &buffer, range: at..<(at + Int(length)), at: guest)
                at += Int(length)
            case .zero(let length):
                at += Int(length)
            }
        }
        if allZero(buffer) {
            guard options.keepsBacking else { return 0 }
            return options.version >= 3 ? L2Entry.zeroFlag : try writeNormal(buffer)
        }
        let wantsCompression =
            options.compress || runs.contains { if case .compressed = $0 { true } else { false } }
        if wantsCompression, let compressor, let stream = try compressor.compress(buffer, range: 0..<cs),
            let entry = try writeCompressed(stream)
        {
            return entry
        }
        return try writeNormal(buffer)
    }

    mutating func writeNormal(_ buffer: [UInt8]) throws -> UInt64 {
        let cs = UInt64(og.clusterSize)
        let at = roundUp(max(cursor, reservedEnd), cs)
        try writer.write(buffer, at: at)
        cursor = at + cs
        report.dataClusters += 1
        return at
    }

    /// Packs a compressed stream at the cursor; nil when its descriptor could not describe it there.
    mutating func writeCompressed(_ stream: [UInt8]) throws -> UInt64? {
        let at = cursor
        let bits = UInt32(og.clusterBits)
        let extraSectors = (at + UInt64(stream.count) - 1) / 512 - at / 512
        guard !stream.isEmpty, extraSectors < UInt64(1) << UInt64(og.clusterBits - 8),
            at + UInt64(stream.count) <= CompressedDescriptor.offsetLimit(clusterBits: bits)
        else { return nil }
        try writer.write(stream, at: at)
        cursor = at + UInt64(stream.count)
        reservedEnd = max(reservedEnd, (at / 512 + extraSectors + 1) * 512)
        report.compressedClusters += 1
        return CompressedDescriptor.encode(offset: at, length: stream.count, clusterBits: bits)
    }

    func allZero(_ buffer: [UInt8]) -> Bool {
        var acc: UInt8 = 0
        for b in buffer { acc |= b }
        return acc == 0
    }
}

func roundUp(_ value: UInt64, _ unit: UInt64) -> UInt64 { (value + unit - 1) / unit * unit }
