import BlockIO
import QCow2
import QCow2Format

/// `qemu-img amend -o compat=…,refcount_bits=…,lazy_refcounts=…,size=…`, in QEMU's order:
/// upgrade, refcount width, lazy refcounts, size, then downgrade last.
public enum Amender {
    /// What the options ask for, checked before anything changes.
    public struct Plan: Equatable, Sendable {
        public var version: UInt32?
        public var refcountOrder: Int?
        public var lazyRefcounts: Bool?
        public var size: UInt64?
    }

    /// Options qcow2 accepts only at creation (qemu-img: "This option is only supported for image creation").
    static let creationOnly: Set<String> = [
        "cluster_size", "preallocation", "extended_l2", "compression_type", "encryption",
    ]
    /// Amendable in QEMU, not in vmimg yet.
    static let notYet: Set<String> = ["backing_file", "backing_fmt", "data_file", "data_file_raw"]

    /// Parses and checks `-o` options against the image's current header, with qemu-img's messages.
    /// - Throws: ``ImageError`` of kind `.unsupported` (qemu-img prints these without the help hint).
    public static func plan(_ options: [String: String], header: QCow2Header) throws -> Plan {
        var plan = Plan()
        for (key, value) in options.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "compat":
                switch value {
                case "0.10", "v2": plan.version = 2
                case "1.1", "v3": plan.version = 3
                default: throw ImageError(.unsupported, "Unknown compatibility level \(value)")
                }
            case "refcount_bits":
                guard let bits = Int(value), bits > 0, bits <= 64, bits & (bits - 1) == 0 else {
                    throw ImageError(
                        .unsupported, "Refcount width must be a power of two and may not exceed 64 bits")
                }
                plan.refcountOrder = bits.trailingZeroBitCount
            case "lazy_refcounts":
                switch value {
                case "on": plan.lazyRefcounts = true
                case "off": plan.lazyRefcounts = false
                default: throw ImageError(.unsupported, "Parameter 'lazy_refcounts' expects 'on' or 'off'")
                }
            case "size":
                guard let size = parseSize(value) else {
                    throw ImageError(.unsupported, "Parameter 'size' expects a non-negative number below 2^64")
                }
                plan.size = size
            case _ where creationOnly.contains(key) || key.hasPrefix("encrypt."):
                throw ImageError(
                    .unsupported, "Invalid parameter '\(key)'\nThis option is only supported for image creation")
            case _ where notYet.contains(key):
                throw ImageError(.unsupported, "amend: option '\(key)' is not supported by vmimg yet")
            default:
                throw ImageError(.unsupported, "Invalid parameter '\(key)'")
            }
        }
        let version = plan.version ?? header.version
        if version < 3 {
            if let order = plan.refcountOrder, order != 4 {
                throw ImageError(
                    .unsupported,
                    "Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or "
                        + "greater)")
            }
            // A lazy-refcounts bit already set is simply dropped by the downgrade, as in QEMU.
            if plan.lazyRefcounts == true {
                throw ImageError(
                    .unsupported,
                    "Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)"
                )
            }
            if header.version >= 3 && (plan.refcountOrder ?? Int(header.refcountOrder)) != 4 {
                throw ImageError(.unsupported, "compat=0.10 requires refcount_bits=16")
            }
        }
        return plan
    }

    /// Applies `plan`. `open` opens the image writable; it is called again after a change of
    /// refcount width (an open image keeps its geometry), once the first handle is closed and
    /// released so its lock is gone.
    public static func apply(
        _ plan: Plan, open: () throws -> QCow2Image, progress: (Double) -> Void
    ) throws {
        do {
            try phase(open) { image in
                if let v = plan.version, v > image.header.version { try image.upgradeToVersion3() }
                progress(20)
                if let order = plan.refcountOrder, order != Int(image.header.refcountOrder) {
                    try image.changeRefcountOrder(to: order)
                }
            }
            progress(50)
            try phase(open) { image in
                if let lazy = plan.lazyRefcounts { try image.setLazyRefcounts(lazy) }
                if let size = plan.size, size != image.virtualSize { try image.resize(to: size) }
                progress(70)
                if let v = plan.version, v < image.header.version { try image.downgradeToVersion2() }
            }
            progress(100)
        } catch let error as ImageError {
            throw error
        } catch let error as QCow2Error {
            throw ImageError(.unsupported, ImageError.reason(error))
        } catch {
            throw ImageError.wrap(error)
        }
    }

    /// Opens the image, runs `body`, closes it; the handle is gone when this returns.
    /// One open-change-close step. A signal stops amend between steps, and inside the long ones
    /// where the image is whole: a refcount-width change before its switch (nothing changed), a
    /// downgrade between L2 tables (still v3, every table reading as before).
    static func phase(_ open: () throws -> QCow2Image, _ body: (QCow2Image) throws -> Void) throws {
        try Cancellation.check()
        let image = try open()
        do {
            try body(image)
        } catch {
            try? image.close()
            throw error
        }
        try image.close()
    }

    /// qemu-img sizes: a number with an optional k/M/G/T/P/E suffix (powers of 1024).
    static func parseSize(_ text: String) -> UInt64? {
        let units: [Character: UInt64] = [
            "k": 10, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60,
        ]
        var digits = Substring(text)
        var shift: UInt64 = 0
        if let last = digits.last, let s = units[last] {
            shift = s
            digits = digits.dropLast()
        } else if digits.last == "b" || digits.last == "B" {
            digits = digits.dropLast()
        }
        guard let n = UInt64(digits), n <= UInt64.max >> shift else { return nil }
        return n << shift
    }
}
