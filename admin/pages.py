"""The console's HTML pages under /admin: server-rendered, every form with its CSRF token, every change
followed by a redirect (so a reload never repeats it) to a page that says what happened."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from knowledge.sources import SourceError

from .api import csv_response, set_session_cookie
from .deps import check_form_csrf, client_address, console, page_session, session_of
from .feedback_view import FeedbackQuery, review
from .security import LOGIN_COOKIE, SESSION_COOKIE, Session, same_token, verify_password

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["utc"] = lambda ts: datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M")
router = APIRouter(prefix="/admin", include_in_schema=False)

# What a redirect after a change may say (by key: a link cannot make the console show arbitrary text).
NOTICES = {
    "added": "Source added. Kate uses it from the next question on.",
    "saved": "Changes saved.",
    "enabled": "Source enabled.",
    "disabled": "Source disabled. Kate no longer reads it.",
    "removed": "Source removed.",
    "refreshed": "Source fetched again.",
    "logged_out": "You are logged out.",
}


def render(
    request: Request, name: str, session: Session | None, status_code: int = 200, **context
) -> Response:
    context.update(session=session, notice=NOTICES.get(request.query_params.get("notice", ""), ""))
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def back(path: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?notice={notice}", status_code=303)


# -- login -------------------------------------------------------------------------------------------------
@router.get("/login")
def login_page(request: Request) -> Response:
    if session_of(request):
        return RedirectResponse("/admin/sources", status_code=303)
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, login_token=token, error="")
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/admin")
    return response


@router.post("/login")
def login(
    request: Request, username: str = Form(max_length=200), password: str = Form(max_length=1000),
    login_token: str = Form(""),
) -> Response:  # fmt: skip
    c = console(request)
    if not same_token(login_token, request.cookies.get(LOGIN_COOKIE, "")):
        return render(request, "login.html", None, 403, login_token="", error="The form expired; reload it.")
    client = client_address(request)
    if c.sessions.too_many_failures(client):
        error = "Too many failed logins. Wait a few minutes."
        return render(request, "login.html", None, 429, login_token=login_token, error=error)
    if username != c.admin_user or not verify_password(password, c.password_hash):
        c.sessions.failed(client)
        error = "Wrong user name or password."
        return render(request, "login.html", None, 401, login_token=login_token, error=error)
    session = c.sessions.create(username)
    response = RedirectResponse("/admin/sources", status_code=303)
    set_session_cookie(response, session, c.settings.production, c.sessions.ttl_s)
    response.delete_cookie(LOGIN_COOKIE, path="/admin")
    return response


@router.post("/logout")
def logout(
    request: Request, csrf_token: str = Form(""), session: Session = Depends(page_session)
) -> Response:
    check_form_csrf(session, csrf_token)
    console(request).sessions.end(session.id)
    response = back("/admin/login", "logged_out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("")
def home() -> Response:
    return RedirectResponse("/admin/sources", status_code=303)


# -- sources -----------------------------------------------------------------------------------------------
@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request, session: Session = Depends(page_session)) -> Response:
    return render(request, "sources.html", session, sources=console(request).sources(), form={}, error="")


@router.post("/sources")
def add_source(
    request: Request, url: str = Form("", max_length=2000), title: str = Form("", max_length=300),
    language: str = Form("", max_length=20), tags: str = Form("", max_length=2000),
    csrf_token: str = Form(""), session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    check_form_csrf(session, csrf_token)
    c = console(request)
    try:
        c.add(url, title, language, tags, by=session.user)
    except SourceError as exc:
        form = {"url": url, "title": title, "language": language, "tags": tags}
        return render(request, "sources.html", session, 400, sources=c.sources(), form=form, error=str(exc))
    return back("/admin/sources", "added")


@router.post("/sources/import")
def import_sources(
    request: Request, text: str = Form("", max_length=1_000_000), csrf_token: str = Form(""),
    session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    check_form_csrf(session, csrf_token)
    c = console(request)
    try:
        added, problems = c.import_list(text, by=session.user)
    except SourceError as exc:
        added, problems = 0, [str(exc)]
    return render(
        request, "sources.html", session, sources=c.sources(), form={}, error="",
        imported={"added": added, "problems": problems[:100], "more": max(0, len(problems) - 100)},
    )  # fmt: skip


@router.get("/sources/{sid}", response_class=HTMLResponse)
def source_page(sid: str, request: Request, session: Session = Depends(page_session)) -> Response:
    return source_response(request, session, sid)


def source_response(
    request: Request, session: Session, sid: str, status: int = 200, form: dict | None = None, error: str = ""
) -> Response:
    """One source's page; after a refused edit, `form` holds what was typed (so nothing is lost)."""
    view, passages = console(request).source_page(sid)
    passages = passages[:200]
    return render(request, "source.html", session, status, view=view, passages=passages, form=form or {},
                  error=error)  # fmt: skip


@router.post("/sources/{sid}")
def edit_source(
    sid: str, request: Request, title: str = Form("", max_length=300),
    language: str = Form("", max_length=20), tags: str = Form("", max_length=2000),
    csrf_token: str = Form(""), session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    check_form_csrf(session, csrf_token)
    c = console(request)
    try:
        c.update(sid, title=title, language=language, tags=tags)
    except SourceError as exc:
        form = {"title": title, "language": language, "tags": tags}
        return source_response(request, session, sid, 400, form, str(exc))
    return back(f"/admin/sources/{sid}", "saved")


@router.post("/sources/{sid}/{action}")
def source_action(
    sid: str, action: str, request: Request, csrf_token: str = Form(""), confirm: str = Form(""),
    session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    check_form_csrf(session, csrf_token)
    c = console(request)
    if action in ("enable", "disable"):
        c.update(sid, enabled=action == "enable")
        return back("/admin/sources", f"{action}d")
    if action == "refresh":
        c.refresh(sid)
        return back(f"/admin/sources/{sid}", "refreshed")
    if action == "remove":
        if confirm != "yes":  # the first press asks; the confirmation page posts again with confirm=yes
            return render(request, "remove.html", session, view=c.source(sid))
        c.remove(sid)
        return back("/admin/sources", "removed")
    return Response("unknown action", status_code=404)


# -- feedback ----------------------------------------------------------------------------------------------
def _query(
    vote: str = "", since: str = "", until: str = "", source: str = "", language: str = "", q: str = "",
    page: int = 1,
) -> FeedbackQuery:  # fmt: skip
    return FeedbackQuery(vote, since, until, source, language, q, page)


@router.get("/feedback", response_class=HTMLResponse)
def feedback_page(
    request: Request, query: FeedbackQuery = Depends(_query), session: Session = Depends(page_session)
) -> Response:
    c = console(request)
    view = review(c.feedback, c.unanswered, query)
    filters = query.filters()
    return render(
        request, "feedback.html", session, view=view, query=query,
        csv_link="/admin/feedback.csv?" + urlencode(filters),
        page_link=lambda n: "/admin/feedback?" + urlencode({**filters, "page": n}),
    )  # fmt: skip


@router.get("/feedback.csv")
def feedback_csv(
    request: Request, query: FeedbackQuery = Depends(_query), _: Session = Depends(page_session)
) -> Response:
    return csv_response(request, query.checked())
