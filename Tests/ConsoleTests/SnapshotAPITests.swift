import Foundation
import Hummingbird
import Testing
import TestSupport

@Suite(.timeLimit(.minutes(15)))
struct SnapshotAPITests {
    @Test func listWithSpaceFiguresPinUnpinDelete() async throws {
        let harness = try Harness()
        try await harness.test { client in
            try await client.createInstance("vm1")
            let drive = try await client.drive("vm1")
            try Qemu.io(drive, commands: ["write -P 0xaa 0 1M"])
            try await client.snapshot("vm1", "s1")
            try Qemu.io(drive, commands: ["write -P 0xbb 0 256k"])
            try await client.snapshot("vm1", "s2")

            let list = try await client.call(.get, "/api/v1/instances/vm1/snapshots")
            #expect(list.status == .ok)
            let snaps = try #require(list.json["snapshots"] as? [[String: Any]])
            #expect(snaps.map { $0["name"] as? String } == ["s1", "s2"])
            let s1 = try #require(snaps[0]["space"] as? [String: Int])
            #expect(s1["referenced"] == 1 << 20)
            #expect(s1["unique"] == 256 << 10)  // the 256 KiB the drive overwrote since
            #expect(s1["shared"] == (1 << 20) - (256 << 10))
            #expect(list.json["activeBytes"] as? Int == 1 << 20)

            #expect(try await client.call(.post, "/api/v1/instances/vm1/snapshots/s1/pin").status == .noContent)
            let before = try harness.snapshotOfState()
            expectProblem(
                try await client.call(.delete, "/api/v1/instances/vm1/snapshots/s1"), .conflict, "snapshots-pinned",
                detail: "cannot delete a snapshot of 'vm1': pinned snapshots would be destroyed: s1 (unpin them first)")
            expectProblem(
                try await client.call(.post, "/api/v1/instances/vm1/snapshots", json: #"{"name":"s2"}"#), .conflict,
                "already-exists", detail: "snapshot 'vm1@s2' already exists")
            expectProblem(
                try await client.call(.post, "/api/v1/instances/vm1/snapshots", json: #"{"name":"12"}"#), .badRequest,
                "invalid-name")
            expectProblem(
                try await client.call(.post, "/api/v1/instances/vm1/snapshots", json: #"{"name":}"#), .badRequest,
                "malformed-json")
            expectProblem(
                try await client.call(.post, "/api/v1/instances/nope/snapshots", json: #"{"name":"x"}"#), .notFound,
                "instance-not-found")
            expectProblem(
                try await client.call(.post, "/api/v1/instances/vm1/snapshots/zz/pin"), .notFound, "snapshot-not-found",
                detail: "instance 'vm1' has no snapshot 'zz'")
            #expect(try harness.snapshotOfState() == before)
            #expect(try await client.call(.post, "/api/v1/instances/vm1/snapshots/s1/unpin").status == .noContent)

            let dry = try await client.call(.delete, "/api/v1/instances/vm1/snapshots/s1?dryRun=true")
            #expect(dry.json["dryRun"] as? Bool == true)
            #expect(dry.json["freedBytes"] as? Int == 256 << 10)
            let deleted = try await client.call(.delete, "/api/v1/instances/vm1/snapshots/s1")
            #expect(deleted.status == .ok)
            #expect(try Qemu.snapshotNames(drive) == ["s2"])
            expectProblem(
                try await client.call(.delete, "/api/v1/instances/vm1/snapshots/s1"), .notFound, "snapshot-not-found")
        }
    }

    /// R12 over the API: the sixth snapshot deletes the oldest and the result names it.
    @Test func sixthSnapshotDeletesTheOldest() async throws {
        let harness = try Harness()
        try await harness.test { client in
            try await client.createInstance("vm1")
            for i in 1...5 { try await client.snapshot("vm1", "s\(i)") }
            let dry = try await client.call(
                .post, "/api/v1/instances/vm1/snapshots", json: #"{"name":"s6","dryRun":true}"#)
            #expect(dry.status == .ok)
            #expect(dry.json["deleted"] as? [String] == ["s1"])
            let sixth = try await client.snapshot("vm1", "s6")
            #expect(sixth.json["deleted"] as? [String] == ["s1"])
            let names =
                try await client.call(.get, "/api/v1/instances/vm1/snapshots").json["snapshots"] as? [[String: Any]]
            #expect(names?.map { $0["name"] as? String } == ["s2", "s3", "s4", "s5", "s6"])
        }
    }

    /// R7, R13, R14 over the API.
    @Test func rebuildFromSnapshotNeedsConfirmationThenReverts() async throws {
        let harness = try Harness()
        try await harness.test { client in
            try await client.createInstance("vm1")
            let drive = try await client.drive("vm1")
            try Qemu.io(drive, commands: ["write -P 0xaa 0 64k"])
            try await client.snapshot("vm1", "test snapshot")
            try Qemu.io(drive, commands: ["write -P 0xbb 0 64k"])
            try await client.snapshot("vm1", "later")
            let path = "/api/v1/instances/vm1/rebuild"

            let plan = try await client.call(.post, path, json: #"{"snapshot":"test snapshot","dryRun":true}"#)
            #expect(plan.status == .ok)
            #expect(plan.json["snapshotsDestroyed"] as? [String] == ["later"])
            #expect(plan.json["rebuilt"] as? Bool == false)

            let before = try harness.snapshotOfState()
            let refused = try await client.call(.post, path, json: #"{"snapshot":"test snapshot"}"#)
            expectProblem(refused, .conflict, "confirmation-required")
            #expect(
                refused.detail.hasPrefix("rebuild needs confirmation (--yes): revert 'vm1' to snapshot 'test snapshot'")
            )
            #expect((refused.json["plan"] as? [String: Any])?["snapshotsDestroyed"] as? [String] == ["later"])
            expectProblem(
                try await client.call(.post, path, json: #"{"snapshot":"nope","confirm":true}"#), .notFound,
                "snapshot-not-found")
            expectProblem(
                try await client.call(.post, path, json: #"{"snapshot":"later","image":"x","confirm":true}"#),
                .badRequest,
                "invalid-argument")
            expectProblem(
                try await client.call(.post, path, json: #"{"snapshot":"later","confirm":"yes"}"#), .badRequest,
                "malformed-json")
            #expect(try harness.snapshotOfState() == before)

            let done = try await client.call(.post, path, json: #"{"snapshot":"test snapshot","confirm":true}"#)
            #expect(done.status == .ok, "\(done.text)")
            #expect(done.json["rebuilt"] as? Bool == true)
            try Qemu.io(drive, commands: ["read -P 0xaa 0 64k"])
            let left =
                try await client.call(.get, "/api/v1/instances/vm1/snapshots").json["snapshots"] as? [[String: Any]]
            #expect(left?.map { $0["name"] as? String } == ["test snapshot"])
            let info = try Qemu.img(["snapshot", "-l", drive]).checked().stdoutText
            #expect(info.contains("test snapshot") && !info.contains("later"))
        }
    }

    /// R18 as a job: rebuild from an image replaces the drive; the job reports the plan.
    @Test func rebuildFromImageRunsAsJob() async throws {
        let harness = try Harness()
        try await harness.test { client in
            try await client.createInstance("vm1")
            try await client.createInstance("vm2")
            let drive1 = try await client.drive("vm1")
            try Qemu.io(drive1, commands: ["write -P 0xcc 0 64k"])
            try await client.snapshot("vm1", "gold")
            try await client.snapshot("vm2", "old")
            let started = try await client.call(
                .post, "/api/v1/instances/vm2/rebuild", json: #"{"image":"vm1@gold","confirm":true}"#)
            #expect(started.status == .accepted, "\(started.text)")
            let id = try #require(started.json["id"] as? String)
            #expect(started.headers[.location] == "/api/v1/jobs/\(id)")
            let job = try await client.waitJob(id)
            #expect(job.json["state"] as? String == "succeeded", "\(job.text)")
            #expect(job.json["progress"] as? Double == 1)
            #expect((job.json["result"] as? [String: Any])?["snapshotsDestroyed"] as? [String] == ["old"])
            try Qemu.io(try await client.drive("vm2"), commands: ["read -P 0xcc 0 64k"])
        }
    }

    @Test func duplicateThinAndFull() async throws {
        let harness = try Harness()
        try await harness.test { client in
            try await client.createInstance("vm1")
            try Qemu.io(try await client.drive("vm1"), commands: ["write -P 0xdd 0 64k"])
            try await client.snapshot("vm1", "s1")
            let thin = try await client.call(
                .post, "/api/v1/instances/vm1/duplicate", json: #"{"name":"copy","snapshot":"s1"}"#)
            #expect(thin.status == .created, "\(thin.text)")
            #expect(thin.json["exportedImage"] as? String == "vm1-s1")
            let full = try await client.call(
                .post, "/api/v1/instances/vm1/duplicate?wait=true",
                json: #"{"name":"full","snapshot":"s1","full":true}"#)
            #expect(full.status == .created, "\(full.text)")
            let async = try await client.call(
                .post, "/api/v1/instances/vm1/duplicate", json: #"{"name":"full2","snapshot":"s1","full":true}"#)
            #expect(async.status == .accepted)
            let job = try await client.waitJob(try #require(async.json["id"] as? String))
            #expect(job.json["state"] as? String == "succeeded")
            for name in ["copy", "full", "full2"] {
                try Qemu.io(try await client.drive(name), commands: ["read -P 0xdd 0 64k"])
            }
            let before = try harness.snapshotOfState()
            expectProblem(
                try await client.call(
                    .post, "/api/v1/instances/vm1/duplicate", json: #"{"name":"copy","snapshot":"s1"}"#),
                .conflict, "already-exists")
            let failed = try await client.call(
                .post, "/api/v1/instances/vm1/duplicate?wait=true", json: #"{"name":"x","snapshot":"nope","full":true}"#
            )
            expectProblem(failed, .notFound, "snapshot-not-found")
            #expect(try harness.snapshotOfState() == before)
        }
    }
}
