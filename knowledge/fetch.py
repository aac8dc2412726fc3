"""Fetch one intranet page safely: bounded in time, size and redirects, decoded in the right charset.

Issue-level robustness lives here so every caller gets it: a dead, slow, huge or binary page yields a
`FetchError` whose message can be shown to an admin, never a hang or a crash.
"""

from __future__ import annotations

import base64
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from charset_normalizer import from_bytes
from charset_normalizer.utils import is_multi_byte_encoding

from .fetch_policy import DEFAULT_POLICY, FetchPolicy, PolicyRefused

TEXT_TYPES = {"text/html": "html", "application/xhtml+xml": "html", "text/plain": "text"}
_KANA = re.compile("[\u3041-\u3096\u30a1-\u30fa]{2}")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)


class FetchError(RuntimeError):
    """A page could not be read; `str(error)` says why in words an admin understands, and
    `http_status` is the server's status when it answered at all."""

    def __init__(self, message: str, http_status: int = 0) -> None:
        super().__init__(message)
        self.http_status = http_status


@dataclass(frozen=True)
class FetchedPage:
    url: str
    final_url: str
    status: int
    kind: str  # "html" or "text"
    text: str
    encoding: str
    n_bytes: int
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        """The server answered 304 to a conditional GET: the cached text is still current."""
        return self.status == 304


class InvalidURL(ValueError):
    """A URL Kate will not fetch or store; the message says why."""


