import Foundation
import Hummingbird
import Instances

/// The web UI: server-side rendered pages; form posts call the same service methods as the API
/// and redirect back with a notice (post/redirect/get).
struct UIRoutes {
    let service: ConsoleService

    func add(to router: Router<ConsoleContext>) {
        router.get("static/:file") { _, context in
            guard let response = Assets.response(try context.parameters.require("file")) else {
                throw HTTPError(.notFound)
            }
            return response
        }
        router.get("login") { request, _ in
            if let token = request.uri.queryParameters["token"] {
                guard AccessToken.matches(token, service.token) else {
                    return page("Log in", nil, LoginPage.render(error: "Wrong token."))
                }
                return login()
            }
            return page("Log in", nil, LoginPage.render(error: nil))
        }
        router.post("login") { request, _ in
            let form = FormData.parse(String(buffer: try await request.body.collect(upTo: AuthMiddleware.maxFormBytes)))
            guard let token = form["token"], AccessToken.matches(token, service.token) else {
                return page("Log in", nil, LoginPage.render(error: "Wrong token."))
            }
            return login()
        }
        router.post("logout") { _, context in
            if let session = context.session { service.sessions.close(session.id) }
            var response = HTML.redirect("/login")
            response.setCookie(
                Cookie(
                    name: SessionStore.cookieName, value: "", maxAge: 0, path: "/", httpOnly: true, sameSite: .strict))
            return response
        }
        router.get("/") { _, _ in HTML.redirect("/instances") }
        router.get("instances") { _, context in
            let (list, images) = try await service.call { m in
                (try m.list().map { try m.show($0.name) }, try m.library.list().filter { $0.kind == .image })
            }
            return page(
                "Instances", context, InstancesPage.render(list, images: images, session: context.session),
                active: "instances")
        }
        router.post("instances") { _, context in
            let form = context.form
            let name = form["name"] ?? ""
            return await act(context, success: HTML.path("instances", name), failure: "/instances") { m in
                let image = form["image"].flatMap { $0.isEmpty ? nil : $0 }
                let size = try image == nil ? parseSize(form["size"], field: "size") : nil
                let audit = AuditMode(rawValue: form["audit"] ?? "") ?? .changes
                let source: DriveSource = size.map { .empty(size: $0) } ?? .image(image ?? "")
                let request = CreateInstanceRequest(
                    name: name, source: source,
                    quota: try parseSize(form["quota"], field: "quota"), audit: audit)
                let made = try m.create(request)
                return (.info, "Instance '\(made.name)' created.")
            }
        }
        router.get("instances/:instance") { request, context in
            let name = try parameter("instance", context)
            let tab = request.uri.queryParameters["tab"].map(String.init) ?? "overview"
            let (details, audit) = try await service.call { m in
                (try m.show(name), tab == "audit" ? try m.auditLog(instance: name) : [])
            }
            let job = request.uri.queryParameters["job"].map(String.init)
            return page(
                name, context, InstancePage.render(details, tab: tab, audit: audit, job: job, session: context.session))
        }
        for action in ["start", "stop", "delete"] {
            router.post(RouterPath("instances/:instance/\(action)")) { _, context in
                let name = try parameter("instance", context)
                let back = HTML.path("instances", name)
                return await act(context, success: action == "delete" ? "/instances" : back, failure: back) { m in
                    switch action {
                    case "start": _ = try m.start(name)
                    case "stop": _ = try m.stop(name, timeout: 10)
                    default: try m.delete(name)
                    }
                    return (
                        .info,
                        "Instance '\(name)': \(action == "stop" ? "stopped" : action == "start" ? "started" : "deleted")."
                    )
                }
            }
        }
        SnapshotPageRoutes(service: service).add(to: router)
    }

    private func login() -> Response {
        let session = service.sessions.open()
        var response = HTML.redirect("/instances")
        response.setCookie(service.sessions.cookie(for: session))
        return response
    }

    /// Runs a UI action; its message (or the error's one-line description) becomes a notice.
    func act(
        _ context: ConsoleContext, success: String, failure: String,
        _ body: @escaping @Sendable (InstanceManager) throws -> (Notice.Level, String)
    ) async -> Response {
        guard let session = context.session else { return HTML.redirect("/login") }
        do {
            let (level, message) = try await service.call(body)
            service.sessions.notify(session.id, level, message)
            return HTML.redirect(success)
        } catch {
            service.sessions.notify(session.id, .error, Problem(any: error).detail)
            return HTML.redirect(failure)
        }
    }

    func page(_ title: String, _ context: ConsoleContext?, _ body: String, active: String = "instances") -> Response {
        let session = context?.session
        let notices = session.map { service.sessions.takeNotices($0.id) } ?? []
        return HTML.page(title: title, session: session, notices: notices, active: active, body)
    }
}

/// An optional size field of a form ("" is none).
func parseSize(_ text: String?, field: String) throws -> UInt64? {
    guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
    guard let bytes = SizeValue.parse(text) else {
        throw InstancesError.invalidArgument("invalid \(field) '\(text)' (bytes, or a number with K, M, G or T)")
    }
    return bytes
}
