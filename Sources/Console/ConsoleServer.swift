import Foundation
import Hummingbird
import Instances

/// `vmimg console`: the web UI and the JSON API over one ``ConsoleService``.
public enum ConsoleServer {
    /// Routes: the API under `/api/v1`, the UI elsewhere; errors as problem+json (API) or a page.
    public static func router(service: ConsoleService) -> Router<ConsoleContext> {
        let router = Router(context: ConsoleContext.self)
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: AuthMiddleware(service: service))
        APIRoutes(service: service).add(to: router)
        UIRoutes(service: service).add(to: router)
        return router
    }

    /// The application, bound to `host:port`.
    public static func application(
        service: ConsoleService, host: String, port: Int,
        onRunning: @escaping @Sendable (String) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(service: service),
            configuration: .init(address: .hostname(host, port: port), serverName: "vmimg-console"),
            onServerRunning: { channel in
                await onRunning(
                    channel.localAddress.map { "\($0.ipAddress ?? host):\($0.port ?? port)" } ?? "\(host):\(port)")
            })
    }

    /// Whether `host` is a loopback address (the default; others need `--allow-remote`).
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
