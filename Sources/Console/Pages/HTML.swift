import Foundation
import Hummingbird
import Instances

/// Server-side rendered pages: plain strings with every interpolated value escaped by ``h(_:)``.
enum HTML {
    /// Escapes text for element content and double-quoted attributes.
    static func h(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    static func bytes(_ value: UInt64) -> String { formatBytes(Int64(clamping: value)) }

    static func date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }

    /// A page response. `Content-Security-Policy` keeps everything local: no CDN, no inline script.
    static func page(title: String, session: Session?, notices: [Notice], active: String, _ body: String) -> Response {
        let noticeHTML = notices.map { notice -> String in
            "<div class=\"notice \(notice.level.rawValue)\" role=\"status\">\(h(notice.text))</div>"
        }.joined()
        let nav =
            session == nil
            ? ""
            : """
            <nav><a href="/instances" class="\(active == "instances" ? "on" : "")">Instances</a>\
            <a href="/images" class="\(active == "images" ? "on" : "")">My images</a>\
            <form method="post" action="/logout" class="inline">\(csrfField(session))<button class="link">Log out</button></form></nav>
            """
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="csrf-token" content="\(h(session?.csrf ?? ""))">
            <title>\(h(title)) · vmimg console</title>
            <link rel="stylesheet" href="/static/console.css">
            <script src="/static/console.js" defer></script>
            </head><body>
            <header><a class="brand" href="/instances">vmimg <span>Cloud</span></a>\(nav)</header>
            <main>\(noticeHTML)\(body)</main>
            </body></html>
            """
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8",
                .contentSecurityPolicy:
                    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
                .cacheControl: "no-store",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func csrfField(_ session: Session?) -> String {
        "<input type=\"hidden\" name=\"_csrf\" value=\"\(h(session?.csrf ?? ""))\">"
    }

    /// A post form holding one button.
    static func button(
        _ label: String, action: String, session: Session?, style: String = "", confirm: String? = nil,
        id: String? = nil
    )
        -> String
    {
        let confirmAttribute: String = confirm.map { " data-confirm=\"\(h($0))\"" } ?? ""
        let idAttribute: String = id.map { " id=\"\(h($0))\"" } ?? ""
        return """
            <form method="post" action="\(h(action))" class="inline"\(confirmAttribute)>\(csrfField(session))\
            <button class="\(style)"\(idAttribute)>\(h(label))</button></form>
            """
    }

    /// A horizontal bar: `parts` are (fraction, CSS class) stacked left to right.
    static func bar(_ parts: [(Double, String)], label: String, title: String = "") -> String {
        let segments = parts.map { fraction, style -> String in
            let percent = max(0, min(100, fraction * 100))
            return "<span class=\"seg \(style)\" style=\"width:\(String(format: "%.2f", percent))%\"></span>"
        }.joined()
        return "<div class=\"bar\" title=\"\(h(title))\">\(segments)</div><div class=\"bar-label\">\(h(label))</div>"
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    static func path(_ segments: String...) -> String { "/" + segments.map(escape).joined(separator: "/") }
}
