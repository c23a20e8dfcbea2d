import BlockIO
import Foundation
import ImageKit
import NBDProtocol
import NIOCore
import NIOPosix
import QCow2
import QCow2Format

/// An NBD server (fixed newstyle, structured replies, `base:allocation`) exporting qcow2 and raw
/// images through the vmimg engine. The event loops only frame bytes; every engine call runs on
/// `NIOThreadPool`.
///
/// ```swift
/// let server = try NBDServer(configuration: .init(exports: [.init(name: "disk", path: "disk.qcow2")]))
/// let address = try await server.start()
/// // … qemu-img convert -f raw nbd://127.0.0.1:PORT/disk out.raw
/// try await server.stop()
/// ```
public final class NBDServer: Sendable {
    /// One image to export.
    public struct Export: Sendable, Equatable {
        /// The export name clients ask for (`nbd://host:port/NAME`).
        public var name: String
        /// The image file.
        public var path: String
        /// Whether writes are refused.
        public var readOnly: Bool
        /// `-f`: the format; nil probes (qcow2 magic, else raw).
        public var format: String?
        /// Serve this internal snapshot (name or id) of a qcow2 image instead of its active layer; read-only.
        public var snapshot: String?
        /// qcow2 metadata cache sizes and clean interval (QEMU's defaults when unset).
        public var cache = QCow2CacheOptions()

        /// Creates an export.
        public init(name: String, path: String, readOnly: Bool = false, format: String? = nil, snapshot: String? = nil)
        {
            self.name = name
            self.path = path
            self.readOnly = readOnly || snapshot != nil
            self.format = format
            self.snapshot = snapshot
        }

        /// Parses the CLI's `--export NAME=FILE`.
        /// - Throws: ``NBDServerError/usage(_:)`` without `=`, or with an empty or overlong name.
        public init(parsing argument: String, readOnly: Bool = false) throws {
            guard let equals = argument.firstIndex(of: "=") else {
                throw NBDServerError.usage("--export takes NAME=FILE, got '\(argument)'")
            }
            let name = String(argument[..<equals])
            let path = String(argument[argument.index(after: equals)...])
            guard !path.isEmpty, name.utf8.count <= NBDLimits.maxStringSize else {
                throw NBDServerError.usage("--export takes NAME=FILE, got '\(argument)'")
            }
            self.init(name: name, path: path, readOnly: readOnly)
        }
    }

    /// Where and what to serve, and the limits.
    public struct Configuration: Sendable {
        /// The exports; names must be unique.
        public var exports: [Export]
        /// TCP address to bind (default loopback).
        public var host: String
        /// TCP port (10809 is NBD's; 0 picks a free one).
        public var port: Int
        /// Serve on this Unix socket instead of TCP (created mode 0600).
        public var socketPath: String?
        /// Allow a non-loopback TCP address. TLS is not implemented, so such a server is plaintext
        /// and unauthenticated: anyone who can reach it reads (and may write) the images.
        public var allowNonLoopback: Bool
        /// Most simultaneous connections; more are closed at accept (QEMU 7.2.14+: 100).
        public var maxClients: Int
        /// Time a connection has to reach `NBD_OPT_GO` (QEMU: 10 s, CVE-2024-7409).
        public var handshakeTimeout: Duration
        /// Requests in flight per connection before reading pauses.
        public var maxInFlightRequests: Int

        /// Creates a configuration: loopback, port 10809, 16 clients, 10 s handshake.
        public init(
            exports: [Export], host: String = "127.0.0.1", port: Int = 10809, socketPath: String? = nil,
            allowNonLoopback: Bool = false, maxClients: Int = 16, handshakeTimeout: Duration = .seconds(10),
            maxInFlightRequests: Int = 16
        ) {
            self.exports = exports
            self.host = host
            self.port = port
            self.socketPath = socketPath
            self.allowNonLoopback = allowNonLoopback
            self.maxClients = maxClients
            self.handshakeTimeout = handshakeTimeout
            self.maxInFlightRequests = maxInFlightRequests
        }
    }

    struct Running {
        var channel: (any Channel)?
        var registry: ExportRegistry?
        var clients: [ObjectIdentifier: any Channel] = [:]
        var stopped = false
    }

    /// The configuration the server was made with.
    public let configuration: Configuration
    let group: any EventLoopGroup
    let executor: BlockingExecutor
    let running = Locked(Running())

    /// Creates a server; nothing is opened or bound until ``start()``.
    /// - Throws: ``NBDServerError/usage(_:)`` for no exports, duplicate names, a non-loopback
    ///   address without `allowNonLoopback`, or a limit below 1.
    public init(configuration: Configuration) throws {
        guard !configuration.exports.isEmpty else { throw NBDServerError.usage("no exports given") }
        let names = configuration.exports.map(\.name)
        guard Set(names).count == names.count else { throw NBDServerError.usage("export names must be unique") }
        guard configuration.maxClients >= 1, configuration.maxInFlightRequests >= 1 else {
            throw NBDServerError.usage("limits must be at least 1")
        }
        if configuration.socketPath == nil, !configuration.allowNonLoopback, !Self.isLoopback(configuration.host) {
            throw NBDServerError.usage(
                "refusing to serve on \(configuration.host): NBD has no TLS here, so only loopback addresses "
                    + "or a Unix socket are allowed without --allow-remote")
        }
        self.configuration = configuration
        self.group = MultiThreadedEventLoopGroup.singleton
        self.executor = .threadPool(.singleton)
    }

