import ImageKit
import QCow2
import QCow2Format

/// `-o` creation options turned into engine options, with qemu-img's messages for bad values.
enum CreationOptions {
    static let qcow2Keys: Set<String> = [
        "backing_file", "backing_fmt", "cluster_size", "compat", "compression_type", "data_file", "data_file_raw",
        "extended_l2", "lazy_refcounts", "preallocation", "refcount_bits", "size", "encryption", "encrypt.format",
    ]

    static func qcow2(_ dict: [String: String], size: UInt64) throws -> QCow2CreateOptions {
        var o = QCow2CreateOptions(size: size)
        for key in dict.keys where !qcow2Keys.contains(key) {
            throw CLIError("Invalid parameter '\(key)'")
        }
        if let v = dict["encryption"] ?? dict["encrypt.format"], v != "off" {
            throw CLIError("Encryption is not supported by vmimg")
        }
        if let v = dict["compat"] {
            switch v {
            case "0.10", "v2": o.version = 2
            case "1.1", "v3": o.version = 3
            default: throw CLIError("Parameter 'version' does not accept value '\(v)'")
            }
        }
        if let v = dict["cluster_size"] {
            let bytes = try SizeParser.cvtnum("cluster_size", v)
            guard bytes > 0, bytes & (bytes - 1) == 0, (512...(2 << 20)).contains(bytes) else {
                throw CLIError("Cluster size must be a power of two between 512 and 2048k")
            }
            o.clusterBits = UInt32(bytes.trailingZeroBitCount)
        }
        if let v = dict["refcount_bits"] {
            guard let bits = UInt64(v), bits > 0, bits <= 64, bits & (bits - 1) == 0 else {
                throw CLIError("Refcount width must be a power of two and may not exceed 64 bits")
            }
            o.refcountOrder = UInt32(bits.trailingZeroBitCount)
        }
        o.lazyRefcounts = try bool("lazy_refcounts", dict["lazy_refcounts"])
        o.extendedL2 = try bool("extended_l2", dict["extended_l2"])
        o.dataFileRaw = try bool("data_file_raw", dict["data_file_raw"])
        if let v = dict["compression_type"] {
            guard let type = QCow2CompressionType(name: v) else {
                throw CLIError("Parameter 'compression-type' does not accept value '\(v)'")
            }
            o.compressionType = type
        }
        o.preallocation = try preallocation(dict["preallocation"])
        o.backingFile = dict["backing_file"]
        o.backingFormat = dict["backing_fmt"]
        o.dataFile = dict["data_file"]
        return o
    }

    static func bool(_ name: String, _ value: String?) throws -> Bool {
        switch value {
        case nil, "off", "false": return false
        case "on", "true": return true
        case let v?: throw CLIError("Parameter '\(name)' expects 'on' or 'off', got '\(v)'")
        }
    }

    static func preallocation(_ value: String?) throws -> QCow2CreateOptions.Preallocation {
        guard let value else { return .off }
        guard let mode = QCow2CreateOptions.Preallocation(rawValue: value) else {
            throw CLIError("Parameter 'preallocation' does not accept value '\(value)'")
        }
        return mode
    }
}
