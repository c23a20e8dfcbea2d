import Foundation

/// `-r rate_limit` of `convert` and `commit`: paces a writer to an average of `bytesPerSecond`
/// (qemu-img's write throttle on the output). The writer reports what it wrote; `account`
/// sleeps while the bytes so far are ahead of the rate, in short naps so a signal still stops
/// the command at once.
public final class WriteThrottle {
    let bytesPerSecond: Double
    private let start = ContinuousClock.now
    private var bytes: UInt64 = 0

    /// nil for no limit (`rate` absent or 0, as qemu-img).
    public init?(bytesPerSecond rate: Int64?) {
        guard let rate, rate > 0 else { return nil }
        bytesPerSecond = Double(rate)
    }

    /// Counts `count` written bytes and waits until they are within the rate.
    public func account(_ count: Int) throws {
        bytes += UInt64(max(0, count))
        let due = Double(bytes) / bytesPerSecond
        while true {
            try Cancellation.check()
            let seconds = start.duration(to: .now) / .seconds(1)
            guard seconds < due else { return }
            Thread.sleep(forTimeInterval: min(0.05, due - seconds))
        }
    }
}
