"""A real HTTP server on 127.0.0.1 serving fixture pages, including every way a page can go wrong."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from knowledge import DEMO_SITE

SJIS_PAGE = (
    "<html><head><meta charset='shift_jis'><title>休暇</title></head><body><main><h1>年次休暇</h1>"
    "<p>年次有給休暇は20日です。</p></main></body></html>"
)
GB_PAGE = "<html><head><title>假期</title></head><body><p>员工每年享有十五天带薪年假。</p></body></html>"


class FixtureHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/html; charset=utf-8",
        headers: dict | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path.startswith("/site/"):
            file = DEMO_SITE / path.removeprefix("/site/")
            if file.is_file():
                return self._send(200, file.read_bytes())
            return self._send(404, b"not found")
        if path == "/500":
            return self._send(500, b"boom")
        if path == "/slow":
            time.sleep(3)
            return self._send(200, b"<p>too late</p>")
        if path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
            return None
        if path == "/pdf":
            return self._send(200, b"%PDF-1.7\x00\x01binary", "application/pdf")
        if path == "/binary-as-html":
            return self._send(200, b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "text/html")
        if path == "/huge":
            return self._send(200, b"<p>" + b"a" * 3_000_000 + b"</p>")
        if path == "/sjis":
            return self._send(200, SJIS_PAGE.encode("shift_jis"), "text/html")
        if path == "/gb2312-mislabeled":
            return self._send(200, GB_PAGE.encode("gb2312"), "text/html; charset=utf-8")
        if path == "/injection":
            body = (
                b"<html><body><main><p>Leave is <b>25 days</b>.<script>alert('x')</script>"
                b"<img src=x onerror=alert(1)></p></main></body></html>"
            )
            return self._send(200, body)
        return self._send(404, b"not found")


class FixtureServer:
    def __enter__(self) -> FixtureServer:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), FixtureHandler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def demo_file(relative: str) -> Path:
    return DEMO_SITE / relative
