import Foundation
import Hummingbird
import Testing
import TestSupport

@Suite(.timeLimit(.minutes(15)))
struct ImageAPITests {
    /// A raw image with a recognisable first cluster.
    func rawImage(_ harness: Harness, size: Int = 1 << 20) throws -> [UInt8] {
        let path = harness.scratch.path("disk-\(UUID().uuidString).raw")
        try Qemu.create(path, format: "raw", size: "\(size)")
        try Qemu.io(path, format: "raw", commands: ["write -P 0x5a 0 64k"])
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func uploadListUseDelete() async throws {
        let harness = try Harness()
        let bytes = try rawImage(harness)
        try await harness.test { client in
            let imported = try await client.call(.post, "/api/v1/images?name=base&format=raw&wait=true", body: bytes)
            #expect(imported.status == .created, "\(imported.text)")
            #expect(imported.json["name"] as? String == "base")
            #expect(imported.json["virtualSize"] as? Int == 1 << 20)
            #expect(harness.uploadsLeft.isEmpty)

            let started = try await client.call(.post, "/api/v1/images?name=second", body: bytes)
            #expect(started.status == .accepted)
            let job = try await client.waitJob(try #require(started.json["id"] as? String))
            #expect(job.json["state"] as? String == "succeeded", "\(job.text)")
            #expect(job.json["resource"] as? String == "/api/v1/images/second")

            let list = try await client.call(.get, "/api/v1/images")
            #expect(list.array.map { $0["name"] as? String } == ["base", "second"])
            #expect(try await client.call(.get, "/api/v1/images/base").status == .ok)

            let vm = try await client.call(.post, "/api/v1/instances", json: #"{"name":"vm1","image":"base"}"#)
            #expect(vm.status == .created)
            try Qemu.io(try await client.drive("vm1"), commands: ["read -P 0x5a 0 64k"])
            expectProblem(
                try await client.call(.delete, "/api/v1/images/base"), .conflict, "image-in-use",
                detail: "image 'base' is in use by instance 'vm1'")
            #expect(try await client.call(.delete, "/api/v1/images/second").status == .noContent)
            expectProblem(try await client.call(.delete, "/api/v1/images/second"), .notFound, "image-not-found")
            expectProblem(try await client.call(.get, "/api/v1/images/second"), .notFound, "image-not-found")
        }
    }

    @Test func refusedUploadsChangeNothing() async throws {
        let harness = try Harness(maxUpload: 2 << 20)
        let bytes = try rawImage(harness)
        let big = try rawImage(harness, size: 3 << 20)
        // Hostile: a qcow2 naming a host file as its backing file.
        let hostilePath = harness.scratch.path("hostile.qcow2")
        try Qemu.create(hostilePath, size: "1M", backing: "/etc/passwd", backingFormat: "raw")
        let hostile = Array(try Data(contentsOf: URL(fileURLWithPath: hostilePath)))
        try await harness.test { client in
            _ = try await client.call(.post, "/api/v1/images?name=base&wait=true", body: bytes)
            let before = try harness.snapshotOfState()

            expectProblem(
                try await client.call(.post, "/api/v1/images?name=big&wait=true", body: big), .contentTooLarge,
                "too-large")
            expectProblem(
                try await client.call(.post, "/api/v1/images?name=evil&wait=true", body: hostile),
                .unprocessableContent,
                "unsafe-image")
            let declared = try await client.call(.post, "/api/v1/images?name=liar&format=raw&wait=true", body: hostile)
            expectProblem(declared, .unprocessableContent, "unsafe-image")
            #expect(declared.detail.hasSuffix("it names a backing file"), "\(declared.detail)")
            let async = try await client.call(.post, "/api/v1/images?name=evil2", body: hostile)
            #expect(async.status == .accepted)
            let job = try await client.waitJob(try #require(async.json["id"] as? String))
            #expect(job.json["state"] as? String == "failed")
            #expect((job.json["problem"] as? [String: Any])?["code"] as? String == "unsafe-image")
            expectProblem(
                try await client.call(.post, "/api/v1/images?name=base&wait=true", body: bytes), .conflict,
                "already-exists",
                detail: "image 'base' already exists")
            expectProblem(
                try await client.call(.post, "/api/v1/images?name=..%2Fescape&wait=true", body: bytes), .badRequest,
                "invalid-name")
            expectProblem(
                try await client.call(.post, "/api/v1/images?wait=true", body: bytes), .badRequest, "invalid-argument")
            expectProblem(
                try await client.call(.post, "/api/v1/images?name=empty&wait=true", body: []), .badRequest,
                "invalid-argument")
            expectProblem(
                try await client.call(.post, "/api/v1/images?name=fmt&format=vmdk&wait=true", body: bytes), .badRequest,
                "invalid-argument", detail: "-f must be raw or qcow2, not 'vmdk'")

            #expect(try harness.snapshotOfState() == before)
            #expect(harness.uploadsLeft.isEmpty)
        }
    }
}
