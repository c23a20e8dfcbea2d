import Foundation
import Instances

/// More → Rebuild, as the seed: change the boot source to "my images", pick an imported image
/// or any snapshot, read the warning (what will be deleted, powered off first), Rebuild Instance.
enum RebuildPage {
    struct Selection {
        var bootSource: String?
        var image: String?
        var fullCopy: Bool
        /// The dry run of the selection, or why it cannot run.
        var plan: Result<RebuildPlan, InstancesError>?
    }

    static func render(_ d: InstanceDetails, entries: [LibraryEntry], selection: Selection, session: Session?) -> String
    {
        let name = d.summary.name
        let base = HTML.path("instances", name)
        let myImages = selection.bootSource == "my-images"
        let step = selection.plan != nil ? 3 : (myImages ? 2 : 1)
        let steps = ["Boot source", "Select image", "Confirm"].enumerated().map { i, label -> String in
            "<span class=\"\(i + 1 == step ? "on" : "")\">\(i + 1). \(label)</span>"
        }.joined(separator: "<span>›</span>")
        var html = """
            <div class="crumbs"><a href="/instances">Instances</a> / <a href="\(base)">\(HTML.h(name))</a> / Rebuild</div>
            <h1>Rebuild Instance \(HTML.h(name))</h1><div class="steps">\(steps)</div>
            <form method="get" action="\(base)/rebuild" id="rebuild-select" class="card">
            <label for="boot-source">Boot source</label>
            <select id="boot-source" name="source" data-autosubmit>
            <option value="">Select a boot source…</option>
            <option value="my-images"\(myImages ? " selected" : "")>My images</option></select>
            """
        if myImages {
            html += entriesTable(entries, instance: name, selected: selection.image)
        }
        html += "</form>"
        guard let plan = selection.plan, let image = selection.image else { return html }
        switch plan {
        case .failure(let error):
            html += "<div class=\"notice error\" id=\"rebuild-error\">\(HTML.h(error.description))</div>"
        case .success(let plan):
            html += warning(plan, d: d, image: image, fullCopy: selection.fullCopy, session: session)
        }
        return html
    }

    static func entriesTable(_ entries: [LibraryEntry], instance: String, selected: String?) -> String {
        let rows = entries.map { e -> String in
            let own = e.kind == .instanceSnapshot && e.origin == instance
            let what =
                e.kind == .image
                ? "image (\(HTML.h(e.origin)))"
                : (own ? "snapshot of this instance" : "snapshot of \(HTML.h(e.origin))")
            let id =
                "entry-"
                + e.name.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? String($0) : "_" }.joined()
            return """
                <tr><td><input type="radio" name="image" value="\(HTML.h(e.name))" id="\(HTML.h(id))" data-autosubmit\
                \(e.name == selected ? " checked" : "")></td><td><label for="\(HTML.h(id))">\(HTML.h(e.name))</label></td>
                <td>\(what)</td><td>\(HTML.bytes(e.virtualSize))</td><td>\(HTML.date(e.createdAt))</td></tr>
                """
        }.joined()
        let empty = entries.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">My images is empty.</td></tr>" : ""
        return """
            <h2>My images</h2><table id="my-images"><thead><tr><th></th><th>Name</th><th>Kind</th><th>Size</th><th>Created</th></tr>
            </thead><tbody>\(rows)\(empty)</tbody></table>
            """
    }

    static func warning(_ plan: RebuildPlan, d: InstanceDetails, image: String, fullCopy: Bool, session: Session?)
        -> String
    {
        let doomed =
            plan.snapshotsDestroyed.isEmpty
            ? "<p id=\"doomed-none\">No snapshots will be deleted.</p>"
            : "<p>These snapshots will be deleted:</p><ul id=\"doomed\">"
                + plan.snapshotsDestroyed.map { (n: String) -> String in "<li>\(HTML.h(n))</li>" }.joined() + "</ul>"
        let what: String
        switch plan.source {
        case .snapshot(let snapshot): what = "The drive will be reverted to snapshot <b>\(HTML.h(snapshot))</b>."
        case .image(let name, _): what = "The drive will be replaced by image <b>\(HTML.h(name))</b>."
        }
        let running = d.summary.state == .running
        let isImage: Bool
        if case .image = plan.source { isImage = true } else { isImage = false }
        return """
            <form method="post" action="\(HTML.path("instances", d.summary.name, "rebuild"))">\(HTML.csrfField(session))
            <input type="hidden" name="image" value="\(HTML.h(image))">
            <div class="warning-box" id="rebuild-warning"><h3>⚠ This rebuild cannot be undone</h3>
            <p>\(what) Its current content (\(HTML.bytes(plan.discardedActiveBytes)) written) is discarded.</p>
            \(doomed)
            <p id="power-warning"><b>The instance must be powered off</b> to be rebuilt\
            \(running ? " — it is running now: stop it first." : " (it is stopped).")</p></div>
            \(isImage ? "<label><input type=\"checkbox\" name=\"fullCopy\" value=\"true\"\(fullCopy ? " checked" : "")> Full copy (no backing image)</label>" : "")
            <label><input type="checkbox" name="confirm" value="true" id="confirm"> I understand that the snapshots listed \
            above and the current content will be deleted</label>
            <p><button class="danger" id="rebuild-button"\(running ? " disabled" : "")>Rebuild Instance</button>
            <a class="button" href="\(HTML.path("instances", d.summary.name))">Cancel</a></p></form>
            """
    }
}
