import Foundation
import Instances

/// My images: imported and exported images, every instance snapshot, upload with progress, delete.
enum ImagesPage {
    static func render(_ entries: [LibraryEntry], maxUpload: Int64, session: Session?) -> String {
        let rows = entries.map { e -> String in
            let delete =
                e.kind == .image
                ? HTML.button(
                    "Delete", action: HTML.path("images", e.name, "delete"), session: session,
                    confirm: "Delete image '\(e.name)'?")
                : "<span class=\"muted\">lives in its drive</span>"
            return """
                <tr data-image="\(HTML.h(e.name))"><td>\(HTML.h(e.name))</td><td>\(e.kind == .image ? "image" : "instance snapshot")</td>
                <td>\(HTML.h(e.origin))</td><td>\(HTML.bytes(e.virtualSize))</td><td>\(HTML.date(e.createdAt))</td>
                <td class="right">\(delete)</td></tr>
                """
        }.joined()
        let empty =
            entries.isEmpty ? "<tr><td colspan=\"6\" class=\"muted\">Nothing yet: upload an image.</td></tr>" : ""
        return """
            <h1>My images</h1>
            <form id="upload-form" class="card"><h2>Upload an image</h2>
            <label for="upload-name">Name</label><input type="text" id="upload-name" name="name" required maxlength="64">
            <label for="upload-format">Format</label>
            <select id="upload-format" name="format"><option value="">detect</option><option value="raw">raw</option><option value="qcow2">qcow2</option></select>
            <label for="upload-file">File (at most \(HTML.bytes(UInt64(maxUpload))); checked like <code>vmimg images import</code>)</label>
            <input type="file" id="upload-file" name="file" required>
            <p><button class="primary" id="upload-submit">Upload</button></p>
            <div id="upload-progress" class="job" hidden>\(HTML.bar([(0, "job")], label: ""))</div></form>
            <table id="images"><thead><tr><th>Name</th><th>Kind</th><th>Origin</th><th>Size</th><th>Created</th><th></th></tr>
            </thead><tbody>\(rows)\(empty)</tbody></table>
            """
    }
}

/// The token prompt that opens a UI session.
enum LoginPage {
    static func render(error: String?) -> String {
        """
        <div class="card" style="max-width:520px"><h1>vmimg console</h1>
        \(error.map { (e: String) -> String in "<div class=\"notice error\">\(HTML.h(e))</div>" } ?? "")
        <p>Paste the access token (<code>vmimg console --print-token</code>).</p>
        <form method="post" action="/login"><label for="token">Access token</label>
        <input type="password" id="token" name="token" autocomplete="off" required>
        <p><button class="primary" id="login">Open console</button></p></form></div>
        """
    }
}
