import NIOCore
import NIOPosix

/// Where blocking engine calls run: a thread pool in the server, inline in `EmbeddedChannel` tests.
public struct BlockingExecutor: Sendable {
    enum Mode: Sendable {
        case pool(NIOThreadPool)
        case inline
    }

    let mode: Mode

    /// Runs work on `pool` (default: `NIOThreadPool.singleton`).
    public static func threadPool(_ pool: NIOThreadPool = .singleton) -> Self { Self(mode: .pool(pool)) }

    /// Runs work on the calling thread; for tests on `EmbeddedChannel` only.
    public static let inline = Self(mode: .inline)

    /// Runs `body` and completes the returned future on `eventLoop`.
    func run<T: Sendable>(on eventLoop: any EventLoop, _ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T>
    {
        switch mode {
        case .pool(let pool): pool.runIfActive(eventLoop: eventLoop, body)
        case .inline: eventLoop.makeCompletedFuture { try body() }
        }
    }
}
