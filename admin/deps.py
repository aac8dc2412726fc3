"""Request helpers the console's pages and API share: the console object, the session, the CSRF check."""

from __future__ import annotations

from fastapi import HTTPException, Request

from .console import Console
from .security import SESSION_COOKIE, Session, forwarded_client, same_token


def console(request: Request) -> Console:
    return request.app.state.console


def session_of(request: Request) -> Session | None:
    return console(request).sessions.get(request.cookies.get(SESSION_COOKIE))


def client_address(request: Request) -> str:
    """The client's address, through trusted reverse proxies only (`KATE_TRUSTED_PROXIES`)."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for", "")
    return forwarded_client(peer, forwarded, console(request).trusted_proxies)


def api_session(request: Request) -> Session:
    """The API's guard: a logged-in session, and for anything but reading, the CSRF header."""
    session = session_of(request)
    if session is None:
        raise HTTPException(401, "log in first (POST /api/login)")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not same_token(
        request.headers.get("x-csrf-token"), session.csrf
    ):
        raise HTTPException(403, "missing or wrong X-CSRF-Token header (it comes with the login)")
    return session


class LoginRequired(Exception):
    """A console page was asked for without a session: the app answers with a redirect to the login."""


def page_session(request: Request) -> Session:
    session = session_of(request)
    if session is None:
        raise LoginRequired
    return session


def check_form_csrf(session: Session, token: str) -> None:
    if not same_token(token, session.csrf):
        raise HTTPException(403, "this form is out of date or was not sent by the console; reload the page")
