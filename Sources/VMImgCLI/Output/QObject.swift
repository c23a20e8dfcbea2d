/// A value as QEMU's QObject layer holds it before printing: what qemu-img's QAPI output visitor
/// builds from a struct and its JSON writer and `dump_qobject` print.
public indirect enum QObject: Sendable, Equatable {
    /// `QNUM_I64`, printed with `%" PRId64`.
    case int(Int64)
    /// `QNUM_U64`, printed with `%" PRIu64`.
    case uint(UInt64)
    /// `QNUM_DOUBLE`, printed with `%.17g`.
    case double(Double)
    /// `QBool`.
    case bool(Bool)
    /// `QString`.
    case string(String)
    /// `QDict`; iterates in QEMU's hash-bucket order, not insertion order.
    case dict(QDict)
    /// `QList`, in order.
    case list([QObject])
    /// `QNull`.
    case null
}

/// A dictionary that iterates like QEMU's `QDict`.
///
/// QEMU hashes each key with `tdb_hash` into one of 512 buckets, inserts at the head of the
/// bucket's list and iterates bucket by bucket. So qemu-img's JSON key order (`"virtual-size"`
/// before `"filename"`) follows from the key names and, within a bucket, reverse insertion order.
public struct QDict: Sendable, Equatable {
    /// Members in insertion order.
    public private(set) var members: [(key: String, value: QObject)] = []

    /// Creates an empty dictionary.
    public init() {}

    /// Sets `key`; like `qdict_put`, replacing a value keeps the key's original place.
    public mutating func put(_ key: String, _ value: QObject) {
        if let index = members.firstIndex(where: { $0.key == key }) {
            members[index].value = value
        } else {
            members.append((key, value))
        }
    }

    /// The value for `key`, if any.
    public subscript(key: String) -> QObject? {
        members.first { $0.key == key }?.value
    }

    /// Members in the order QEMU's `qdict_first`/`qdict_next` visit them.
    public var iterationOrder: [(key: String, value: QObject)] {
        members.enumerated()
            .sorted { lhs, rhs in
                let (lb, rb) = (Self.bucket(lhs.element.key), Self.bucket(rhs.element.key))
                return lb != rb ? lb < rb : lhs.offset > rhs.offset
            }
            .map(\.element)
    }

    /// QEMU's `QDICT_BUCKET_MAX`.
    static let bucketCount: UInt32 = 512

    /// `tdb_hash(key) % QDICT_BUCKET_MAX` (qobject/qdict.c); unsigned 32-bit arithmetic wraps.
    static func bucket(_ key: String) -> UInt32 {
        let bytes = Array(key.utf8)
        var value = 0x238F_13AF &* UInt32(truncatingIfNeeded: bytes.count)
        for (i, byte) in bytes.enumerated() {
            value = value &+ (UInt32(byte) << UInt32((i * 5) % 24))
        }
        return (1_103_515_243 &* value &+ 12345) % bucketCount
    }

    /// Equal when members and their insertion order match.
    public static func == (lhs: QDict, rhs: QDict) -> Bool {
        lhs.members.count == rhs.members.count
            && zip(lhs.members, rhs.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}