    /// Whether `host` names a loopback address (127.0.0.0/8, ::1, localhost).
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// The bound address once started (the port is filled in when 0 was asked for).
    public var localAddress: SocketAddress? { running.withLock { $0.channel?.localAddress } }

    /// Opens and locks the exports, then binds.
    /// - Returns: the bound address.
    /// - Throws: `ImageError` for an image that cannot be opened, ``NBDServerError`` for a missing
    ///   snapshot or a second start, or the bind error.
    @discardableResult
    public func start() async throws -> SocketAddress {
        let registry = try await executor.run(on: group.next()) { [configuration] in
            try Self.openExports(configuration.exports)
        }.get()
        let limits = NBDConnectionHandler.Limits(
            handshakeTimeout: .nanoseconds(
                Int64(configuration.handshakeTimeout.components.seconds) * 1_000_000_000
                    + configuration.handshakeTimeout.components.attoseconds / 1_000_000_000),
            maxInFlightRequests: configuration.maxInFlightRequests)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.accept(channel, registry: registry, limits: limits) }
            }
        let channel: any Channel
        do {
            if let socketPath = configuration.socketPath {
                channel = try await bootstrap.bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true)
                    .get()
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: socketPath)
            } else {
                channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
            }
        } catch {
            registry.close()
            throw error
        }
        let alreadyStarted = running.withLock { state in
            if state.channel != nil || state.stopped { return true }
            state.channel = channel
            state.registry = registry
            return false
        }
        guard !alreadyStarted else {
            try? await channel.close()
            registry.close()
            throw NBDServerError.usage("server already started or stopped")
        }
        guard let address = channel.localAddress else { throw NBDServerError.usage("no local address") }
        return address
    }

    /// Starts, then waits until ``stop()`` (or task cancellation, which stops the server).
    public func run() async throws {
        try await start()
        try await withTaskCancellationHandler {
            let channel = running.withLock { $0.channel }
            try await channel?.closeFuture.get()
        } onCancel: {
            Task { try? await self.stop() }
        }
    }

    /// Closes the listener and every client, waits for them, then flushes and closes the exports.
    public func stop() async throws {
        let (channel, clients, registry) = running.withLock { state in
            state.stopped = true
            defer {
                state.channel = nil
                state.registry = nil
            }
            return (state.channel, Array(state.clients.values), state.registry)
        }
        try? await channel?.close()
        for client in clients {
            client.close(promise: nil)
            try? await client.closeFuture.get()
        }
        if let registry {
            try await executor.run(on: group.next()) { registry.close() }.get()
        }
        if let socketPath = configuration.socketPath { try? FileManager.default.removeItem(atPath: socketPath) }
    }

    /// Child channel setup: the client cap, then decoder, encoder and connection handler.
    func accept(_ channel: any Channel, registry: ExportRegistry, limits: NBDConnectionHandler.Limits) throws {
        let id = ObjectIdentifier(channel)
        let admitted = running.withLock { state in
            guard !state.stopped, state.clients.count < configuration.maxClients else { return false }
            state.clients[id] = channel
            return true
        }
        guard admitted else { throw NBDServerError.tooManyClients(limit: configuration.maxClients) }
        channel.closeFuture.whenComplete { [self] _ in
            _ = running.withLock { $0.clients.removeValue(forKey: id) }
        }
        let handler = NBDConnectionHandler(
            catalog: ConnectionCatalog(registry: registry), executor: executor, limits: limits)
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(NBDClientDecoder()), NBDServerEncoder(), handler,
        ])
    }

    /// Opens every export (blocking): image, chain, snapshot, lock.
    static func openExports(_ exports: [Export]) throws -> ExportRegistry {
        var opened: [OpenExport] = []
        do {
            for export in exports {
                let lock = try ExportLock.acquire(path: export.path, writable: !export.readOnly)
                // A snapshot of a file this server also exports writable is opened without locks
                // (our own write lock would refuse it): its clusters are immutable while it exists.
                let besideWriter = export.snapshot != nil && exports.contains { $0.path == export.path && !$0.readOnly }
                var options = OpenOptions(format: export.format, writable: !export.readOnly, forceShare: besideWriter)
                options.cache = export.cache
                let disk = try ImageOpener.open(export.path, options: options)
                var snapshot: SnapshotEntry?
                if let wanted = export.snapshot {
                    guard let image = disk as? QCow2Image,
                        let entry = image.snapshots.first(where: { $0.name == wanted || $0.id == wanted })
                    else { throw NBDServerError.snapshotNotFound(path: export.path, snapshot: wanted) }
                    snapshot = entry
                }
                let backend = NBDBackend(disk: disk, snapshot: snapshot, writable: !export.readOnly)
                opened.append(OpenExport(export: export, backend: backend, lock: lock))
            }
        } catch {
            ExportRegistry(exports: opened).close()
            throw error
        }
        return ExportRegistry(exports: opened)
    }
}

/// Server setup errors.
public enum NBDServerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Bad flags or configuration.
    case usage(String)
    /// The client cap was reached; the connection was closed at accept.
    case tooManyClients(limit: Int)
    /// `--snapshot` named no internal snapshot of the image.
    case snapshotNotFound(path: String, snapshot: String)

    /// One line.
    public var description: String {
        switch self {
        case .usage(let message): message
        case .tooManyClients(let limit): "too many clients (limit \(limit))"
        case .snapshotNotFound(let path, let snapshot): "\(path): no snapshot '\(snapshot)'"
        }
    }
}