def normalize_url(url: str) -> str:
    """The one spelling of an acceptable URL: http(s) only, no credentials, lower-case scheme and host,
    no default port, no fragment, "/" for an empty path. Raises `InvalidURL`."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidURL("empty URL")
    url = url.strip()
    if len(url) > 2048:
        raise InvalidURL("URL longer than 2,048 characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidURL(f"{url!r}: URLs cannot contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"{url!r}: malformed URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURL(f"{url!r}: only http and https URLs are allowed")
    if not parts.hostname:
        raise InvalidURL(f"{url!r}: the URL has no host")
    if parts.username or parts.password:
        raise InvalidURL(
            f"{url!r}: credentials in URLs are refused; set `auth: basic:ENV_VAR` on the source instead"
        )
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def validate_url(url: str) -> str:
    """`normalize_url` for a fetch: a refused URL is a `FetchError` like any other unreadable page."""
    try:
        return normalize_url(url)
    except InvalidURL as exc:
        raise FetchError(str(exc)) from None


def auth_headers(auth: str) -> dict[str, str]:
    """Request headers for a source's `auth` ("basic:ENV", "bearer:ENV", "cookie:ENV"); the variable
    holds the secret ("user:password" for basic). A missing variable is an error that names it, not
    the secret."""
    if not auth:
        return {}
    kind, _, env = auth.partition(":")
    secret = os.environ.get(env, "")
    if not secret:
        raise FetchError(f"the source's credentials variable {env} is not set")
    if kind == "basic":
        return {"Authorization": "Basic " + base64.b64encode(secret.encode("utf-8")).decode("ascii")}
    if kind == "bearer":
        return {"Authorization": f"Bearer {secret}"}
    if kind == "cookie":
        return {"Cookie": secret}
    raise FetchError(f"unknown auth kind {kind!r}")


def decode_body(body: bytes, declared: str | None) -> tuple[str, str]:
    """Bytes -> (text, encoding). The declared charset (header, then <meta>) wins when the bytes decode
    cleanly with it; otherwise the charset is detected (Shift_JIS, GB2312, Big5, cp1252 pages often lie)."""
    candidates = [declared] if declared else []
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    for name in candidates:
        try:
            return body.decode(name), name.lower()
        except (LookupError, UnicodeDecodeError):
            continue
    if body.startswith(b"\xef\xbb\xbf"):
        return body[3:].decode("utf-8", "replace"), "utf-8"
    try:
        return body.decode("utf-8"), "utf-8"  # strict: legacy encodings almost never decode as valid UTF-8
    except UnicodeDecodeError:
        pass
    return _detect(body)


def _detect(body: bytes) -> tuple[str, str]:
    """Undeclared legacy encoding. Detection ranks the candidates; when Western European windows-1252 ties
    with the best one, or detection has no language evidence at all (short pages), windows-1252 wins, as
    it does in browsers (WHATWG's default for unlabeled Western pages)."""
    matches = list(from_bytes(body))
    if not matches:
        return body.decode("utf-8", "replace"), "utf-8"
    best = matches[0]
    if is_multi_byte_encoding(best.encoding):
        # CJK byte ranges overlap (EUC-JP bytes decode as valid EUC-KR). Among equally clean candidates,
        # a Japanese decoding that yields kana wins: kana never come out of a wrong decoding of
        # Korean or Chinese text, while Hangul comes out of a wrong decoding of Japanese.
        clean = [m for m in matches if is_multi_byte_encoding(m.encoding) and m.chaos <= best.chaos + 0.01]
        for m in clean:
            if _KANA.search(str(m)):
                return str(m), m.encoding
        return str(best), best.encoding
    tied = [
        m for m in matches if abs(m.chaos - best.chaos) < 0.01 and abs(m.coherence - best.coherence) < 0.01
    ]
    if any("cp1252" in m.could_be_from_charset for m in tied) or best.coherence == 0:
        try:
            return body.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    return str(best), best.encoding


def _looks_binary(body: bytes) -> bool:
    return b"\x00" in body[:4096]


def fetch_page(
    url: str,
    *,
    connect_timeout: float = 3.05,
    read_timeout: float = 10.0,
    total_timeout: float = 20.0,
    max_bytes: int = 5_000_000,
    max_redirects: int = 5,
    session: requests.Session | None = None,
    etag: str = "",
    last_modified: str = "",
    auth: str = "",
    policy: FetchPolicy | None = None,
) -> FetchedPage:
    """GET one page. `total_timeout` bounds the whole download (a server dripping a byte a second
    never trips a read timeout). With the `etag`/`last_modified` of a cached copy the GET is
    conditional, and an unchanged page comes back as a 304 with no text. `auth` names the source's
    credentials (`bearer:ENV_VAR`...), read from the environment here and never logged, and never sent
    to another host a redirect points at. `policy` (the fetching policy, `fetch_policy`) is checked on
    the resolved addresses of the URL and of every redirect hop, before connecting to it."""
    url = validate_url(url)
    own = session is None
    session = session or requests.Session()
    deadline = time.monotonic() + total_timeout
    headers = {"User-Agent": "Kate-HR-assistant/0.1 (+intranet reader)", **auth_headers(auth)}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        response = _follow(
            session, url, headers, policy or DEFAULT_POLICY, (connect_timeout, read_timeout), max_redirects
        )
        with response:
            if response.status_code == 304:
                return FetchedPage(url, response.url, 304, "", "", "", 0, etag, last_modified)
            if response.status_code >= 400:
                raise FetchError(f"{url}: HTTP {response.status_code}", response.status_code)
            media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media and media not in TEXT_TYPES:
                raise FetchError(f"{url}: content type {media!r} is not a web page", response.status_code)
            declared_length = response.headers.get("Content-Length", "")
            if declared_length.isdigit() and int(declared_length) > max_bytes:
                raise FetchError(
                    f"{url}: page is {int(declared_length):,} bytes, over the {max_bytes:,} limit",
                    response.status_code,
                )
            body = bytearray()
            for block in response.iter_content(64 * 1024):
                body += block
                if len(body) > max_bytes:
                    raise FetchError(
                        f"{url}: page is over the {max_bytes:,} bytes limit", response.status_code
                    )
                if time.monotonic() > deadline:
                    raise FetchError(f"{url}: download took over {total_timeout:g} s", response.status_code)
            if _looks_binary(bytes(body)):
                raise FetchError(f"{url}: the page is binary, not text", response.status_code)
            text, encoding = decode_body(
                bytes(body),
                response.encoding if "charset" in response.headers.get("Content-Type", "").lower() else None,
            )
            return FetchedPage(
                url,
                response.url,
                response.status_code,
                TEXT_TYPES.get(media, "html"),
                text,
                encoding,
                len(body),
                response.headers.get("ETag", ""),
                response.headers.get("Last-Modified", ""),
            )
    except requests.Timeout as exc:
        raise FetchError(f"{url}: no answer within {read_timeout:g} s") from exc
    except requests.ConnectionError as exc:
        raise FetchError(f"{url}: cannot connect ({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        raise FetchError(f"{url}: {exc}") from exc
    finally:
        if own:
            session.close()


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _follow(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    policy: FetchPolicy,
    timeout: tuple[float, float],
    max_redirects: int,
) -> requests.Response:
    """GET `url`, following redirects one hop at a time so that the policy sees every hop before Kate
    connects to it, and credentials stay with the origin they were configured for."""
    current = url
    for _hop in range(max_redirects + 1):
        parts = urlsplit(current)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            policy.check(parts.hostname or "", port, timeout=timeout[0])
        except PolicyRefused as exc:
            via = f" (redirected to {current})" if current != url else ""
            raise FetchError(f"{url}{via}: {exc}") from None
        response = session.get(current, timeout=timeout, stream=True, headers=headers, allow_redirects=False)
        location = response.headers.get("Location", "")
        if response.status_code not in (301, 302, 303, 307, 308) or not location:
            return response
        response.close()
        target = validate_url(urljoin(current, location))
        if _origin(target) != _origin(current):
            headers = {k: v for k, v in headers.items() if k not in ("Authorization", "Cookie")}
        current = target
    raise FetchError(f"{url}: more than {max_redirects} redirects")


def read_local_page(path: str | Path, max_bytes: int = 5_000_000) -> FetchedPage:
    """A page from a local file (`kate ask --file`): same decoding and limits as a fetched one."""
    path = Path(path)
    if not path.is_file():
        raise FetchError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise FetchError(f"{path}: file is {size:,} bytes, over the {max_bytes:,} limit")
    body = path.read_bytes()
    if _looks_binary(body):
        raise FetchError(f"{path}: the file is binary, not text")
    text, encoding = decode_body(body, None)
    kind = (
        "html"
        if path.suffix.lower() in (".html", ".htm", ".xhtml") or "<html" in text[:2000].lower()
        else "text"
    )
    return FetchedPage(str(path), path.resolve().as_uri(), 200, kind, text, encoding, size)
