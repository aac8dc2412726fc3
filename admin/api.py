"""The console's JSON API under /api, described by its OpenAPI schema (/api/openapi.json).

Same account and sessions as the pages: `POST /api/login` sets the session cookie and returns the CSRF
token that every POST, PATCH and DELETE must send back as `X-CSRF-Token`.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from knowledge.escalation import Contact
from knowledge.feedback import export

from .console import SourceView
from .deps import api_session, client_address, console
from .feedback_view import FeedbackQuery, matching, review
from .security import SESSION_COOKIE, Session, verify_password

router = APIRouter(prefix="/api", tags=["admin"])


class Login(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class LoginResult(BaseModel):
    user: str
    csrf_token: str


class SourceIn(BaseModel):
    url: str = Field(max_length=2000)
    title: str = Field("", max_length=300)
    language: str = Field("", max_length=20)
    tags: list[str] = Field(default_factory=list, max_length=50)
    enabled: bool = True


class SourcePatch(BaseModel):
    title: str | None = Field(None, max_length=300)
    language: str | None = Field(None, max_length=20)
    tags: list[str] | None = Field(None, max_length=50)
    enabled: bool | None = None
    every: float | None = Field(None, description="seconds between the refresher's checks; 0: the default")


class ScriptedIn(BaseModel):
    variant: str = Field("", max_length=64, description="an entity value (a city), or empty for the intent")
    texts: dict[str, str] = Field(
        description="language -> answer; an empty text removes that language's answer", max_length=50
    )


class ContactIn(BaseModel):
    topic: str = Field("", max_length=64, description="an HR intent, or empty for every topic")
    language: str = Field("", max_length=20, description="a language code, or empty for every language")
    label: str = Field("", max_length=200)
    email: str = Field("", max_length=300)
    url: str = Field("", max_length=2000)
    phone: str = Field("", max_length=40)


class ImportIn(BaseModel):
    text: str = Field(description="one URL per line, or the sources.yml format", max_length=1_000_000)


def _source_json(view: SourceView) -> dict:
    s = view.source
    return {
        "id": view.id, "url": s.url, "title": s.title, "page_title": view.page_title, "language": s.language,
        "enabled": s.enabled,
        "tags": s.tags, "added_by": s.added_by, "added_at": s.added_at, "status": asdict(s.status),
        "every": s.every, "next_check": view.next_check or None,
    }  # fmt: skip


@router.post("/login", response_model=LoginResult)
def login(body: Login, request: Request, response: Response) -> LoginResult:
    c = console(request)
    client = client_address(request)
    if c.sessions.too_many_failures(client):
        raise HTTPException(429, "too many failed logins; wait a few minutes")
    if body.username != c.admin_user or not verify_password(body.password, c.password_hash):
        c.sessions.failed(client)
        raise HTTPException(401, "wrong user name or password")
    session = c.sessions.create(body.username)
    set_session_cookie(response, session, c.settings.production, c.sessions.ttl_s)
    return LoginResult(user=session.user, csrf_token=session.csrf)


def set_session_cookie(response: Response, session: Session, secure: bool, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE, session.id, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
    )


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, session: Session = Depends(api_session)) -> None:
    console(request).sessions.end(session.id)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/sources")
def list_sources(request: Request, _: Session = Depends(api_session)) -> list[dict]:
    return [_source_json(v) for v in console(request).sources()]


@router.post("/sources", status_code=201)
def add_source(body: SourceIn, request: Request, session: Session = Depends(api_session)) -> dict:
    c = console(request)
    view = c.add(body.url, body.title, body.language, ",".join(body.tags), by=session.user)
    if not body.enabled:
        view = c.update(view.id, enabled=False)
    return _source_json(view)


@router.get("/sources/{sid}")
def get_source(sid: str, request: Request, _: Session = Depends(api_session)) -> dict:
    return _source_json(console(request).source(sid))


@router.patch("/sources/{sid}")
def edit_source(sid: str, body: SourcePatch, request: Request, _: Session = Depends(api_session)) -> dict:
    view = console(request).update(
        sid, title=body.title, language=body.language, tags=body.tags, enabled=body.enabled, every=body.every
    )
    return _source_json(view)


@router.delete("/sources/{sid}", status_code=204)
def remove_source(sid: str, request: Request, _: Session = Depends(api_session)) -> None:
    console(request).remove(sid)


@router.post("/sources/{sid}/refresh")
def refresh_source(sid: str, request: Request, _: Session = Depends(api_session)) -> dict:
    return asdict(console(request).refresh(sid))


@router.get("/sources/{sid}/passages")
def source_passages(sid: str, request: Request, _: Session = Depends(api_session)) -> list[dict]:
    return [asdict(p) for p in console(request).passages(sid)]


@router.post("/sources/import")
def import_sources(body: ImportIn, request: Request, session: Session = Depends(api_session)) -> dict:
    added, problems = console(request).import_list(body.text, by=session.user)
    return {"added": added, "problems": problems}


def _query(
    vote: str = "", since: str = "", until: str = "", source: str = "", language: str = "", q: str = "",
    page: int = 1, per_page: int = 25,
) -> FeedbackQuery:  # fmt: skip
    return FeedbackQuery(vote, since, until, source, language, q, page, per_page).checked()


@router.get("/feedback")
def feedback(
    request: Request, query: FeedbackQuery = Depends(_query), _: Session = Depends(api_session)
) -> dict:
    c = console(request)
    view = review(c.feedback, c.unanswered, query)
    return {
        "total": view.total, "page": view.page, "pages": view.pages, "truncated": view.truncated,
        "entries": [asdict(e) for e in view.entries],
        "days": [asdict(d) | {"rate": d.rate} for d in view.days],
        "gaps": [asdict(g) for g in view.gaps],
    }  # fmt: skip


@router.get("/feedback.csv", response_class=StreamingResponse)
def feedback_csv(
    request: Request, query: FeedbackQuery = Depends(_query), _: Session = Depends(api_session)
) -> StreamingResponse:
    return csv_response(request, query)


def csv_response(request: Request, query: FeedbackQuery) -> StreamingResponse:
    """The filtered view (every page of it), newest first, as CSV."""
    entries, _ = matching(console(request).feedback, query)
    return StreamingResponse(
        export(iter(entries), "csv"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="kate-feedback.csv"'},
    )


@router.get("/answers")
def list_answers(request: Request, _: Session = Depends(api_session)) -> list[dict]:
    """Every scripted answer the company wrote (intent, variant, language, text, by, updated_at)."""
    return [asdict(a) for a in console(request).scripted.all()]


@router.put("/answers/{intent}")
def put_answers(
    intent: str, body: ScriptedIn, request: Request, session: Session = Depends(api_session)
) -> dict:
    """Set an intent's (or a variant's) answers; applied from the next question."""
    saved, removed = console(request).save_scripted(intent, body.variant, body.texts, by=session.user)
    return {"saved": saved, "removed": removed}


@router.get("/contacts")
def list_contacts(request: Request, _: Session = Depends(api_session)) -> list[dict]:
    return [asdict(c) for c in console(request).escalations.contacts()]


@router.put("/contacts")
def put_contact(body: ContactIn, request: Request, session: Session = Depends(api_session)) -> dict:
    """Add or replace the contact for one topic and language."""
    return asdict(console(request).save_contact(Contact(**body.model_dump()), by=session.user))


@router.get("/escalations")
def escalations(request: Request, days: int = 30, _: Session = Depends(api_session)) -> dict:
    """Offers to reach HR and requests over the last `days` days."""
    return asdict(console(request).escalation_summary(max(1, min(days, 366))))


@router.get("/analytics")
def analytics_json(request: Request, days: int = 30, _: Session = Depends(api_session)) -> dict:
    """Questions, answer and "not sure" rates, 👍 rate and escalations per day, language and page."""
    a = console(request).analytics(days)

    def tally(t: object) -> dict:
        d = asdict(t)  # type: ignore[call-overload]
        d.update(answer_rate=t.answer_rate, unsure_rate=t.unsure_rate, up_rate=t.up_rate)  # type: ignore[attr-defined]
        return d

    return {
        "days": a.days, "total": tally(a.total), "per_day": [tally(t) for t in a.per_day],
        "per_language": [tally(t) for t in a.per_language], "per_page": [tally(t) for t in a.per_page],
        "worst_pages": [tally(t) for t in a.worst_pages],
    }  # fmt: skip
