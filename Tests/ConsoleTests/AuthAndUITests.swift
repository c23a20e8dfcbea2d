import Console
import Foundation
import HTTPTypes
import Hummingbird
import Instances
import Testing
import TestSupport

@Suite(.timeLimit(.minutes(15)))
struct AuthAndUITests {
    @Test func apiNeedsTheToken() async throws {
        let harness = try Harness()
        try await harness.test { client in
            try await client.createInstance("vm1")
            let before = try harness.snapshotOfState()
            let missing = try await client.call(.get, "/api/v1/instances", token: nil)
            expectProblem(missing, .unauthorized, "unauthorized")
            #expect(missing.headers[.wwwAuthenticate] == "Bearer realm=\"vmimg\"")
            expectProblem(
                try await client.call(.get, "/api/v1/instances", token: "wrong"), .unauthorized, "unauthorized")
            expectProblem(
                try await client.call(.delete, "/api/v1/instances/vm1", token: String(Harness.token.dropLast()) + "0"),
                .unauthorized, "unauthorized")
            expectProblem(
                try await client.call(.post, "/api/v1/instances", json: #"{"name":"x","size":1}"#, token: nil),
                .unauthorized,
                "unauthorized")
            expectProblem(
                try await client.call(.post, "/api/v1/images?name=x", body: [1, 2, 3], token: nil), .unauthorized,
                "unauthorized")
            #expect(try harness.snapshotOfState() == before)
            #expect(harness.uploadsLeft.isEmpty)
        }
    }

    @Test func tokenFileIsPrivateAndStable() throws {
        let scratch = try Scratch()
        let home = VMImgHome(root: scratch.path("home"))
        let token = try AccessToken.loadOrCreate(in: home)
        #expect(token.count == 64)
        let mode =
            try FileManager.default.attributesOfItem(atPath: AccessToken.path(in: home))[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try AccessToken.loadOrCreate(in: home) == token)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: AccessToken.path(in: home))
        #expect(throws: InstancesError.self) { try AccessToken.loadOrCreate(in: home) }
    }

