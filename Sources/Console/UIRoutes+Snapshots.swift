import Foundation
import Hummingbird
import Instances

/// UI: snapshots tab actions, the Rebuild page, My images.
struct SnapshotPageRoutes {
    let service: ConsoleService
    var ui: UIRoutes { UIRoutes(service: service) }

    func add(to router: Router<ConsoleContext>) {
        router.post("instances/:instance/snapshots") { _, context in
            let name = try parameter("instance", context)
            let snapshot = context.form["name"] ?? ""
            let back = HTML.path("instances", name) + "?tab=snapshots"
            return await ui.act(context, success: back, failure: back) { m in
                let r = try m.createSnapshot(instance: name, name: snapshot)
                guard !r.deleted.isEmpty else { return (.info, "Snapshot '\(r.snapshot)' created.") }
                let names = r.deleted.map { (n: String) -> String in "'\(n)'" }.joined(separator: ", ")
                let max = try m.show(name).maxSnapshots
                return (
                    .warning,
                    "Snapshot '\(r.snapshot)' created. The oldest snapshot \(names) was deleted automatically "
                        + "(at most \(max) per drive; \(HTML.bytes(r.freedBytes)) freed)."
                )
            }
        }
        for action in ["delete", "pin", "unpin"] {
            router.post(RouterPath("instances/:instance/snapshots/:snapshot/\(action)")) { _, context in
                let name = try parameter("instance", context)
                let snapshot = try parameter("snapshot", context)
                let back = HTML.path("instances", name) + "?tab=snapshots"
                return await ui.act(context, success: back, failure: back) { m in
                    switch action {
                    case "pin": try m.pinSnapshot(instance: name, name: snapshot)
                    case "unpin": try m.unpinSnapshot(instance: name, name: snapshot)
                    default:
                        let r = try m.deleteSnapshot(instance: name, name: snapshot)
                        return (.info, "Snapshot '\(snapshot)' deleted; \(HTML.bytes(r.freedBytes)) freed.")
                    }
                    return (.info, "Snapshot '\(snapshot)' \(action)ned.")
                }
            }
        }
        router.get("instances/:instance/rebuild") { request, context in
            let name = try parameter("instance", context)
            // A browser's GET form: '+' is a space here (Hummingbird's query parser leaves it).
            let query = FormData.parse(request.uri.query ?? "")
            var selection = RebuildPage.Selection(
                bootSource: query["source"], image: query["image"], fullCopy: query["fullCopy"] == "true")
            let chosen = selection
            let (details, entries, plan) = try await service.call { m in
                let details = try m.show(name)
                let entries = chosen.bootSource == "my-images" ? try m.library.list() : []
                var plan: Result<RebuildPlan, InstancesError>?
                if let image = chosen.image, chosen.bootSource == "my-images" {
                    do {
                        if case .planned(let p) = try m.rebuild(
                            name, from: .image(image, fullCopy: chosen.fullCopy), confirm: false)
                        {
                            plan = .success(p)
                        }
                    } catch let error as InstancesError {
                        plan = .failure(error)
                    }
                }
                return (details, entries, plan)
            }
            selection.plan = plan
            return ui.page(
                "Rebuild \(name)", context,
                RebuildPage.render(details, entries: entries, selection: selection, session: context.session))
        }
        router.post("instances/:instance/rebuild") { _, context in try await rebuild(context) }
        router.get("images") { _, context in
            let entries = try await service.call { try $0.library.list() }
            return ui.page(
                "My images", context,
                ImagesPage.render(entries, maxUpload: service.maxUploadBytes, session: context.session),
                active: "images")
        }
        router.post("images/:image/delete") { _, context in
            let name = try parameter("image", context)
            return await ui.act(context, success: "/images", failure: "/images") { m in
                try m.library.delete(name: name)
                return (.info, "Image '\(name)' deleted.")
            }
        }
    }

    /// Rebuild Instance: from a snapshot of this instance at once; from another image as a job
    /// whose progress the instance page shows.
    func rebuild(_ context: ConsoleContext) async throws -> Response {
        let name = try parameter("instance", context)
        let image = context.form["image"] ?? ""
        let fullCopy = context.form["fullCopy"] == "true"
        let source = RebuildSource.image(image, fullCopy: fullCopy)
        let base = HTML.path("instances", name)
        let back =
            base + "/rebuild?source=my-images&image="
            + (image.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        guard let session = context.session else { return HTML.redirect("/login") }
        guard context.form["confirm"] == "true" else {
            service.sessions.notify(
                session.id, .error, "Rebuild needs confirmation: tick the box under the warning, then Rebuild Instance."
            )
            return HTML.redirect(back)
        }
        let planned: RebuildPlan
        do {
            guard
                case .planned(let plan) = try await service.call({ try $0.rebuild(name, from: source, confirm: false) })
            else { return HTML.redirect(back) }
            planned = plan
        } catch {
            service.sessions.notify(session.id, .error, Problem(any: error).detail)
            return HTML.redirect(back)
        }
        let sessions = service.sessions
        let message: @Sendable (RebuildPlan) -> String = { plan in
            let gone =
                plan.snapshotsDestroyed.isEmpty
                ? "No snapshots were deleted."
                : "Deleted snapshots: "
                    + plan.snapshotsDestroyed.map { (n: String) -> String in "'\(n)'" }.joined(separator: ", ") + "."
            switch plan.source {
            case .snapshot(let s): return "Instance '\(name)' rebuilt from snapshot '\(s)'. \(gone)"
            case .image(let i, _): return "Instance '\(name)' rebuilt from image '\(i)'. \(gone)"
            }
        }
        if case .snapshot = planned.source {
            return await ui.act(context, success: base + "?tab=snapshots", failure: back) { m in
                guard case .rebuilt(let plan) = try m.rebuild(name, from: source, confirm: true) else {
                    return (.error, "rebuild did not run")
                }
                return (.info, message(plan))
            }
        }
        let job = service.jobs.start(kind: "rebuild", subject: "instance '\(name)'", phase: "copying") { _ in
            do {
                let plan = try await SnapshotRoutes(service: service).runRebuild(name, source)
                sessions.notify(session.id, .info, message(plan))
                return (.rebuild(RebuildPlanJSON(plan, rebuilt: true)), "/api/v1/instances/\(escape(name))")
            } catch {
                sessions.notify(session.id, .error, Problem(any: error).detail)
                throw error
            }
        }
        return HTML.redirect(base + "?job=" + job.id)
    }
}
