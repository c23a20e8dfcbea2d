import Foundation
import Hummingbird
import Instances

/// Drive snapshots, rebuild and duplicate.
struct SnapshotRoutes {
    let service: ConsoleService

    func add(to api: RouterGroup<ConsoleContext>) {
        api.get("instances/:instance/snapshots") { _, context in
            let name = try parameter("instance", context)
            let details = try await service.call { try $0.show(name) }
            return try json(
                SnapshotListJSON(
                    instance: name, maxSnapshots: details.maxSnapshots, quota: details.quota,
                    activeBytes: details.activeBytes, snapshotOnlyBytes: details.snapshotOnlyBytes,
                    snapshots: details.snapshots.map(SnapshotJSON.init)))
        }
        api.post("instances/:instance/snapshots") { request, context in
            let name = try parameter("instance", context)
            let body = try await decode(CreateSnapshotBody.self, request, context)
            let result = try await service.call {
                try $0.createSnapshot(instance: name, name: body.name, dryRun: body.dryRun ?? false)
            }
            return try json(
                SnapshotCreateJSON(result), status: result.dryRun ? .ok : .created,
                location: "/api/v1/instances/\(escape(name))/snapshots/\(escape(body.name))")
        }
        api.delete("instances/:instance/snapshots/:snapshot") { request, context in
            let name = try parameter("instance", context)
            let snapshot = try parameter("snapshot", context)
            let dryRun = flag("dryRun", request)
            let result = try await service.call {
                try $0.deleteSnapshot(instance: name, name: snapshot, dryRun: dryRun)
            }
            return try json(
                SnapshotDeleteJSON(
                    instance: result.instance, snapshot: result.snapshot, dryRun: result.dryRun,
                    freedBytes: result.freedBytes))
        }
        for pin in [true, false] {
            api.post(RouterPath("instances/:instance/snapshots/:snapshot/\(pin ? "pin" : "unpin")")) { _, context in
                let name = try parameter("instance", context)
                let snapshot = try parameter("snapshot", context)
                try await service.call {
                    pin
                        ? try $0.pinSnapshot(instance: name, name: snapshot)
                        : try $0.unpinSnapshot(instance: name, name: snapshot)
                }
                return Response(status: .noContent)
            }
        }
        api.post("instances/:instance/rebuild") { request, context in
            let name = try parameter("instance", context)
            let body = try await decode(RebuildBody.self, request, context)
            return try await rebuild(name, body, wait: flag("wait", request))
        }
        api.post("instances/:instance/duplicate") { request, context in
            let name = try parameter("instance", context)
            let body = try await decode(DuplicateBody.self, request, context)
            return try await duplicate(name, body, wait: flag("wait", request))
        }
    }

    /// Dry run → the plan; no `confirm` → 409 with the plan; from a snapshot → done at once; from
    /// an image → a job (the copy can take long).
    func rebuild(_ name: String, _ body: RebuildBody, wait: Bool) async throws -> Response {
        let source = try body.source()
        let planned = try await service.call { try $0.rebuild(name, from: source, confirm: false) }
        guard case .planned(let plan) = planned else { throw InstancesError.invalidArgument("rebuild ran unconfirmed") }
        if body.dryRun == true { return try json(RebuildPlanJSON(plan, rebuilt: false)) }
        guard body.confirm == true else {
            var problem = Problem(InstancesError.confirmationRequired(operation: "rebuild", summary: plan.summary))
            problem.plan = RebuildPlanJSON(plan, rebuilt: false)
            throw problem
        }
        if case .snapshot = plan.source {
            return try json(RebuildPlanJSON(try await runRebuild(name, source), rebuilt: true))
        }
        let job = service.jobs.start(kind: "rebuild", subject: "instance '\(name)'", phase: "copying") { update in
            let plan = try await runRebuild(name, source)
            update("done", 1)
            return (.rebuild(RebuildPlanJSON(plan, rebuilt: true)), "/api/v1/instances/\(escape(name))")
        }
        return try await respond(job, wait: wait)
    }

    func runRebuild(_ name: String, _ source: RebuildSource) async throws -> RebuildPlan {
        switch try await service.call({ try $0.rebuild(name, from: source, confirm: true) }) {
        case .rebuilt(let plan), .planned(let plan): return plan
        }
    }

    /// Thin duplicates are instant; full ones copy the snapshot and run as a job.
    func duplicate(_ name: String, _ body: DuplicateBody, wait: Bool) async throws -> Response {
        let work: @Sendable () async throws -> DuplicateJSON = {
            let r = try await service.call {
                try $0.duplicate(name, as: body.name, snapshot: body.snapshot, full: body.full ?? false)
            }
            return DuplicateJSON(
                source: r.source, snapshot: r.snapshot, newInstance: InstanceJSON(r.newInstance),
                exportedImage: r.exportedImage)
        }
        let location = "/api/v1/instances/\(escape(body.name))"
        guard body.full == true else { return try json(try await work(), status: .created, location: location) }
        let job = service.jobs.start(kind: "duplicate", subject: "instance '\(body.name)'", phase: "copying") { _ in
            (.duplicate(try await work()), location)
        }
        return try await respond(job, wait: wait)
    }

    /// 202 with the job (and `Location: /api/v1/jobs/ID`); with `?wait=true`, the job's outcome:
    /// 201 with its result or its problem.
    func respond(_ job: JobJSON, wait: Bool) async throws -> Response {
        let location = "/api/v1/jobs/\(job.id)"
        guard wait, let done = await service.jobs.wait(job.id) else {
            return try json(job, status: .accepted, location: location)
        }
        if let problem = done.problem { throw problem }
        var response = try json(done.result, status: .created, location: done.resource)
        response.headers[.contentLocation] = location
        return response
    }
}
