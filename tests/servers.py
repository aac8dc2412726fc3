"""A real HTTP server on 127.0.0.1 serving fixture pages, including every way a page can go wrong."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

from knowledge import DEMO_SITE

SJIS_PAGE = (
    "<html><head><meta charset='shift_jis'><title>休暇</title></head><body><main><h1>年次休暇</h1>"
    "<p>年次有給休暇は20日です。</p></main></body></html>"
)
GB_PAGE = "<html><head><title>假期</title></head><body><p>员工每年享有十五天带薪年假。</p></body></html>"
PAGE = (
    "<html><head><title>{title}</title></head><body><main><h1>{title}</h1><p>{text}</p></main></body></html>"
)
EUCJP_PAGE = PAGE.format(title="住宅手当", text="住宅手当は月額二万円です。")
BIG5_PAGE = PAGE.format(title="年假", text="員工每年享有十五天特休假。")
CP1252_PAGE = PAGE.format(title="Congés", text="Les congés d'été sont posés avant le 15 avril, café compris.")
MALFORMED_PAGE = (
    b"<html><body><main><h1>Badges<h2>Lost badge</h1><p>A lost badge costs 15 euros to replace.<li>Ask "
    b"the reception.</div></div></span><table><tr><td>Paris<td>Floor 2</table><p>Unclosed <b>bold"
)
INJECTION_PAGE = (
    b"<html><head><style>p{color:red}</style><script>document.write('<p>secret 99 days</p>')</script>"
    b"</head><body><main><h1>Rules</h1><p>Leave is <b>25 days</b>.<script>alert('x')</script>"
    b"<img src=x onerror=alert(1)></p><iframe src='javascript:alert(2)'>iframe text</iframe>"
    b"<noscript>enable js</noscript><p>&lt;script&gt;alert(3)&lt;/script&gt; is shown as text.</p>"
    b"</main></body></html>"
)


class FixtureHandler(BaseHTTPRequestHandler):
    hits: ClassVar[Counter] = Counter()  # requests per path, so tests can check "fetched once"
    changing_version = 1  # /changing serves this version, with an ETag per version (0: HTTP 503)
    token = "s3cret-token"  # /auth wants "Authorization: Bearer <token>"

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
        type(self).hits[path] += 1  # a subclass with its own `hits` counts its own requests
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
        if path == "/redirect":  # /redirect?to=URL: a 302 to any URL, relative or absolute
            target = parse_qs(urlsplit(self.path).query).get("to", ["/"])[0]
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
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
            return self._send(200, INJECTION_PAGE)
        if path == "/empty":
            return self._send(200, b"")
        if path == "/malformed":
            return self._send(200, MALFORMED_PAGE)
        if path == "/eucjp":
            return self._send(200, EUCJP_PAGE.encode("euc_jp"), "text/html")
        if path == "/big5":
            return self._send(200, BIG5_PAGE.encode("big5"), "text/html")
        if path == "/cp1252":
            return self._send(200, CP1252_PAGE.encode("cp1252"), "text/html")
        if path == "/changing":
            if FixtureHandler.changing_version == 0:  # the page's server is down for a while
                return self._send(503, b"maintenance")
            etag = f'"v{FixtureHandler.changing_version}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return None
            body = PAGE.format(title="News", text=f"Version {FixtureHandler.changing_version} of the page.")
            return self._send(200, body.encode(), headers={"ETag": etag})
        if path == "/auth":
            if self.headers.get("Authorization") != f"Bearer {FixtureHandler.token}":
                return self._send(401, b"who are you?")
            return self._send(
                200,
                b"<html><body><main><p>The intranet secret is 42 parking spaces.</p></main></body></html>",
            )
        if path == "/huge50":  # 50 MB with no Content-Length: the reader must stop at its byte cap
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            try:
                for _ in range(50):
                    self.wfile.write(b"<p>" + b"x" * (1 << 20) + b"</p>")
            except (BrokenPipeError, ConnectionResetError):
                pass
            return None
        return self._send(404, b"not found")


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up on purpose (timeouts, byte caps) are part of the tests, not errors."""


class FixtureServer:
    def __init__(
        self, handler: type[BaseHTTPRequestHandler] = FixtureHandler, host: str = "127.0.0.1"
    ) -> None:
        self.handler = handler
        self.host = host  # any 127.x.y.z address works on Linux: a second "machine" for redirect tests

    def __enter__(self) -> FixtureServer:
        self.httpd = QuietServer((self.host, 0), self.handler)
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
