import Foundation
import Instances

/// One instance: Overview / Snapshots / Audit tabs, the Create Snapshot dialog, More → Rebuild.
enum InstancePage {
    static func render(_ d: InstanceDetails, tab: String, audit: [AuditEntry], job: String?, session: Session?)
        -> String
    {
        let s = d.summary
        let base = HTML.path("instances", s.name)
        let tabs = [("overview", "Overview"), ("snapshots", "Snapshots"), ("audit", "Audit")].map {
            key, label -> String in
            "<a href=\"\(base)?tab=\(key)\" id=\"tab-\(key)\" class=\"\(tab == key ? "on" : "")\">\(label)</a>"
        }.joined()
        let content: String
        switch tab {
        case "snapshots": content = snapshots(d, session: session)
        case "audit": content = auditTable(audit)
        default: content = overview(d, session: session)
        }
        let jobBox =
            job.map { (id: String) -> String in
                """
                <div class="job card" id="job" data-job="\(HTML.h(id))" data-done="\(base)?tab=snapshots">\
                \(HTML.bar([(0, "job")], label: "starting…"))</div>
                """
            } ?? ""
        let power =
            s.state == .running
            ? HTML.button("Stop", action: base + "/stop", session: session, id: "stop")
            : HTML.button("Start", action: base + "/start", session: session, id: "start")
        return """
            <div class="crumbs"><a href="/instances">Instances</a> / \(HTML.h(s.name))</div>
            <div class="toolbar"><h1 id="instance-title">\(HTML.h(s.name))</h1>
            <span class="state \(s.state.rawValue)" id="instance-state">\(s.state.rawValue)</span><span class="spacer"></span>
            \(power)
            <details class="menu" id="more"><summary class="button">More ▾</summary><div>
            <a href="\(base)/rebuild" id="menu-rebuild">Rebuild</a>
            \(HTML.button("Delete instance", action: base + "/delete", session: session, confirm: "Delete instance '\(s.name)' and its drive?"))
            </div></details></div>
            \(jobBox)
            <div class="tabs">\(tabs)</div>
            \(content)
            """
    }

    static func overview(_ d: InstanceDetails, session: Session?) -> String {
        let s = d.summary
        let notices = d.notices.map { (n: String) -> String in "<div class=\"notice warning\">\(HTML.h(n))</div>" }
            .joined()
        return """
            \(notices)<div class="card"><dl class="props">
            <dt>ID</dt><dd class="mono">\(HTML.h(s.id))</dd>
            <dt>State</dt><dd>\(s.state.rawValue)</dd>
            <dt>Virtual size</dt><dd>\(HTML.bytes(s.virtualSize))</dd>
            <dt>Drive</dt><dd class="mono" id="drive-path">\(HTML.h(s.drivePath))</dd>
            <dt>Boot image</dt><dd>\(HTML.h(s.baseImage ?? "none (own drive)"))</dd>
            <dt>Quota use</dt><dd>\(QuotaGauge.render(d))</dd>
            <dt>Held only by snapshots</dt><dd>\(HTML.bytes(d.snapshotOnlyBytes)) (not counted against the quota)</dd>
            <dt>Host file</dt><dd>\(HTML.bytes(d.fileBytes))</dd>
            <dt>Snapshots</dt><dd>\(d.snapshots.count) of at most \(d.maxSnapshots)</dd>
            <dt>Audit</dt><dd>\(s.audit.rawValue)</dd>
            </dl></div>
            """
    }

    static func snapshots(_ d: InstanceDetails, session: Session?) -> String {
        let name = d.summary.name
        let scale = max(1, d.snapshots.compactMap { $0.space?.referenced }.max() ?? 1)
        let rows = d.snapshots.reversed().map { snap -> String in
            let action = HTML.path("instances", name, "snapshots", snap.name)
            let space =
                snap.space.map { f -> String in
                    let unique = min(f.unique, f.referenced)
                    let shared = f.referenced - unique
                    return HTML.bar(
                        [(Double(unique) / Double(scale), "unique"), (Double(shared) / Double(scale), "shared")],
                        label: "unique \(HTML.bytes(unique)) · shared \(HTML.bytes(shared))",
                        title: "referenced \(HTML.bytes(f.referenced)), written since previous \(HTML.bytes(f.written))"
                    )
                } ?? "<span class=\"muted\">—</span>"
            let pin =
                snap.pinned
                ? HTML.button("Unpin", action: action + "/unpin", session: session)
                : HTML.button("Pin", action: action + "/pin", session: session)
            return """
                <tr data-snapshot="\(HTML.h(snap.name))"><td class="snapshot-name">\(HTML.h(snap.name))</td>
                <td>\(HTML.date(snap.createdAt))</td><td>\(snap.pinned ? "📌 pinned" : "")</td><td>\(space)</td>
                <td class="right">\(pin) \(HTML.button("Delete", action: action + "/delete", session: session, confirm: "Delete snapshot '\(snap.name)'?"))</td></tr>
                """
        }.joined()
        let empty = d.snapshots.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No snapshots.</td></tr>" : ""
        return """
            <div class="toolbar"><span class="muted">\(d.snapshots.count) of at most \(d.maxSnapshots) snapshots; \
            creating one more deletes the oldest unpinned one.</span><span class="spacer"></span>
            <button class="primary" data-open="create-snapshot" id="open-create-snapshot">Create Snapshot</button></div>
            <table id="snapshots"><thead><tr><th>Name</th><th>Created</th><th>Pinned</th><th>Space (unique / shared)</th>
            <th></th></tr></thead><tbody>\(rows)\(empty)</tbody></table>
            <p class="muted">Unique: freed by deleting that snapshot alone. Shared: also held by the drive or other snapshots.</p>
            <dialog id="create-snapshot"><form method="post" action="\(HTML.path("instances", name, "snapshots"))">
            \(HTML.csrfField(session))<h2>Create Snapshot</h2>
            <label for="snapshot-name">Snapshot name</label>
            <input type="text" id="snapshot-name" name="name" required maxlength="64">
            <p><button class="primary" id="create-snapshot-submit">Create Snapshot</button>
            <button type="button" data-close>Cancel</button></p></form></dialog>
            """
    }

    static func auditTable(_ entries: [AuditEntry]) -> String {
        let rows = entries.reversed().map { (e: AuditEntry) -> String in
            "<tr><td>\(HTML.date(e.at))</td><td>\(HTML.h(e.operation))</td><td>\(HTML.h(e.detail))</td></tr>"
        }.joined()
        let empty =
            entries.isEmpty
            ? "<tr><td colspan=\"3\" class=\"muted\">Nothing logged (audit mode may be off).</td></tr>" : ""
        return """
            <table id="audit"><thead><tr><th>When</th><th>Operation</th><th>Detail</th></tr></thead>
            <tbody>\(rows)\(empty)</tbody></table>
            """
    }
}