    @Test func sessionCookieAndCSRF() async throws {
        let harness = try Harness()
        try await harness.test { client in
            let page = try await client.call(.get, "/instances", token: nil)
            #expect(page.status == .seeOther)
            #expect(page.headers[.location] == "/login")
            #expect(try await client.call(.get, "/login?token=nope", token: nil).text.contains("Wrong token."))

            let login = try await client.call(.get, "/login?token=\(Harness.token)", token: nil)
            #expect(login.status == .seeOther)
            let setCookie = try #require(login.headers[.setCookie])
            #expect(setCookie.contains("HttpOnly"))
            #expect(setCookie.contains("SameSite=Strict"))
            let cookie = try #require(setCookie.split(separator: ";").first.map(String.init))
            let withCookie: HTTPFields = [.cookie: cookie]

            let list = try await client.call(.get, "/instances", headers: withCookie, token: nil)
            #expect(list.status == .ok)
            #expect(list.contentType.hasPrefix("text/html"))
            #expect(list.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true)
            let csrf = try #require(Self.csrf(in: list.text))

            // The API accepts the cookie for reads, and for writes only with the CSRF header.
            #expect(try await client.call(.get, "/api/v1/instances", headers: withCookie, token: nil).status == .ok)
            expectProblem(
                try await client.call(
                    .post, "/api/v1/instances", json: #"{"name":"x","size":"1M"}"#, headers: withCookie, token: nil),
                .forbidden, "csrf")
            var withHeader = withCookie
            withHeader[HTTPField.Name("X-CSRF-Token")!] = csrf
            let made = try await client.call(
                .post, "/api/v1/instances", json: #"{"name":"x","size":"1M"}"#, headers: withHeader, token: nil)
            #expect(made.status == .created)

            // UI form posts need _csrf; a foreign Origin is refused even with it.
            var form = withCookie
            form[.contentType] = "application/x-www-form-urlencoded"
            let before = try harness.snapshotOfState()
            let forged = try await client.call(.post, "/instances", json: "name=vm9&size=1M", headers: form, token: nil)
            #expect(forged.status == .forbidden)
            var foreign = form
            foreign[HTTPField.Name("Origin")!] = "http://evil.example"
            let crossSite = try await client.call(
                .post, "/instances", json: "name=vm9&size=1M&_csrf=\(csrf)", headers: foreign, token: nil)
            #expect(crossSite.status == .forbidden)
            #expect(try harness.snapshotOfState() == before)

            let posted = try await client.call(
                .post, "/instances", json: "name=vm9&size=1M&audit=changes&_csrf=\(csrf)", headers: form, token: nil)
            #expect(posted.status == .seeOther)
            #expect(posted.headers[.location] == "/instances/vm9")
            let shown = try await client.call(.get, "/instances/vm9", headers: withCookie, token: nil)
            #expect(shown.text.contains("Instance &#39;vm9&#39; created."))
        }
    }

    /// The seed through the UI's form posts (the browser test plays it in Chromium).
    @Test func seedFlowThroughForms() async throws {
        let harness = try Harness()
        try await harness.test { client in
            let login = try await client.call(.get, "/login?token=\(Harness.token)", token: nil)
            let cookie = try #require(login.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            var form: HTTPFields = [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"]
            let csrf = try #require(
                Self.csrf(in: try await client.call(.get, "/instances", headers: form, token: nil).text))
            func post(_ path: String, _ body: String) async throws -> Reply {
                try await client.call(.post, path, json: body + "&_csrf=\(csrf)", headers: form, token: nil)
            }
            func get(_ path: String) async throws -> String {
                try await client.call(.get, path, headers: form, token: nil).text
            }
            _ = try await post("/instances", "name=vm1&size=64M")
            let drive = try await client.drive("vm1")
            try Qemu.io(drive, commands: ["write -P 0xaa 0 64k"])
            _ = try await post("/instances/vm1/snapshots", "name=test+snapshot")
            try Qemu.io(drive, commands: ["write -P 0xbb 0 64k"])
            _ = try await post("/instances/vm1/snapshots", "name=later")
            let tab = try await get("/instances/vm1?tab=snapshots")
            #expect(tab.contains("Snapshot &#39;later&#39; created."))
            #expect(tab.contains("unique 64.0 KiB · shared 0 B"))

            let rebuild = try await get("/instances/vm1/rebuild?source=my-images&image=vm1%40test+snapshot")
            #expect(rebuild.contains("id=\"rebuild-warning\""))
            #expect(rebuild.contains("<ul id=\"doomed\"><li>later</li></ul>"))
            #expect(rebuild.contains("The instance must be powered off"))

            let unconfirmed = try await post("/instances/vm1/rebuild", "image=vm1%40test+snapshot")
            #expect(unconfirmed.status == .seeOther)
            try Qemu.io(drive, commands: ["read -P 0xbb 0 64k"])
            let done = try await post("/instances/vm1/rebuild", "image=vm1%40test+snapshot&confirm=true")
            #expect(done.headers[.location] == "/instances/vm1?tab=snapshots")
            let after = try await get("/instances/vm1?tab=snapshots")
            #expect(
                after.contains(
                    "Instance &#39;vm1&#39; rebuilt from snapshot &#39;test snapshot&#39;. Deleted snapshots: &#39;later&#39;."
                ))
            #expect(!after.contains("data-snapshot=\"later\""))
            try Qemu.io(drive, commands: ["read -P 0xaa 0 64k"])

            let images = try await get("/images")
            #expect(images.contains("vm1@test snapshot"))
            #expect(try await client.call(.get, "/static/console.js", token: nil).status == .ok)
            #expect(try await client.call(.get, "/static/nope.js", token: nil).status == .notFound)
            form[.cookie] = "vmimg_session=forged"
            #expect(try await client.call(.get, "/instances", headers: form, token: nil).status == .seeOther)
        }
    }

    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: "name=\"csrf-token\" content=\"") else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }
}
