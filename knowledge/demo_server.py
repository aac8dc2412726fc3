"""`kate demo-site`: the demo intranet served on 127.0.0.1, with ETags so conditional GETs work.

A deliberately small static server (GET/HEAD only, files under `demo_site/` only, no directory
listings beyond the home page): it is what the default `sources.yml` points at.
"""

from __future__ import annotations

import hashlib
import html
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import DEMO_SITE

TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".txt": "text/plain"}


def demo_pages(root: Path = DEMO_SITE) -> list[Path]:
    return sorted(p for p in root.glob("*/*.html"))


class DemoSiteHandler(BaseHTTPRequestHandler):
    root: Path = DEMO_SITE
    server_version = "KateDemoIntranet/1.0"

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet: the demo site runs beside Kate's own output

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if path in ("/", "/index.html"):
            body = self._home().encode("utf-8")
            ctype, mtime = TYPES[".html"], None
        else:
            file = (self.root / path.lstrip("/")).resolve()
            if self.root.resolve() not in file.parents or not file.is_file() or file.suffix not in TYPES:
                self.send_error(404, "No such page on the demo intranet")
                return
            body = file.read_bytes()
            ctype, mtime = TYPES[file.suffix], file.stat().st_mtime
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(mtime, usegmt=True))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _home(self) -> str:
        names = [p.relative_to(self.root).as_posix() for p in demo_pages(self.root)]
        links = "\n".join(f'<li><a href="/{n}">{html.escape(n)}</a></li>' for n in names)
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Northwind People Hub</title>'
            f"</head><body><h1>Northwind People Hub</h1><ul>{links}</ul></body></html>"
        )


def serve_demo_site(
    port: int = 8765, host: str = "127.0.0.1", root: Path = DEMO_SITE
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start the demo intranet (or the pages of another `root`, laid out the same way: benchmarks) in a
    background thread; `server.shutdown()` stops it."""
    handler = type("DemoSiteHandlerAt", (DemoSiteHandler,), {"root": root})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="kate-demo-site", daemon=True)
    thread.start()
    return server, thread
