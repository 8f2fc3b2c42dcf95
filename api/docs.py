"""GET /openapi.json and GET /docs: the OpenAPI document and a self-contained page that renders it (no CDN)."""

from __future__ import annotations

from flask import Blueprint, Response, redirect

from trainyard.api.headers import inline_hashes
from trainyard.api.openapi import openapi_document
from trainyard.api.urls import PREFIX

bp = Blueprint("docs", __name__)

# One static page: it fetches the document and lists every operation with its
# parameters, body and responses; schemas open in <details>. Nothing is loaded from
# outside the server, so it works on an offline machine.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trainyard API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .op{border:1px solid #ddd;border-radius:6px;margin:.6em 0;padding:.5em .8em}
.m{display:inline-block;min-width:4.5em;font-weight:bold;text-transform:uppercase}
.get{color:#1a7f37}.post{color:#0550ae}.delete{color:#cf222e} code,pre{font:13px ui-monospace,monospace}
pre{background:#f6f8fa;padding:.6em;overflow:auto;max-height:30em} .lock{color:#9a6700;font-size:12px}
</style></head><body>
<h1>trainyard API</h1><p id="desc"></p><p>Authenticate with <code>Authorization: Bearer TOKEN</code>.
The raw document: <a href="openapi.json">openapi.json</a>.</p><div id="ops">loading…</div>
<h2>Schemas</h2><div id="schemas"></div>
<script>
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const ref = o => o && o.$ref ? '<a href="#schema-' + o.$ref.split("/").pop() + '">' + o.$ref.split("/").pop() + '</a>'
                            : '<code>' + esc(JSON.stringify(o)) + '</code>';
fetch("openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("desc").textContent = doc.info.description || "";
  let html = "";
  for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) {
    const open = op.security && op.security.length === 0;
    html += '<div class="op"><span class="m ' + method + '">' + method + '</span><code>' + esc(path) + '</code> — '
         + esc(op.summary || "") + (open ? '' : ' <span class="lock">token</span>');
    for (const p of op.parameters || []) html += '<div>' + esc(p.in) + ' <code>' + esc(p.name) + '</code>'
         + (p.required ? ' (required)' : '') + ': ' + ref(p.schema) + ' ' + esc(p.description || "") + '</div>';
    if (op.requestBody) for (const [media, c] of Object.entries(op.requestBody.content))
      html += '<div>body <code>' + esc(media) + '</code>: ' + ref(c.schema) + '</div>';
    html += '<div>responses: ' + Object.entries(op.responses).map(([code, r]) => '<b>' + code + '</b> '
         + (r.content ? Object.values(r.content).map(c => ref(c.schema)).join(" ") : esc(r.description))).join("; ") + '</div></div>';
  }
  document.getElementById("ops").innerHTML = html;
  document.getElementById("schemas").innerHTML = Object.entries(doc.components.schemas).map(([name, s]) =>
    '<details id="schema-' + name + '"><summary>' + name + '</summary><pre>' + esc(JSON.stringify(s, null, 2)) + '</pre></details>').join("");
});
</script></body></html>
"""


# The page's own script and style, and the document it fetches; nothing else (no inline handlers, no framing).
CSP = (f"default-src 'none'; script-src {inline_hashes(PAGE, 'script')}; style-src {inline_hashes(PAGE, 'style')}; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


@bp.get("/openapi.json")
def get_openapi():
    """The OpenAPI 3.1 document of every route (no auth)."""
    return openapi_document()


@bp.get("/docs")
def get_docs():
    """The offline docs page."""
    return Response(PAGE, mimetype="text/html", headers={"Content-Security-Policy": CSP})


# Where a browser that opens the API's root (/api/v1) is sent: the one place that decides it (a dashboard may
# take its place later). A 302, so that a browser does not remember it.
HOME = f"{PREFIX}/docs"


@bp.get("/")
def get_home():
    """/api/v1/ (and /api/v1, which Flask sends here): a redirect to the API's home page, HOME."""
    return redirect(HOME, 302)
