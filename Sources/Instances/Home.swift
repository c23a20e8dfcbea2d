import Foundation

/// Where vmimg keeps its catalog and files: `--home DIR`, else `VMIMG_HOME`, else
/// `~/.local/share/vmimg`. Everything vmimg makes lives under this one directory.
public struct VMImgHome: Sendable, Equatable {
    public let root: String

    public init(root: String) {
        self.root = URL(fileURLWithPath: root).standardizedFileURL.path
    }

    /// Resolves the home from an explicit `--home`, the environment, or the default.
    public static func resolve(
        explicit: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    )
        -> VMImgHome
    {
        if let explicit, !explicit.isEmpty { return VMImgHome(root: explicit) }
        if let env = environment["VMIMG_HOME"], !env.isEmpty { return VMImgHome(root: env) }
        let base =
            environment["HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser
        return VMImgHome(root: base.appendingPathComponent(".local/share/vmimg").path)
    }

    public var catalogPath: String { path("catalog.sqlite") }
    public var imagesDirectory: String { path("images") }
    public var instancesDirectory: String { path("instances") }
    public var runDirectory: String { path("run") }
    var lockPath: String { path("lock") }

    /// `relative` under the root.
    public func path(_ relative: String) -> String { root + "/" + relative }

    func createDirectories() throws {
        for dir in [root, imagesDirectory, instancesDirectory, runDirectory] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
    }
}

/// A whole-home lock (flock). Exclusive for the length of one mutating operation, so two vmimg
/// processes never interleave multi-step operations and journal recovery never undoes an
/// operation another process still runs; shared for reads (list, show), which may run side by
/// side but never beside a mutation. A killed holder releases it with its descriptor.
final class HomeLock {
    private let handle: FileHandle
    private var held = true

    init(path: String, shared: Bool = false) throws {
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw InstancesError.io(path: path, message: "cannot open lock file")
        }
        self.handle = handle
        while flock(handle.fileDescriptor, shared ? LOCK_SH : LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw InstancesError.io(path: path, message: "flock failed (errno \(errno))")
            }
        }
    }

    /// Releases the lock now rather than when the last reference goes.
    func unlock() {
        guard held else { return }
        held = false
        _ = flock(handle.fileDescriptor, LOCK_UN)
        try? handle.close()
    }

    deinit { unlock() }
}
