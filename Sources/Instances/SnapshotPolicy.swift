import Foundation

/// A drive's snapshot schedule: one snapshot every `every` seconds, and grandfather-father-son
/// retention — the newest snapshot of each of the last `keepHourly` hours, `keepDaily` days and
/// `keepWeekly` ISO weeks (UTC) is kept; a snapshot any rule keeps stays.
public struct SnapshotPolicy: Sendable, Equatable, Codable {
    public var every: Int64
    public var keepHourly: Int
    public var keepDaily: Int
    public var keepWeekly: Int

    /// - Throws: `InstancesError.invalidArgument` unless `every` ≥ 60 s and some rule keeps ≥ 1.
    public init(every: Int64, keepHourly: Int = 0, keepDaily: Int = 0, keepWeekly: Int = 0) throws {
        guard every >= 60 else { throw InstancesError.invalidArgument("--every must be at least 1m") }
        guard keepHourly >= 0, keepDaily >= 0, keepWeekly >= 0, keepHourly + keepDaily + keepWeekly > 0 else {
            throw InstancesError.invalidArgument(
                "a policy needs --keep-hourly, --keep-daily or --keep-weekly of at least 1")
        }
        self.every = every
        self.keepHourly = keepHourly
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
    }

    /// Parses `90s`, `30m`, `1h`, `2d`, `1w` (a bare number is seconds).
    /// - Throws: `InstancesError.invalidArgument` for anything else.
    public static func parseInterval(_ text: String) throws -> Int64 {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        var digits = text
        var unit: Int64 = 1
        if let last = text.last, let u = units[last] {
            unit = u
            digits = String(text.dropLast())
        }
        guard let n = Int64(digits), n > 0, n <= Int64.max / unit else {
            throw InstancesError.invalidArgument("invalid interval '\(text)' (use e.g. 30m, 1h, 1d, 1w)")
        }
        return n * unit
    }
}

/// One snapshot of a drive as the planner sees it.
public struct PolicySnapshot: Sendable, Equatable {
    public var name: String
    public var takenAt: Date
    public var pinned: Bool
    /// Images or instances made from it exist (R19): never expired.
    public var hasDependants: Bool

    public init(name: String, takenAt: Date, pinned: Bool = false, hasDependants: Bool = false) {
        self.name = name
        self.takenAt = takenAt
        self.pinned = pinned
        self.hasDependants = hasDependants
    }

    /// Made by a policy (its name is `auto-…`): only these are ever expired.
    public var isScheduled: Bool { SnapshotPolicyPlanner.slotTime(of: name) != nil }
}

/// What one `tick` does to one drive.
public struct PolicyPlan: Sendable, Equatable {
    /// The scheduled snapshot to create, if one is due and fits.
    public var create: String?
    /// Scheduled snapshots to delete, oldest first.
    public var expire: [String] = []
    /// Why a due snapshot is not created.
    public var skipped: String?

    public init(create: String? = nil, expire: [String] = [], skipped: String? = nil) {
        self.create = create
        self.expire = expire
        self.skipped = skipped
    }
}

/// The pure part of snapshot policies: due times, names and retention, from an injected time.
public enum SnapshotPolicyPlanner {
    public static let prefix = "auto-"

    /// `auto-20250102T030000Z`: the slot start, so two ticks in one slot choose the same name.
    public static func name(slot: Date) -> String {
        prefix + formatter().string(from: slot)
    }

    /// The slot time encoded in a scheduled snapshot's name; nil for other snapshots.
    public static func slotTime(of name: String) -> Date? {
        guard name.hasPrefix(prefix) else { return nil }
        return formatter().date(from: String(name.dropFirst(prefix.count)))
    }

    static func formatter() -> DateFormatter {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f
    }

    /// Plans one tick at `now`: create the current slot's snapshot unless one exists for it, expire
    /// the scheduled snapshots no rule keeps (never pinned ones or ones with dependants), and keep
    /// the drive at `maxSnapshots` by expiring the oldest unprotected scheduled snapshots — or, if
    /// none is left, skipping the new one.
    public static func plan(policy: SnapshotPolicy, snapshots: [PolicySnapshot], maxSnapshots: Int, now: Date)
        -> PolicyPlan
    {
        var plan = PolicyPlan()
        let seconds = Int64(now.timeIntervalSince1970.rounded(.down))
        let slot = Date(timeIntervalSince1970: TimeInterval(seconds - seconds.mod(policy.every)))
        let scheduled = snapshots.compactMap { s in slotTime(of: s.name).map { (s, $0) } }
        let due = !scheduled.contains { $0.1 >= slot }
        let newName = name(slot: slot)
        var candidates = scheduled.map { (name: $0.0.name, at: $0.1) }
        if due { candidates.append((newName, slot)) }
        candidates.sort { $0.at > $1.at }  // newest first
        var kept: Set<String> = []
        for (count, bucketSize, offset) in [
            (policy.keepHourly, Int64(3600), Int64(0)), (policy.keepDaily, 86400, 0),
            // ISO weeks start on Monday; 1970-01-01 was a Thursday.
            (policy.keepWeekly, 604_800, 3 * 86400),
        ] where count > 0 {
            var last: Int64?
            var n = 0
            for c in candidates where n < count {
                let t = Int64(c.at.timeIntervalSince1970.rounded(.down)) + offset
                let bucket = (t - t.mod(bucketSize)) / bucketSize
                if bucket != last {
                    kept.insert(c.name)
                    last = bucket
                    n += 1
                }
            }
        }
        let protected = Set(snapshots.filter { $0.pinned || $0.hasDependants }.map(\.name))
        let oldestFirst = scheduled.sorted { $0.1 < $1.1 }.map(\.0.name)
        plan.expire = oldestFirst.filter { !kept.contains($0) && !protected.contains($0) }
        guard due else { return plan }
        var count = snapshots.count - plan.expire.count + 1
        for name in oldestFirst where count > maxSnapshots && !protected.contains(name) && !plan.expire.contains(name) {
            plan.expire.append(name)
            count -= 1
        }
        if count > maxSnapshots {
            plan.skipped =
                "maximum of \(maxSnapshots) snapshots reached; the others are pinned, depended on or not scheduled"
        } else {
            plan.create = newName
        }
        return plan
    }
}

extension Int64 {
    /// Floored modulo (times before 1970 still land in the right bucket).
    func mod(_ m: Int64) -> Int64 {
        let r = self % m
        return r < 0 ? r + m : r
    }
}
