"""Who a page is for, who is asking, and the signed token that says so.

A source's tags give it an audience: `country:fr`, `site:lyon`, `entity:northwind-sas`, `group:managers`
(several values of one key: any of them; several keys: all of them). With the tag `restricted` too, the
page is read only for employees inside that audience: it is never read for, quoted to or linked for anyone
else, and a restricted page with no audience tag is read for nobody. Without it, the page is for everyone,
and its answers come first for its own audience ("France: 25 days" over the group's page) and after the
general pages' for everyone else.

Kate never trusts attributes from the browser as they are. The intranet page that embeds the widget signs
the employee's attributes with a secret it shares with Kate (`KATE_AUDIENCE_SECRET`) as a standard JWT
(HS256; any JWT library makes one, `kate token` too) and gives it to the widget
(`data-employee-token`); the action server checks the signature and the expiry. A missing, forged or
expired token makes the employee anonymous: general pages only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field

KEYS = ("country", "site", "entity", "group")
RESTRICTED = "restricted"
MAX_TOKEN_CHARS = 4096
MAX_VALUES = 50  # groups an employee can be in, as the token gives them


def _norm(value: object) -> str:
    return str(value).strip().lower()[:100]


@dataclass(frozen=True)
class Employee:
    """The attributes of the person asking, from a verified token."""

    country: str = ""
    site: str = ""
    entity: str = ""
    groups: tuple[str, ...] = ()

    def values(self, key: str) -> set[str]:
        if key == "group":
            return set(self.groups)
        value = getattr(self, key, "")
        return {value} if value else set()

    @classmethod
    def from_claims(cls, claims: dict) -> Employee:
        groups = claims.get("groups", claims.get("group", []))
        groups = [groups] if isinstance(groups, str) else groups if isinstance(groups, list) else []
        return cls(
            country=_norm(claims.get("country") or ""),
            site=_norm(claims.get("site") or ""),
            entity=_norm(claims.get("entity") or ""),
            groups=tuple(sorted({_norm(g) for g in groups[:MAX_VALUES] if str(g).strip()})),
        )

    def claims(self) -> dict:
        out: dict = {k: getattr(self, k) for k in ("country", "site", "entity") if getattr(self, k)}
        if self.groups:
            out["groups"] = list(self.groups)
        return out


@dataclass(frozen=True)
class Audience:
    """Who a source is for, from its tags."""

    wanted: dict[str, frozenset[str]] = field(default_factory=dict)
    restricted: bool = False

    @classmethod
    def of(cls, tags: list[str]) -> Audience:
        wanted: dict[str, set[str]] = {}
        restricted = False
        for tag in tags:
            key, _, value = tag.partition(":")
            key = key.strip().lower()
            if key == RESTRICTED and not value:
                restricted = True
            elif key in KEYS and value.strip():
                wanted.setdefault(key, set()).add(_norm(value))
        return cls({k: frozenset(v) for k, v in wanted.items()}, restricted)

    @property
    def targeted(self) -> bool:
        return bool(self.wanted)

    def includes(self, employee: Employee | None) -> bool:
        """Whether the employee is inside this audience (nobody is inside a restricted page's empty one)."""
        if employee is None or not self.wanted:
            return False
        return all(employee.values(key) & values for key, values in self.wanted.items())

    def readable_by(self, employee: Employee | None) -> bool:
        return not self.restricted or self.includes(employee)


# -- the token: a JWT signed with HS256 -------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenRejected(ValueError):
    """Why a token does not count (the employee is then anonymous)."""


def sign(employee: Employee, secret: str, ttl_s: float = 8 * 3600, now: float | None = None) -> str:
    """A token for `employee`, valid `ttl_s` seconds: what the intranet page's server does (any JWT
    library with HS256 does the same)."""
    if not secret:
        raise ValueError("no secret to sign with (KATE_AUDIENCE_SECRET)")
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {**employee.claims(), "exp": int((now or time.time()) + ttl_s)}
    payload = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    mac = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


def verify(token: str, secret: str, now: float | None = None) -> Employee:
    """The employee a token names, or `TokenRejected`: no secret configured, not a JWT, another algorithm
    than HS256 (`none` included), a wrong signature, or expired. `exp` is required: a token that never
    expires is a password."""
    if not secret:
        raise TokenRejected("Kate has no KATE_AUDIENCE_SECRET: employee tokens are ignored")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected("no token, or one longer than 4096 characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected("not a JWT (header.payload.signature)")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenRejected(f"unreadable token: {exc}") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise TokenRejected("only HS256 tokens are accepted")
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise TokenRejected("wrong signature")
    if not isinstance(claims, dict):
        raise TokenRejected("the token's claims are not an object")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp < (now or time.time()):
        raise TokenRejected("expired, or no expiry (exp)")
    return Employee.from_claims(claims)
