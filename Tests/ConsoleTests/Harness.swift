import Console
import Foundation
import Hummingbird
import HummingbirdTesting
import Instances
import BlockIO
import Testing
import TestSupport

/// A console over a fresh home in a scratch directory, exercised in-process (HummingbirdTesting's
/// router mode: no socket).
final class Harness: Sendable {
    let scratch: Scratch
    let home: VMImgHome
    let service: ConsoleService
    static let token = String(repeating: "ab", count: 32)
    /// Every exchange, for the OpenAPI check.
    let exchanges = Locked<[Exchange]>([])

    init(maxUpload: Int64 = 16 << 20) throws {
        scratch = try Scratch(label: "console")
        home = VMImgHome(root: scratch.path("home"))
        service = ConsoleService(
            manager: try InstanceManager(home: home), token: Self.token, maxUploadBytes: maxUpload)
    }

    var app: some ApplicationProtocol { Application(router: ConsoleServer.router(service: service)) }

    /// Runs `body` with a client.
    func test<T: Sendable>(_ body: @Sendable (Client) async throws -> T) async throws -> T {
        try await app.test(.router) { client in try await body(Client(client: client, harness: self)) }
    }

    /// The catalog and drive files, to show a refused request changed nothing.
    func snapshotOfState() throws -> String {
        var lines: [String] = []
        for dir in [home.imagesDirectory, home.instancesDirectory] {
            let walker = FileManager.default.enumerator(atPath: dir)
            while let relative = walker?.nextObject() as? String {
                let path = dir + "/" + relative
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
                    continue
                }
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                lines.append("\(relative) \(data.count) \(fnv1a(data))")
            }
        }
        let m = service.manager
        lines += try m.list().map { "instance \($0.name) \($0.snapshotCount)" }
        lines += try m.library.list().map { "image \($0.name)" }
        for instance in try m.list() {
            lines += try m.listSnapshots(instance: instance.name).map {
                "snap \(instance.name) \($0.name) \($0.pinned)"
            }
        }
        return lines.sorted().joined(separator: "\n")
    }

    var uploadsLeft: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: home.path("uploads"))) ?? []
    }
}

struct Exchange: Codable, Sendable {
    var method: String
    var path: String
    var status: Int
    var contentType: String?
    var body: String
}

/// A decoded response.
struct Reply: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
    var array: [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]] ?? []
    }
    var contentType: String { headers[.contentType] ?? "" }
    var isProblem: Bool { contentType == "application/problem+json" }
    var detail: String { json["detail"] as? String ?? "" }
    var code: String { json["code"] as? String ?? "" }
}

/// Test client: the bearer token unless told otherwise; records API exchanges.
struct Client: Sendable {
    let client: any TestClientProtocol
    let harness: Harness

    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ uri: String, json: String? = nil, body: [UInt8]? = nil,
        headers extra: HTTPFields = [:], token: String? = Harness.token
    ) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        if body != nil { headers[.contentType] = "application/octet-stream" }
        let buffer = json.map { ByteBuffer(string: $0) } ?? body.map { ByteBuffer(bytes: $0) }
        let response = try await client.execute(uri: uri, method: method, headers: headers, body: buffer)
        let reply = Reply(status: response.status, headers: response.headers, text: String(buffer: response.body))
        if uri.hasPrefix("/api/") {
            harness.exchanges.withLock {
                $0.append(
                    Exchange(
                        method: method.rawValue, path: uri, status: reply.status.code,
                        contentType: reply.headers[.contentType], body: reply.text))
            }
        }
        return reply
    }

    /// Creates an instance with an empty 64 MiB drive.
    @discardableResult
    func createInstance(_ name: String, maxSnapshots: Int = 5) async throws -> Reply {
        let reply = try await call(
            .post, "/api/v1/instances",
            json: #"{"name":"\#(name)","size":"64M","maxSnapshots":\#(maxSnapshots),"audit":"changes"}"#)
        #expect(reply.status == .created, "\(reply.text)")
        return reply
    }

    @discardableResult
    func snapshot(_ instance: String, _ name: String) async throws -> Reply {
        let reply = try await call(
            .post, "/api/v1/instances/\(instance)/snapshots", json: #"{"name":"\#(name)"}"#)
        #expect(reply.status == .created, "\(reply.text)")
        return reply
    }

    func drive(_ instance: String) async throws -> String {
        let reply = try await call(.get, "/api/v1/instances/\(instance)")
        return try #require((reply.json["instance"] as? [String: Any])?["drivePath"] as? String)
    }

    /// Polls a job until it ends.
    func waitJob(_ id: String) async throws -> Reply {
        for _ in 0..<600 {
            let reply = try await call(.get, "/api/v1/jobs/\(id)")
            if reply.json["state"] as? String != "running" { return reply }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("job \(id) did not finish")
        return try await call(.get, "/api/v1/jobs/\(id)")
    }
}

/// `#expect` that a reply is a problem with `status` and `code`, and (when given) `detail`.
func expectProblem(
    _ reply: Reply, _ status: HTTPResponse.Status, _ code: String, detail: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(reply.status == status, "\(reply.text)", sourceLocation: sourceLocation)
    #expect(reply.isProblem, "content-type \(reply.contentType)", sourceLocation: sourceLocation)
    #expect(reply.code == code, "\(reply.text)", sourceLocation: sourceLocation)
    #expect(reply.json["status"] as? Int == status.code, sourceLocation: sourceLocation)
    #expect(reply.json["type"] as? String == "urn:vmimg:problem:" + code, sourceLocation: sourceLocation)
    if let detail { #expect(reply.detail == detail, sourceLocation: sourceLocation) }
}

/// FNV-1a over the bytes (Data's own hash looks at a prefix only).
func fnv1a(_ data: Data) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in data {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return hash
}
