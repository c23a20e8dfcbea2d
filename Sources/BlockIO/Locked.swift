#if canImport(Glibc)
    import Glibc
#endif

/// A value behind a `pthread_mutex_t`, with `Synchronization.Mutex`'s `withLock` shape.
///
/// Why not `Mutex`: on Linux it locks with raw futex calls, which ThreadSanitizer cannot see, so
/// every access inside `withLock` was reported as a race (issue 6: the engine's suites run under
/// TSan). TSan intercepts `pthread_mutex_lock`/`unlock` and so sees the happens-before edges. An
/// uncontended lock and unlock costs about the same as Mutex's (no system call either way).
///
/// `@unchecked Sendable` as Mutex is: the value is only reached under the lock. The mutex lives in
/// its own allocation because a pthread mutex must not move and a stored property's address is
/// not stable in Swift.
@safe public final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        unsafe mutex.initialize(to: pthread_mutex_t())
        _ = unsafe pthread_mutex_init(mutex, nil)
        unsafe self.mutex = mutex
        self.value = value
    }

    deinit {
        _ = unsafe pthread_mutex_destroy(mutex)
        unsafe mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    public func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        _ = unsafe pthread_mutex_lock(mutex)
        defer { _ = unsafe pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
