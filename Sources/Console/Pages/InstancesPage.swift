import Foundation
import Instances

/// Cloud → Instances: state, virtual size, quota use; and the create form.
enum InstancesPage {
    static func render(_ instances: [InstanceDetails], images: [LibraryEntry], session: Session?) -> String {
        let rows = instances.map { d -> String in
            let s = d.summary
            return """
                <tr data-instance="\(HTML.h(s.name))"><td><a href="\(HTML.path("instances", s.name))">\(HTML.h(s.name))</a></td>
                <td><span class="state \(s.state.rawValue)">\(s.state.rawValue)</span></td>
                <td>\(HTML.bytes(s.virtualSize))</td><td>\(QuotaGauge.render(d))</td>
                <td>\(s.snapshotCount) / \(d.maxSnapshots)</td><td class="muted">\(HTML.h(s.baseImage ?? "—"))</td></tr>
                """
        }.joined()
        let empty = instances.isEmpty ? "<tr><td colspan=\"6\" class=\"muted\">No instances yet.</td></tr>" : ""
        let imageOptions = images.map { (i: LibraryEntry) -> String in
            "<option value=\"\(HTML.h(i.name))\">\(HTML.h(i.name))</option>"
        }.joined()
        return """
            <div class="toolbar"><h1>Instances</h1><span class="spacer"></span>
            <button class="primary" data-open="create-instance" id="open-create-instance">Create Instance</button></div>
            <table id="instances"><thead><tr><th>Name</th><th>State</th><th>Virtual size</th><th>Quota use</th>
            <th>Snapshots</th><th>Image</th></tr></thead><tbody>\(rows)\(empty)</tbody></table>
            <dialog id="create-instance"><form method="post" action="/instances">\(HTML.csrfField(session))
            <h2>Create Instance</h2>
            <label for="instance-name">Name</label><input type="text" id="instance-name" name="name" required maxlength="64">
            <label for="instance-source">Boot source</label>
            <select id="instance-source" name="image"><option value="">Empty drive</option>\(imageOptions)</select>
            <label for="instance-size">Size (empty drive)</label><input type="text" id="instance-size" name="size" value="64M">
            <label for="instance-quota">Quota (optional)</label><input type="text" id="instance-quota" name="quota" placeholder="e.g. 1G">
            <label for="instance-audit">Audit</label>
            <select id="instance-audit" name="audit"><option value="changes">changes</option><option value="all">all</option><option value="off">off</option></select>
            <p><button class="primary" id="create-instance-submit">Create Instance</button>
            <button type="button" data-close>Cancel</button></p></form></dialog>
            """
    }
}

/// The quota gauge: active-layer bytes against the quota (snapshot-only bytes are not counted, R4).
enum QuotaGauge {
    static func render(_ d: InstanceDetails) -> String {
        guard let quota = d.quota, quota > 0 else {
            let fraction = d.summary.virtualSize > 0 ? Double(d.activeBytes) / Double(d.summary.virtualSize) : 0
            return HTML.bar(
                [(fraction, "active")], label: "\(HTML.bytes(d.activeBytes)) used · no quota",
                title: "active layer of \(HTML.bytes(d.summary.virtualSize))")
        }
        let fraction = Double(d.activeBytes) / Double(quota)
        return HTML.bar(
            [(fraction, d.overQuota ? "over" : "active")],
            label: "\(HTML.bytes(d.activeBytes)) of \(HTML.bytes(quota)) (\(Int((fraction * 100).rounded()))%)",
            title: "snapshot-only data (\(HTML.bytes(d.snapshotOnlyBytes))) does not count")
    }
}
