import Hummingbird

/// The console's only static files, compiled in (nothing is fetched from elsewhere).
enum Assets {
    static func response(_ name: String) -> Response? {
        let (type, text): (String, String)
        switch name {
        case "console.css": (type, text) = ("text/css; charset=utf-8", css)
        case "console.js": (type, text) = ("text/javascript; charset=utf-8", script)
        default: return nil
        }
        return Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static let css = """
        :root { --ink:#1d2733; --muted:#5b6b7c; --line:#d8dee6; --bg:#f4f6f9; --accent:#1769c2; --warn:#b85c00;
          --bad:#b3261e; --ok:#1f7a3a; --unique:#1769c2; --shared:#9cc3ee; --active:#2e8b57; }
        * { box-sizing: border-box; }
        body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--ink); background:var(--bg); }
        header { display:flex; align-items:center; gap:24px; padding:10px 24px; background:#17212b; color:#fff; }
        header a { color:#dbe6f2; text-decoration:none; margin-right:16px; }
        header a.on, header a:hover { color:#fff; border-bottom:2px solid #6fb1ff; }
        .brand { font-weight:700; font-size:16px; } .brand span { font-weight:400; color:#8fb8e6; }
        nav { display:flex; align-items:center; flex:1; } nav form { margin-left:auto; }
        main { max-width:1100px; margin:20px auto; padding:0 24px; }
        h1 { font-size:22px; margin:8px 0 16px; } h2 { font-size:17px; margin:20px 0 10px; }
        .crumbs { color:var(--muted); margin-bottom:4px; } .crumbs a { color:var(--accent); }
        table { width:100%; border-collapse:collapse; background:#fff; border:1px solid var(--line); }
        th, td { text-align:left; padding:8px 10px; border-bottom:1px solid var(--line); vertical-align:middle; }
        th { background:#eef2f6; font-weight:600; color:var(--muted); font-size:12px; text-transform:uppercase; }
        a { color:var(--accent); }
        button, .button { font:inherit; padding:6px 12px; border-radius:4px; border:1px solid #b9c4d0; background:#fff;
          color:var(--ink); cursor:pointer; text-decoration:none; display:inline-block; }
        button.primary, .button.primary { background:var(--accent); border-color:var(--accent); color:#fff; }
        button.danger { background:var(--bad); border-color:var(--bad); color:#fff; }
        button.link { border:none; background:none; color:#dbe6f2; padding:0; }
        button:disabled { opacity:.5; cursor:not-allowed; }
        form.inline { display:inline; }
        .card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:16px; margin-bottom:16px; }
        .tabs { display:flex; gap:4px; border-bottom:1px solid var(--line); margin-bottom:16px; }
        .tabs a { padding:8px 14px; text-decoration:none; color:var(--muted); border:1px solid transparent; border-bottom:none;
          border-radius:4px 4px 0 0; }
        .tabs a.on { background:#fff; color:var(--ink); border-color:var(--line); margin-bottom:-1px; }
        .state { padding:2px 8px; border-radius:10px; font-size:12px; font-weight:600; }
        .state.running { background:#dff3e6; color:var(--ok); } .state.stopped { background:#eceff3; color:var(--muted); }
        .bar { height:10px; background:#e6ebf0; border-radius:5px; overflow:hidden; display:flex; min-width:140px; }
        .seg { display:block; height:100%; } .seg.unique { background:var(--unique); } .seg.shared { background:var(--shared); }
        .seg.active { background:var(--active); } .seg.over { background:var(--bad); } .seg.job { background:var(--accent); }
        .bar-label { font-size:12px; color:var(--muted); margin-top:2px; }
        .notice { padding:10px 14px; border-radius:4px; margin-bottom:12px; border:1px solid; }
        .notice.info { background:#e8f2fd; border-color:#b6d4f5; } .notice.warning { background:#fff4e5; border-color:#f3c98b; }
        .notice.error { background:#fdecea; border-color:#f1b0ab; }
        .warning-box { background:#fff4e5; border:1px solid #f3c98b; border-radius:6px; padding:12px 16px; margin:12px 0; }
        .warning-box h3 { margin:0 0 6px; color:var(--warn); font-size:15px; }
        .toolbar { display:flex; gap:8px; align-items:center; margin-bottom:12px; } .toolbar .spacer { flex:1; }
        dl.props { display:grid; grid-template-columns:180px 1fr; gap:6px 12px; margin:0; } dl.props dt { color:var(--muted); }
        details.menu { position:relative; display:inline-block; } details.menu summary { list-style:none; }
        details.menu > div { position:absolute; right:0; background:#fff; border:1px solid var(--line); border-radius:4px;
          box-shadow:0 4px 14px rgba(0,0,0,.12); min-width:160px; z-index:5; }
        details.menu > div a, details.menu > div button { display:block; width:100%; text-align:left; padding:8px 12px;
          border:none; border-radius:0; background:#fff; color:var(--ink); text-decoration:none; }
        details.menu > div a:hover { background:#eef2f6; }
        dialog { border:1px solid var(--line); border-radius:8px; padding:20px; min-width:380px; }
        dialog::backdrop { background:rgba(10,20,30,.45); }
        label { display:block; margin:8px 0 4px; font-weight:600; }
        input[type=text], input[type=password], select { font:inherit; padding:6px 8px; border:1px solid #b9c4d0; border-radius:4px; width:100%; max-width:420px; }
        .muted { color:var(--muted); } .right { text-align:right; } .mono { font-family:ui-monospace, monospace; font-size:12px; }
        .steps { display:flex; gap:8px; margin-bottom:12px; color:var(--muted); } .steps span.on { color:var(--ink); font-weight:600; }
        .job { margin:10px 0; }
        """

    static let script = """
        'use strict';
        const csrf = () => document.querySelector('meta[name=csrf-token]').content;
        document.addEventListener('DOMContentLoaded', () => {
          for (const b of document.querySelectorAll('[data-open]')) {
            b.addEventListener('click', () => { const d = document.getElementById(b.dataset.open); d.showModal();
              const i = d.querySelector('input[type=text]'); if (i) i.focus(); });
          }
          for (const b of document.querySelectorAll('[data-close]')) b.addEventListener('click', () => b.closest('dialog').close());
          for (const f of document.querySelectorAll('form[data-confirm]')) {
            f.addEventListener('submit', e => { if (!confirm(f.dataset.confirm)) e.preventDefault(); });
          }
          for (const el of document.querySelectorAll('[data-autosubmit]')) el.addEventListener('change', () => el.form.submit());
          for (const el of document.querySelectorAll('[data-job]')) watchJob(el.dataset.job, el);
          const up = document.getElementById('upload-form'); if (up) up.addEventListener('submit', upload);
          const confirmBox = document.getElementById('confirm'), go = document.getElementById('rebuild-button');
          if (confirmBox && go) { const sync = () => { go.disabled = !confirmBox.checked; }; confirmBox.addEventListener('change', sync); sync(); }
        });
        function setBar(box, fraction, text) {
          box.querySelector('.seg').style.width = Math.round(fraction * 100) + '%';
          box.querySelector('.bar-label').textContent = text;
        }
        function watchJob(id, box) {
          const poll = async () => {
            const r = await fetch('/api/v1/jobs/' + encodeURIComponent(id), { credentials: 'same-origin' });
            const job = await r.json();
            if (!r.ok) { setBar(box, 0, job.detail || 'job unknown'); return; }
            setBar(box, job.progress, job.kind + ' ' + job.subject + ': ' + job.phase + ' (' + Math.round(job.progress * 100) + '%)');
            if (job.state === 'running') { setTimeout(poll, 400); return; }
            if (job.state === 'failed') { box.classList.add('failed'); setBar(box, 1, 'failed: ' + job.problem.detail); box.dataset.state = 'failed'; return; }
            box.dataset.state = 'succeeded';
            if (box.dataset.done) location.href = box.dataset.done;
          };
          poll();
        }
        function upload(e) {
          e.preventDefault();
          const form = e.target, file = form.querySelector('input[type=file]').files[0], box = document.getElementById('upload-progress');
          if (!file) return;
          const q = new URLSearchParams({ name: form.elements.name.value });
          if (form.elements.format.value) q.set('format', form.elements.format.value);
          const xhr = new XMLHttpRequest();
          xhr.open('POST', '/api/v1/images?' + q.toString());
          xhr.setRequestHeader('X-CSRF-Token', csrf());
          xhr.setRequestHeader('Content-Type', 'application/octet-stream');
          box.hidden = false;
          xhr.upload.onprogress = ev => { if (ev.lengthComputable) setBar(box, ev.loaded / ev.total,
            'uploading ' + Math.round(100 * ev.loaded / ev.total) + '% of ' + file.size + ' bytes'); };
          xhr.onload = () => {
            let body = {}; try { body = JSON.parse(xhr.responseText); } catch (_) {}
            if (xhr.status === 202) { box.dataset.done = '/images'; watchJob(body.id, box); }
            else { setBar(box, 1, 'failed: ' + (body.detail || xhr.statusText)); box.dataset.state = 'failed'; }
          };
          xhr.onerror = () => setBar(box, 1, 'failed: connection error');
          xhr.send(file);
        }
        """
}
