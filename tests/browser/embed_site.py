"""The company's own website for the widget's browser tests: a page on another site
(``http://localhost:PORT``, while the portal is served at ``http://127.0.0.1:PORT``) that
pastes the snippet of docs/embedding.md under the CSP the docs tell the web team to set."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PAGE = """<!doctype html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example Ltd: pay an invoice</title></head>
<body>
<header><p>Example Ltd</p></header>
<main>
<h1>Pay an invoice</h1>
<div data-relance-pay><a href="{portal}/">Pay an invoice on our payment portal</a></div>
<script src="{portal}/embed.js" async></script>
</main>
</body>
</html>
"""


@contextmanager
def host_site(portal: str) -> Iterator[str]:
    """Serve the host page; yields its origin."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            lang = "fr" if "lang=fr" in self.path else "en"
            body = PAGE.format(portal=portal, lang=lang).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'self'; script-src 'self' {portal}; frame-src {portal}",
            )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def chromium_profile(directory: Path, portal: str, host: str, *, block_frame: bool) -> Path:
    """A Chromium profile that blocks third-party cookies (as Chrome's incognito windows
    and Safari do) and, with ``block_frame``, every cookie of the portal inside the host
    site's pages, partitioned ones included (a browser without CHIPS); the portal keeps
    its cookies at the top level."""
    profile: dict[str, object] = {"cookie_controls_mode": 1, "block_third_party_cookies": True}
    if block_frame:
        profile["content_settings"] = {
            "exceptions": {"cookies": {f"{portal},{host}": {"setting": 2}}}
        }
    (directory / "Default").mkdir(parents=True, exist_ok=True)
    (directory / "Default" / "Preferences").write_text(json.dumps({"profile": profile}))
    return directory
