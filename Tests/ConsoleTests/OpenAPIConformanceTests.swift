import Console
import Foundation
import Hummingbird
import Testing
import TestSupport

/// Formats/api.yaml against the server: the routes are the spec's operations, and every response
/// of a tour through all of them (successes and failures) validates against the spec's schemas
/// (jsonschema, draft 2020-12, via Tests/ConsoleTests/openapi_check.py).
@Suite(.timeLimit(.minutes(15)))
struct OpenAPIConformanceTests {
    static let spec = Locations.packageRoot + "/Formats/api.yaml"

    /// `METHOD /path/{param}` for each operation, read from the YAML's indentation (two spaces
    /// for a path, four for a method).
    static func specOperations() throws -> Set<String> {
        var operations = Set<String>()
        var path: String?
        var inPaths = false
        for line in try String(contentsOfFile: spec, encoding: .utf8).split(separator: "\n") {
            if line.hasPrefix("paths:") { inPaths = true; continue }
            if inPaths, !line.hasPrefix(" ") { break }
            if line.hasPrefix("  /"), line.hasSuffix(":") { path = String(line.dropFirst(2).dropLast()) }
            for method in ["get", "post", "put", "delete", "patch"] where line == "    \(method):" {
                operations.insert("\(method.uppercased()) \(path ?? "?")")
            }
        }
        return operations
    }

