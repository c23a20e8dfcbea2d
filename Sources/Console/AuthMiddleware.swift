import Foundation
import Hummingbird

/// Every request but `/login` and `/static/*` needs the access token, either as
/// `Authorization: Bearer TOKEN` (API clients) or through a UI session cookie. Cookie-borne
/// requests that change something also need the session's CSRF token (`_csrf` form field or
/// `X-CSRF-Token` header) and, when the browser sends one, an `Origin` naming this server.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = ConsoleContext
    let service: ConsoleService
    /// Form posts are small: snapshot names, confirmations.
    static let maxFormBytes = 64 << 10

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var context = context
        let path = request.uri.path
        let changes = ![.get, .head, .options].contains(request.method)
        if changes, !Self.sameOrigin(request) {
            if path.hasPrefix("/api/") { throw Problem.csrf }
            throw HTTPError(.forbidden, message: "cross-origin request refused")
        }
        if path == "/login" || path.hasPrefix("/static/") { return try await next(request, context) }
        if let cookie = request.cookies[SessionStore.cookieName] {
            context.session = service.sessions.session(cookie.value)
        }
        if path.hasPrefix("/api/") {
            if let authorization = request.headers[.authorization] {
                guard authorization.hasPrefix("Bearer "), AccessToken.matches(authorization.dropFirst(7), service.token)
                else { throw Problem.unauthorized }
                context.session = nil
                return try await next(request, context)
            }
            guard let session = context.session else { throw Problem.unauthorized }
            if changes {
                guard let given = Self.csrfHeader(request), AccessToken.matches(given, session.csrf) else {
                    throw Problem.csrf
                }
            }
            return try await next(request, context)
        }
        guard let session = context.session else {
            if changes { throw HTTPError(.unauthorized, message: "log in first") }
            return Response(status: .seeOther, headers: [.location: "/login"])
        }
        if changes {
            let buffer = try await request.body.collect(upTo: Self.maxFormBytes)
            let form = FormData.parse(String(buffer: buffer))
            guard let given = form["_csrf"], AccessToken.matches(given, session.csrf) else {
                throw HTTPError(.forbidden, message: "missing or wrong CSRF token; reload the page")
            }
            context.form = form
        }
        return try await next(request, context)
    }

    static func csrfHeader(_ request: Request) -> String? {
        request.headers.first { $0.name.canonicalName == "x-csrf-token" }?.value
    }

    /// No `Origin` (curl, tests) passes; a browser's must be this host.
    static func sameOrigin(_ request: Request) -> Bool {
        guard let origin = request.headers.first(where: { $0.name.canonicalName == "origin" })?.value else {
            return true
        }
        guard let host = request.head.authority else { return false }
        return origin == "http://" + host || origin == "https://" + host
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
enum FormData {
    static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
            }
            guard let key = parts.first else { continue }
            fields[decode(key)] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}
