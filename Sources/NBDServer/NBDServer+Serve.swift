import NIOCore

extension NBDServer {
    /// `vmimg serve`: exports images until the task is cancelled. See `Formats/nbd.md` for the flags.
    /// - Parameters:
    ///   - exports: `--export NAME=FILE` values, already parsed (``Export/init(parsing:readOnly:)``).
    ///   - bind: `--bind ADDR` (default 127.0.0.1; other addresses need `allowNonLoopback`).
    ///   - port: `--port` (default 10809).
    ///   - socketPath: `--socket PATH`: a Unix socket instead of TCP.
    ///   - readOnly: `--read-only`: every export refuses writes.
    ///   - allowNonLoopback: `--allow-remote`: permit a non-loopback `bind` (plaintext, no TLS).
    ///   - onListening: called once bound, with the address (the CLI prints it).
    /// - Throws: ``NBDServerError``, `ImageError` from opening an image, or the bind error.
    public static func serve(
        exports: [Export], bind: String = "127.0.0.1", port: Int = 10809, socketPath: String? = nil,
        readOnly: Bool = false, allowNonLoopback: Bool = false,
        onListening: (@Sendable (SocketAddress) -> Void)? = nil
    ) async throws {
        let exports = exports.map { export in
            var export = export
            export.readOnly = export.readOnly || readOnly
            return export
        }
        let server = try NBDServer(
            configuration: Configuration(
                exports: exports, host: bind, port: port, socketPath: socketPath, allowNonLoopback: allowNonLoopback))
        let address = try await server.start()
        onListening?(address)
        try await withTaskCancellationHandler {
            let channel = server.running.withLock { $0.channel }
            try await channel?.closeFuture.get()
        } onCancel: {
            Task { try? await server.stop() }
        }
        try await server.stop()
    }
}
