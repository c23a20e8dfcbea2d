#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One environment variable, read with getenv(3): Foundation's `ProcessInfo.environment` copies
/// the whole environment into a dictionary, which costs more than a short command's start-up.
public enum ProcessEnvironment {
    /// The value of `name`, or nil when it is unset (or not valid UTF-8).
    public static func value(_ name: String) -> String? {
        guard let raw = unsafe getenv(name) else { return nil }
        return unsafe String(validatingCString: raw)
    }
}
