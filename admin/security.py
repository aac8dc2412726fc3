"""Who may use the admin console: one admin account from the settings, sessions and CSRF tokens in Redis.

- Passwords are stored as scrypt hashes (`kate admin hash-password` makes one for KATE_ADMIN_PASSWORD_HASH).
  In production mode (KATE_ENV=production) the console refuses to start without one; on a laptop Kate
  makes up a random password once and keeps it in `$KATE_HOME/admin-password` (0600), and `kate up`
  prints it, so there is never a default password anyone could guess.
- A session is a random id in an HttpOnly, SameSite=Strict cookie; the session itself (user, CSRF token)
  lives in Redis with an expiry, so logging out really ends it, on every server.
- Every state-changing request carries the session's CSRF token: a hidden form field for pages, the
  `X-CSRF-Token` header for the JSON API. A forged post from another site has the cookie but not the token.
- Failed logins are counted per client address; past `MAX_FAILURES` in `FAILURE_WINDOW_S` it must wait.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import redis

from knowledge.fetch_policy import address_in, split_hosts_and_networks
from knowledge.store import DEFAULT_PREFIX, guarded

SESSION_COOKIE = "kate_admin"
LOGIN_COOKIE = "kate_login"  # the CSRF token of the login form, before there is a session
MAX_FAILURES = 10
FAILURE_WINDOW_S = 300
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class ConfigurationError(RuntimeError):
    """The console cannot start safely as configured (the message says what to set)."""


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (base64): slow to brute-force, and only the standard library needed."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=128 * 1024 * 1024,
        )  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def generated_password_file(home: Path) -> Path:
    """Where Kate keeps the admin password it made up (outside production, when no hash is set)."""
    return home / "admin-password"


def admin_password_hash(configured: str, production: bool, home: Path) -> tuple[str, Path | None]:
    """The hash to check logins against, and the file holding a generated password (None when the hash
    comes from the settings)."""
    if configured:
        if not configured.startswith("scrypt$"):
            raise ConfigurationError(
                "KATE_ADMIN_PASSWORD_HASH must be a hash made by `kate admin hash-password`, not a password"
            )
        return configured, None
    if production:
        raise ConfigurationError(
            "KATE_ENV=production needs KATE_ADMIN_PASSWORD_HASH (make one with `kate admin hash-password`)"
        )
    path = generated_password_file(home)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(12) + "\n")
    return hash_password(path.read_text().strip()), path


@dataclass
class Session:
    id: str
    user: str
    csrf: str


class Sessions:
    """Admin sessions in Redis (`<prefix>admin:session:<id>`), each expiring `ttl_s` after login."""

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX, ttl_s: int = 8 * 3600) -> None:
        self.r = client
        self.prefix = f"{prefix}admin:"
        self.ttl_s = ttl_s

    def create(self, user: str) -> Session:
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32))
        with guarded(self.r):
            self.r.set(self._key(session.id), json.dumps({"user": user, "csrf": session.csrf}), ex=self.ttl_s)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 100:
            return None
        with guarded(self.r):
            raw = self.r.get(self._key(session_id))
        if not raw:
            return None
        data = json.loads(raw)
        return Session(session_id, data["user"], data["csrf"])

    def end(self, session_id: str) -> None:
        with guarded(self.r):
            self.r.delete(self._key(session_id))

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}session:{hashlib.sha256(session_id.encode()).hexdigest()}"

    # failed logins, per client address
    def too_many_failures(self, client: str) -> bool:
        with guarded(self.r):
            return int(self.r.get(f"{self.prefix}failures:{client}") or 0) >= MAX_FAILURES

    def failed(self, client: str) -> None:
        key = f"{self.prefix}failures:{client}"
        with guarded(self.r):
            pipe = self.r.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, FAILURE_WINDOW_S)
            pipe.execute()


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


def parse_trusted_proxies(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`KATE_TRUSTED_PROXIES`: comma-separated addresses or networks of the reverse proxies in front of
    the web app. A malformed entry is a `ConfigurationError` (a typo must not silently trust nobody, or
    everybody)."""
    hosts, networks = split_hosts_and_networks(spec)
    if hosts:
        raise ConfigurationError(f"KATE_TRUSTED_PROXIES: {hosts[0]!r} is not an IP address or network")
    return networks


def forwarded_client(peer: str, forwarded_for: str, trusted: tuple) -> str:
    """The address a request really comes from, for the login throttle. `X-Forwarded-For` is believed only
    when the connection itself comes from a trusted proxy, and then read from the right: each proxy
    appends the address it saw, so the rightmost entry that is not a trusted proxy is the client; what a
    client wrote into the header itself sits to the left of it and is never used (a new fake address per
    attempt must not buy a new allowance of password guesses)."""

    def is_trusted(address: str) -> bool:
        try:
            return address_in(ipaddress.ip_address(address), trusted)
        except ValueError:
            return False

    if not forwarded_for or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")[-20:] if h.strip()]  # bounded: a header can be huge
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage where the proxy's entry should be: the proxy itself is the client
    return peer
