import Foundation
import Hummingbird
import Instances
import Testing
import TestSupport

@Suite(.timeLimit(.minutes(15)))
struct InstanceAPITests {
    @Test func createListShowDelete() async throws {
        let harness = try Harness()
        try await harness.test { client in
            let created = try await client.createInstance("vm1")
            #expect(created.headers[.location] == "/api/v1/instances/vm1")
            #expect(created.json["name"] as? String == "vm1")
            #expect(created.json["virtualSize"] as? Int == 64 << 20)
            #expect(created.json["state"] as? String == "stopped")

            let list = try await client.call(.get, "/api/v1/instances")
            #expect(list.status == .ok)
            #expect(list.array.map { $0["name"] as? String } == ["vm1"])

            let show = try await client.call(.get, "/api/v1/instances/vm1")
            #expect(show.status == .ok)
            #expect(show.json["maxSnapshots"] as? Int == 5)
            #expect(show.json["activeBytes"] as? Int == 0)

            let deleted = try await client.call(.delete, "/api/v1/instances/vm1")
            #expect(deleted.status == .noContent)
            expectProblem(try await client.call(.get, "/api/v1/instances/vm1"), .notFound, "instance-not-found")
        }
    }

    @Test func badInputLeavesEverythingUnchanged() async throws {
        let harness = try Harness()
        try await harness.test { client in
            try await client.createInstance("vm1")
            let before = try harness.snapshotOfState()

            expectProblem(
                try await client.call(.get, "/api/v1/instances/nope"), .notFound, "instance-not-found",
                detail: "no instance named 'nope'")
            expectProblem(
                try await client.call(.post, "/api/v1/instances", json: #"{"name":"vm1","size":"64M"}"#), .conflict,
                "already-exists", detail: "instance 'vm1' already exists")
            expectProblem(
                try await client.call(.post, "/api/v1/instances", json: #"{"name":"vm2","size":"#), .badRequest,
                "malformed-json")
            expectProblem(
                try await client.call(.post, "/api/v1/instances", json: #"{"size":"64M"}"#), .badRequest,
                "malformed-json",
                detail: "malformed JSON: missing key 'name'")
            expectProblem(
                try await client.call(.post, "/api/v1/instances", json: #"{"name":"../../etc","size":"64M"}"#),
                .badRequest, "invalid-name")
            expectProblem(
                try await client.call(.post, "/api/v1/instances", json: #"{"name":"vm2"}"#), .badRequest,
                "invalid-argument", detail: "an instance needs exactly one of 'size' and 'image'")
            expectProblem(
                try await client.call(.post, "/api/v1/instances", json: #"{"name":"vm2","image":"missing"}"#),
                .notFound,
                "image-not-found", detail: "no image named 'missing' in my images")
            expectProblem(
                try await client.call(
                    .post, "/api/v1/instances", json: "name=vm2",
                    headers: [.contentType: "application/x-www-form-urlencoded"]),
                .unsupportedMediaType, "unsupported-media-type")
            expectProblem(try await client.call(.delete, "/api/v1/instances/nope"), .notFound, "instance-not-found")
            expectProblem(try await client.call(.get, "/api/v1/nothing-here"), .notFound, "not-found")
            expectProblem(try await client.call(.get, "/api/v1/jobs/nope"), .notFound, "job-not-found")
            // Percent-encoded traversal reaches the catalog lookup as a plain (unknown) name.
            expectProblem(
                try await client.call(.get, "/api/v1/instances/..%2F..%2Fetc"), .notFound, "instance-not-found",
                detail: "no instance named '../../etc'")
            #expect(try harness.snapshotOfState() == before)
        }
    }

    @Test func auditBudgetAndJobs() async throws {
        let harness = try Harness()
        try await harness.test { client in
            try await client.createInstance("vm1")
            try await client.snapshot("vm1", "s1")
            let audit = try await client.call(.get, "/api/v1/instances/vm1/audit")
            #expect(audit.status == .ok)
            #expect(audit.array.compactMap { $0["operation"] as? String } == ["create", "snapshot-create"])
            let all = try await client.call(.get, "/api/v1/audit")
            #expect(all.array.count == 2)
            expectProblem(try await client.call(.get, "/api/v1/instances/nope/audit"), .notFound, "instance-not-found")
            let budget = try await client.call(.get, "/api/v1/budget")
            #expect(budget.status == .ok)
            #expect((budget.json["inUse"] as? Int ?? 0) > 0)
            #expect(budget.json["budget"] == nil)
            let jobs = try await client.call(.get, "/api/v1/jobs")
            #expect(jobs.status == .ok)
            #expect(jobs.array.isEmpty)
        }
    }

    /// R15 over the API: a running instance refuses rebuild; start and stop answer with the state.
    @Test func startStopAndRunningRefusals() async throws {
        _ = try Tool.require("qemu-system-x86_64")
        let harness = try Harness()
        try await harness.test { client in
            try await client.createInstance("vm1")
            try await client.snapshot("vm1", "s1")
            let started = try await client.call(.post, "/api/v1/instances/vm1/start", json: #"{"memory":64}"#)
            #expect(started.status == .ok, "\(started.text)")
            #expect(started.json["state"] as? String == "running")
            let before = try harness.snapshotOfState()
            expectProblem(
                try await client.call(.post, "/api/v1/instances/vm1/start"), .conflict, "instance-running",
                detail: "cannot start 'vm1': the instance is running; stop it first")
            expectProblem(
                try await client.call(
                    .post, "/api/v1/instances/vm1/rebuild", json: #"{"snapshot":"s1","confirm":true}"#),
                .conflict, "instance-running", detail: "cannot rebuild 'vm1': the instance is running; stop it first")
            expectProblem(
                try await client.call(.delete, "/api/v1/instances/vm1"), .conflict, "instance-running")
            #expect(try harness.snapshotOfState() == before)
            let stopped = try await client.call(.post, "/api/v1/instances/vm1/stop?timeout=1")
            #expect(stopped.status == .ok, "\(stopped.text)")
            #expect(stopped.json["state"] as? String == "stopped")
            expectProblem(
                try await client.call(.post, "/api/v1/instances/vm1/stop?timeout=1"), .conflict, "instance-not-running",
                detail: "instance 'vm1' is not running")
        }
    }
}
