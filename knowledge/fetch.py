"""Fetch one intranet page safely: bounded in time, size and redirects, decoded in the right charset.

Issue-level robustness lives here so every caller gets it: a dead, slow, huge or binary page yields a
`FetchError` whose message can be shown to an admin, never a hang or a crash.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from charset_normalizer import from_bytes
from charset_normalizer.utils import is_multi_byte_encoding

TEXT_TYPES = {"text/html": "html", "application/xhtml+xml": "html", "text/plain": "text"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)


class FetchError(RuntimeError):
    """A page could not be read; `str(error)` says why in words an admin understands."""


@dataclass(frozen=True)
class FetchedPage:
    url: str
    final_url: str
    status: int
    kind: str  # "html" or "text"
    text: str
    encoding: str
    n_bytes: int


def validate_url(url: str) -> str:
    """Accept absolute http(s) URLs with a host and no embedded credentials."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"{url!r}: only http and https URLs are allowed")
    if not parts.hostname:
        raise FetchError(f"{url!r}: the URL has no host")
    if parts.username or parts.password:
        raise FetchError(f"{url!r}: credentials in URLs are refused (configure them per source instead)")
    return url


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
    if is_multi_byte_encoding(best.encoding):  # CJK encodings are unambiguous once they decode cleanly
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
) -> FetchedPage:
    """GET one page. `total_timeout` bounds the whole download (a server dripping a byte a second
    never trips a read timeout)."""
    url = validate_url(url)
    own = session is None
    session = session or requests.Session()
    session.max_redirects = max_redirects
    deadline = time.monotonic() + total_timeout
    try:
        response = session.get(
            url,
            timeout=(connect_timeout, read_timeout),
            stream=True,
            headers={"User-Agent": "Kate-HR-assistant/0.1 (+intranet reader)"},
        )
        with response:
            if response.status_code >= 400:
                raise FetchError(f"{url}: HTTP {response.status_code}")
            media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media and media not in TEXT_TYPES:
                raise FetchError(f"{url}: content type {media!r} is not a web page")
            declared_length = response.headers.get("Content-Length", "")
            if declared_length.isdigit() and int(declared_length) > max_bytes:
                raise FetchError(
                    f"{url}: page is {int(declared_length):,} bytes, over the {max_bytes:,} limit"
                )
            body = bytearray()
            for block in response.iter_content(64 * 1024):
                body += block
                if len(body) > max_bytes:
                    raise FetchError(f"{url}: page is over the {max_bytes:,} bytes limit")
                if time.monotonic() > deadline:
                    raise FetchError(f"{url}: download took over {total_timeout:g} s")
            if _looks_binary(bytes(body)):
                raise FetchError(f"{url}: the page is binary, not text")
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
            )
    except requests.TooManyRedirects as exc:
        raise FetchError(f"{url}: more than {max_redirects} redirects") from exc
    except requests.Timeout as exc:
        raise FetchError(f"{url}: no answer within {read_timeout:g} s") from exc
    except requests.ConnectionError as exc:
        raise FetchError(f"{url}: cannot connect ({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        raise FetchError(f"{url}: {exc}") from exc
    finally:
        if own:
            session.close()


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
