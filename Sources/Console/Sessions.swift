import BlockIO
import Foundation
import Hummingbird

/// A UI session, opened by presenting the access token once (`/login`). The cookie carries only a
/// random session id (HttpOnly, SameSite=Strict); ``csrf`` goes into every page's forms and into
/// the `X-CSRF-Token` header of the page's own fetches.
struct Session: Sendable {
    var id: String
    var csrf: String
    var created: Date
    /// One-shot messages shown on the next page (post/redirect/get).
    var notices: [Notice] = []
}

/// A message for the next page.
struct Notice: Sendable, Equatable {
    enum Level: String, Sendable { case info, warning, error }
    var level: Level
    var text: String
}

/// Sessions in memory: a restart asks for the token again.
final class SessionStore: Sendable {
    static let cookieName = "vmimg_session"
    private let sessions = Locked<[String: Session]>([:])
    /// Sessions end after this long.
    let lifetime: TimeInterval = 12 * 3600

    func open() -> Session {
        let session = Session(id: AccessToken.random(), csrf: AccessToken.random(), created: Date())
        sessions.withLock { all in
            all = all.filter { Date().timeIntervalSince($0.value.created) < lifetime }
            all[session.id] = session
        }
        return session
    }

    func session(_ id: some StringProtocol) -> Session? {
        sessions.withLock { all in
            // Look up by constant-time comparison against each id: the id is the credential.
            guard let match = all.keys.first(where: { AccessToken.matches(id, $0) }), let session = all[match],
                Date().timeIntervalSince(session.created) < lifetime
            else { return nil }
            return session
        }
    }

    func close(_ id: String) { sessions.withLock { $0[id] = nil } }

    func notify(_ id: String, _ level: Notice.Level, _ text: String) {
        sessions.withLock { $0[id]?.notices.append(Notice(level: level, text: text)) }
    }

    /// The pending notices, cleared.
    func takeNotices(_ id: String) -> [Notice] {
        sessions.withLock { all in
            let notices = all[id]?.notices ?? []
            all[id]?.notices = []
            return notices
        }
    }

    func cookie(for session: Session) -> Cookie {
        Cookie(
            name: Self.cookieName, value: session.id, maxAge: Int(lifetime), path: "/", httpOnly: true,
            sameSite: .strict)
    }
}

/// The request context: who is calling and, for UI form posts, the decoded form.
public struct ConsoleContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The UI session, when the request came with a valid session cookie.
    var session: Session?
    /// The `application/x-www-form-urlencoded` fields of a UI post (checked for CSRF already).
    var form: [String: String] = [:]

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// JSON bodies are small; image uploads stream and have their own cap.
    public var maxUploadSize: Int { 1 << 20 }

    public var requestDecoder: JSONDecoder { JSONCoding.decoder }
    public var responseEncoder: JSONEncoder { JSONCoding.encoder }
}