    @Test func routesAreTheSpecsOperations() throws {
        let harness = try Harness()
        let routes = ConsoleServer.router(service: harness.service).routes.map { route in
            let path = "\(route.path)".split(separator: "/").map {
                $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0)
            }
            return "\(route.method) /" + path.joined(separator: "/")
        }.filter { $0.contains(" /api/") }
        #expect(Set(routes) == (try Self.specOperations()))
    }

    @Test func responsesMatchTheSchemas() async throws {
        let harness = try Harness(maxUpload: 2 << 20)
        let raw = harness.scratch.path("base.raw")
        try Qemu.create(raw, format: "raw", size: "1M")
        let image = Array(try Data(contentsOf: URL(fileURLWithPath: raw)))
        try await harness.test { client in
            let c = client
            try await c.createInstance("vm1")
            try await c.createInstance("vm2")
            _ = try await c.call(.post, "/api/v1/instances", json: #"{"name":"vm1","size":1}"#)  // 409
            _ = try await c.call(.post, "/api/v1/instances", json: "{")  // 400
            _ = try await c.call(.post, "/api/v1/instances", json: "x", headers: [.contentType: "text/plain"])  // 415
            _ = try await c.call(.post, "/api/v1/instances", json: #"{"name":"vm3","image":"none"}"#)  // 404
            _ = try await c.call(.get, "/api/v1/instances", token: nil)  // 401
            _ = try await c.call(.get, "/api/v1/instances")
            _ = try await c.call(.get, "/api/v1/instances/vm1")
            _ = try await c.call(.get, "/api/v1/instances/nope")
            try await c.snapshot("vm1", "s1")
            try await c.snapshot("vm1", "s2")
            _ = try await c.call(.post, "/api/v1/instances/vm1/snapshots", json: #"{"name":"s3","dryRun":true}"#)
            _ = try await c.call(.post, "/api/v1/instances/vm1/snapshots", json: #"{"name":"s1"}"#)  // 409
            _ = try await c.call(.post, "/api/v1/instances/vm1/snapshots", json: #"{"name":"1"}"#)  // 400
            _ = try await c.call(.post, "/api/v1/instances/nope/snapshots", json: #"{"name":"a"}"#)  // 404
            _ = try await c.call(.get, "/api/v1/instances/vm1/snapshots")
            _ = try await c.call(.get, "/api/v1/instances/nope/snapshots")
            _ = try await c.call(.post, "/api/v1/instances/vm1/snapshots/s1/pin")
            _ = try await c.call(.post, "/api/v1/instances/vm1/snapshots/zz/pin")
            _ = try await c.call(.delete, "/api/v1/instances/vm1/snapshots/s1")  // 409 pinned
            _ = try await c.call(.post, "/api/v1/instances/vm1/snapshots/s1/unpin")
            _ = try await c.call(.post, "/api/v1/instances/vm1/snapshots/zz/unpin")
            _ = try await c.call(.delete, "/api/v1/instances/vm1/snapshots/s2?dryRun=true")
            _ = try await c.call(.delete, "/api/v1/instances/vm1/snapshots/zz")
            try await c.snapshot("vm1", "s3")
            _ = try await c.call(.post, "/api/v1/instances/vm1/rebuild", json: #"{"snapshot":"s1","dryRun":true}"#)
            _ = try await c.call(.post, "/api/v1/instances/vm1/rebuild", json: #"{"snapshot":"s1"}"#)  // 409 + plan
            _ = try await c.call(.post, "/api/v1/instances/vm1/rebuild", json: #"{}"#)  // 400
            _ = try await c.call(.post, "/api/v1/instances/nope/rebuild", json: #"{"snapshot":"s1"}"#)  // 404
            _ = try await c.call(.post, "/api/v1/instances/vm1/rebuild", json: #"{"snapshot":"s2","confirm":true}"#)
            _ = try await c.call(.delete, "/api/v1/instances/vm1/snapshots/s1")
            let rebuildJob = try await c.call(
                .post, "/api/v1/instances/vm2/rebuild", json: #"{"image":"vm1@s2","confirm":true}"#)
            _ = try await c.waitJob(try #require(rebuildJob.json["id"] as? String))
            _ = try await c.call(
                .post, "/api/v1/instances/vm2/rebuild?wait=true", json: #"{"image":"vm1@s2","confirm":true}"#)
            _ = try await c.call(.post, "/api/v1/instances/vm1/duplicate", json: #"{"name":"d1","snapshot":"s2"}"#)
            // A second duplicate of the same name: 409.
            _ = try await c.call(.post, "/api/v1/instances/vm1/duplicate", json: #"{"name":"d1","snapshot":"s2"}"#)
            _ = try await c.call(.post, "/api/v1/instances/vm1/duplicate", json: #"{"name":"d2"}"#)  // 400
            _ = try await c.call(.post, "/api/v1/instances/nope/duplicate", json: #"{"name":"d3","snapshot":"s2"}"#)
            let dup = try await c.call(
                .post, "/api/v1/instances/vm1/duplicate", json: #"{"name":"d4","snapshot":"s2","full":true}"#)
            _ = try await c.waitJob(try #require(dup.json["id"] as? String))
            _ = try await c.call(.get, "/api/v1/instances/vm1/audit")
            _ = try await c.call(.get, "/api/v1/instances/nope/audit")
            _ = try await c.call(.get, "/api/v1/audit")
            _ = try await c.call(.get, "/api/v1/budget")
            _ = try await c.call(.get, "/api/v1/jobs")
            _ = try await c.call(.get, "/api/v1/jobs/nope")
            _ = try await c.call(.post, "/api/v1/images?name=base&format=raw&wait=true", body: image)
            let importJob = try await c.call(.post, "/api/v1/images?name=other", body: image)
            _ = try await c.waitJob(try #require(importJob.json["id"] as? String))
            _ = try await c.call(.post, "/api/v1/images?name=base", body: image)  // 409
            _ = try await c.call(.post, "/api/v1/images?name=huge", body: [UInt8](repeating: 0, count: 3 << 20))  // 413
            _ = try await c.call(.post, "/api/v1/images?name=bad&format=qcow2&wait=true", body: image)  // 422
            _ = try await c.call(.post, "/api/v1/images", body: image)  // 400
            _ = try await c.call(.get, "/api/v1/images")
            _ = try await c.call(.get, "/api/v1/images/base")
            _ = try await c.call(.get, "/api/v1/images/nope")
            _ = try await c.call(.post, "/api/v1/instances", json: #"{"name":"on-base","image":"base"}"#)
            _ = try await c.call(.delete, "/api/v1/images/base")  // 409
            _ = try await c.call(.delete, "/api/v1/images/other")
            _ = try await c.call(.delete, "/api/v1/images/other")  // 404
            _ = try await c.call(.delete, "/api/v1/instances/d1")
            _ = try await c.call(.delete, "/api/v1/instances/d1")  // 404
            _ = try await c.call(.post, "/api/v1/instances/vm1/snapshots/s2/pin")
            _ = try await c.call(.delete, "/api/v1/instances/vm1")  // 409 pinned
            _ = try await c.call(.post, "/api/v1/instances/vm1/stop?timeout=1")  // 409 not running
            _ = try await c.call(.post, "/api/v1/instances/nope/stop")  // 404
            _ = try await c.call(.post, "/api/v1/instances/nope/start")  // 404
            if Tool.which("qemu-system-x86_64") != nil {
                _ = try await c.call(.post, "/api/v1/instances/vm2/start", json: #"{"memory":64}"#)
                _ = try await c.call(.post, "/api/v1/instances/vm2/start")  // 409
                _ = try await c.call(.post, "/api/v1/instances/vm2/stop?timeout=1")
            }
        }
        let log = harness.scratch.path("exchanges.jsonl")
        let encoder = JSONEncoder()
        let lines = try harness.exchanges.withLock {
            try $0.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        }
        try lines.joined(separator: "\n").write(toFile: log, atomically: true, encoding: .utf8)
        let check = try Tool.run(
            "python3", [Locations.packageRoot + "/Tests/ConsoleTests/openapi_check.py", Self.spec, log],
            timeout: .seconds(60))
        #expect(check.status == 0, "\(check.stdoutText)\(check.stderrText)")
    }
}
