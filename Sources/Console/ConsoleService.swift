import Foundation
import Hummingbird
import Instances
import NIOPosix

/// What the console serves from: the instance service (the same one the `instance` and `images`
/// commands use), the jobs, the sessions and the access token.
public final class ConsoleService: Sendable {
    /// The service layer; every rule lives there.
    public let manager: InstanceManager
    /// Background jobs.
    public let jobs = JobRegistry()
    let sessions = SessionStore()
    let token: String
    /// Largest image upload accepted, in bytes.
    public let maxUploadBytes: Int64

    /// Service calls block (file I/O, qemu-img, a home-wide flock, a 30 s QEMU stop): they run
    /// here, never on an event loop or the cooperative pool.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
        return pool
    }()

    /// - Parameters:
    ///   - manager: the opened instance service.
    ///   - token: the access token (``AccessToken/loadOrCreate(in:)``).
    ///   - maxUploadBytes: the upload cap.
    public init(manager: InstanceManager, token: String, maxUploadBytes: Int64 = 64 << 30) {
        self.manager = manager
        self.token = token
        self.maxUploadBytes = maxUploadBytes
        try? FileManager.default.removeItem(atPath: uploadsDirectory)
    }

    /// Where uploads are staged before `images import` checks them (inside the home).
    var uploadsDirectory: String { manager.home.path("uploads") }

    /// Runs one blocking service call on the pool.
    func call<T: Sendable>(_ body: @escaping @Sendable (InstanceManager) throws -> T) async throws -> T {
        let manager = manager
        return try await Self.pool.runIfActive { try body(manager) }
    }
}
