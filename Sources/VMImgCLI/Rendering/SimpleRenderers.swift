import ImageKit

/// Renders `measure` like qemu-img 7.2 `img_measure`.
public enum MeasureRenderer {
    /// `required size: N`, `fully allocated size: N` and, when known, `bitmaps size: N`.
    public static func human(_ result: MeasureResult) -> String {
        var out = "required size: \(result.required)\nfully allocated size: \(result.fullyAllocated)\n"
        if let bitmaps = result.bitmaps { out += "bitmaps size: \(bitmaps)\n" }
        return out
    }

    /// The `BlockMeasureInfo` JSON object with a trailing newline.
    /// - Throws: encoding errors.
    public static func json(_ result: MeasureResult) throws -> String {
        try JSONWriter.pretty(result) + "\n"
    }
}

/// Renders `compare` results like qemu-img 7.2 `img_compare`.
public enum CompareRenderer {
    /// The lines qemu-img prints (unless `-q`). "Warning: Image size mismatch!" appears only once
    /// the common part matched, i.e. before "Images are identical." or before a mismatch found past
    /// the shorter image's end.
    /// `warned`: the caller already printed the warning when the comparison reached the tail.
    public static func human(_ result: CompareResult, warned: Bool = false) -> String {
        let sizesDiffer = result.size1 != result.size2 && !warned
        let common = min(result.size1, result.size2)
        switch result.outcome {
        case .identical:
            return (sizesDiffer ? "Warning: Image size mismatch!\n" : "") + "Images are identical.\n"
        case .contentMismatch(let offset):
            let warning = sizesDiffer && offset >= common ? "Warning: Image size mismatch!\n" : ""
            return warning + "Content mismatch at offset \(offset)!\n"
        case .strictSizeMismatch:
            return "Strict mode: Image size mismatch!\n"
        case .blockStatusMismatch(let offset):
            return "Strict mode: Offset \(offset) block status mismatch!\n"
        }
    }

    /// 0 when identical, 1 otherwise.
    public static func exitCode(_ result: CompareResult) -> Int32 { result.isIdentical ? 0 : 1 }
}

/// The `Formatting '…', fmt=… …` line `create` prints (`bdrv_img_create` + `qemu_opts_print`).
public enum CreateRenderer {
    /// qcow2 creation options in the order qemu-img 7.2 prints them.
    static let qcow2Order = [
        "encryption", "cluster_size", "extended_l2", "preallocation", "compression_type", "size",
        "compat",
        "backing_file", "backing_fmt", "data_file", "data_file_raw", "lazy_refcounts", "refcount_bits",
    ]
    /// Options printed even when not given, with their defaults.
    static let qcow2Defaults = [
        "cluster_size": "65536", "extended_l2": "off", "compression_type": "zlib",
        "lazy_refcounts": "off",
        "refcount_bits": "16",
    ]

    /// The line without its newline. `options` holds the final values (sizes already in bytes);
    /// string values have commas doubled, as `escaped_print` does.
    public static func formatting(filename: String, format: String, options: [String: String])
        -> String
    {
        let order = format == "qcow2" ? qcow2Order : ["size"]
        let defaults = format == "qcow2" ? qcow2Defaults : [:]
        var parts = ["Formatting '\(filename)', fmt=\(format)"]
        for name in order {
            guard let value = options[name] ?? defaults[name] else { continue }
            parts.append("\(name)=" + value.replacingOccurrences(of: ",", with: ",,"))
        }
        let known = Set(order)
        for name in options.keys.sorted() where !known.contains(name) {
            parts.append("\(name)=" + (options[name] ?? "").replacingOccurrences(of: ",", with: ",,"))
        }
        return parts.joined(separator: " ")
    }
}
