"""The console's HTML pages under /admin: server-rendered, every form with its CSRF token, every change
followed by a redirect (so a reload never repeats it) to a page that says what happened."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from knowledge.curation import passage_key
from knowledge.escalation import Contact, ContactError
from knowledge.scripted import HR_INTENTS, ScriptedError, valid_intent
from knowledge.sources import SourceError
from knowledge.verified import VerifiedError

from .analytics import bars_svg, rate_svg
from .api import csv_response, set_session_cookie
from .console import MAX_QUERY_CHARS, Console
from .deps import check_form_csrf, client_address, console, page_session, session_of
from .feedback_view import FeedbackQuery, review
from .i18n import COOKIE, LANGUAGE_NAMES, console_language, translator
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
    "hidden": "Passage hidden. Kate no longer reads it (until the page's text changes).",
    "shown": "Passage shown again. Kate reads it from the next question on.",
    "demoted": "Page demoted. Kate answers from it only when no other page has a confident answer.",
    "promoted": "Page no longer demoted.",
    "contact_saved": "Contact saved. Kate gives it from the next question on.",
    "contact_removed": "Contact removed.",
    "verified": "Answer verified. Kate gives it to this question, and to questions close to it, from now on.",
    "unverified": "Verified answer removed.",
    "answers_saved": "Answers saved. Kate gives them from the next question on.",
}


def render(
    request: Request, name: str, session: Session | None, status_code: int = 200, **context
) -> Response:
    language = console_language(request, console(request).settings.console_language)
    _ = translator(language)
    notice = NOTICES.get(request.query_params.get("notice", ""), "")
    context.update(
        session=session, notice=_(notice) if notice else "", _=_, lang=language,
        console_languages=list(LANGUAGE_NAMES.items()),
    )  # fmt: skip
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if request.query_params.get("lang") == language:  # chosen from the console: kept for the next pages
        response.set_cookie(COOKIE, language, max_age=365 * 86400, samesite="strict", path="/admin")
    return response


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
def sources_page(
    request: Request, q: str = Query("", max_length=MAX_QUERY_CHARS),
    page: int = Query(1, ge=1, le=1_000_000), session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    return render(request, "sources.html", session, **listing(console(request), q, page), form={}, error="")


def listing(c: Console, query: str = "", page: int = 1) -> dict:
    """The Sources page's table: one page of sources, and its links to the others."""
    found = c.source_list(query, page)
    return {
        "listing": found,
        "page_link": lambda n: "/admin/sources?" + urlencode({**({"q": query} if query else {}), "page": n}),
    }


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
        return render(request, "sources.html", session, 400, **listing(c), form=form, error=str(exc))
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
        request, "sources.html", session, **listing(c), form={}, error="",
        imported={"added": added, "problems": problems[:100], "more": max(0, len(problems) - 100)},
    )  # fmt: skip


@router.get("/sources/{sid}", response_class=HTMLResponse)
def source_page(sid: str, request: Request, session: Session = Depends(page_session)) -> Response:
    return source_response(request, session, sid)


def source_response(
    request: Request, session: Session, sid: str, status: int = 200, form: dict | None = None, error: str = ""
) -> Response:
    """One source's page; after a refused edit, `form` holds what was typed (so nothing is lost)."""
    c = console(request)
    view, passages = c.source_page(sid)
    hidden = {h.key for h in c.curation.hidden(view.source.url)}
    shown = [(p, passage_key(p.url, p.text)) for p in passages[:200]]
    return render(request, "source.html", session, status, view=view, passages=shown, hidden=hidden,
                  form=form or {}, error=error)  # fmt: skip


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
    key: str = Form("", max_length=64), session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    check_form_csrf(session, csrf_token)
    c = console(request)
    if action in ("hide", "show"):  # one passage, by its key
        if action == "hide":
            c.hide_passage(sid, key, by=session.user)
        else:
            c.curation.show(key)
        return back(f"/admin/sources/{sid}", "hidden" if action == "hide" else "shown")
    if action in ("demote", "promote"):
        c.set_demoted(sid, action == "demote", by=session.user)
        return back(f"/admin/sources/{sid}", f"{action}d")
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
    view = review(c.feedback, c.unanswered, query, c.question_vectors)
    filters = query.filters()
    return render(
        request, "feedback.html", session, view=view, query=query, suggestions=c.suggestions(view.gaps),
        csv_link="/admin/feedback.csv?" + urlencode(filters),
        page_link=lambda n: "/admin/feedback?" + urlencode({**filters, "page": n}),
    )  # fmt: skip


@router.get("/feedback.csv")
def feedback_csv(
    request: Request, query: FeedbackQuery = Depends(_query), _: Session = Depends(page_session)
) -> Response:
    return csv_response(request, query.checked())


# -- exports and imports (scripted and verified answers) ---------------------------------------------------
def download(text: str, media_type: str, filename: str) -> Response:
    return Response(
        text,
        media_type=f"{media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def import_result(load: Callable[[], int], refused: type[Exception]) -> tuple[dict, int]:
    """What an import page shows, and its status: how many were added, or why nothing was."""
    try:
        return {"added": load(), "error": ""}, 200
    except refused as exc:
        return {"added": 0, "error": str(exc)}, 400


# -- scripted answers --------------------------------------------------------------------------------------
MAX_ANSWER_FORM_FIELDS = 50


@router.get("/answers", response_class=HTMLResponse)
def answers_page(request: Request, session: Session = Depends(page_session)) -> Response:
    rows, languages = console(request).scripted_rows()
    return render(request, "answers.html", session, rows=rows, languages=languages, imported=None)


@router.get("/answers.yml")
def answers_export(request: Request, _: Session = Depends(page_session)) -> Response:
    return download(console(request).scripted.export_yaml(), "application/yaml", "kate-scripted-answers.yml")


@router.post("/answers/import")
def answers_import(
    request: Request, text: str = Form("", max_length=1_000_000), csrf_token: str = Form(""),
    session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    check_form_csrf(session, csrf_token)
    c = console(request)
    imported, status = import_result(lambda: c.scripted.import_yaml(text, by=session.user), ScriptedError)
    rows, languages = c.scripted_rows()
    return render(request, "answers.html", session, status, rows=rows, languages=languages, imported=imported)


@router.get("/answers/{intent}", response_class=HTMLResponse)
def answer_page(intent: str, request: Request, session: Session = Depends(page_session)) -> Response:
    if not valid_intent(intent):
        raise LookupError(f"{intent[:80]!r} is not an intent name")
    return answer_response(request, session, intent)


def answer_response(
    request: Request, session: Session, intent: str, status: int = 200, typed: dict | None = None,
    error: str = "",
) -> Response:  # fmt: skip
    """One intent's answers; after a refused save, `typed` holds the form as sent (nothing is lost)."""
    rows, languages = console(request).scripted_rows(intent)
    return render(request, "answer.html", session, status, intent=intent, rows=rows, languages=languages,
                  typed=typed or {}, error=error)  # fmt: skip


@router.post("/answers/{intent}")
async def save_answer(intent: str, request: Request, session: Session = Depends(page_session)) -> Response:
    form = await request.form(max_fields=MAX_ANSWER_FORM_FIELDS)
    check_form_csrf(session, str(form.get("csrf_token", "")))
    variant = str(form.get("variant", ""))[:64]
    if form.get("adding") and not variant.strip():  # an empty variant would be the intent's own answers
        return answer_response(request, session, intent, 400, {}, "name the value this variant answers for")
    texts = {
        name.removeprefix("text_"): str(value)
        for name, value in list(form.items())[:MAX_ANSWER_FORM_FIELDS]
        if name.startswith("text_")
    }
    try:
        console(request).save_scripted(intent, variant, texts, by=session.user)
    except ScriptedError as exc:
        return answer_response(request, session, intent, 400, {"variant": variant, **texts}, str(exc))
    return back(f"/admin/answers/{intent}", "answers_saved")


# -- conflicts between pages -------------------------------------------------------------------------------
@router.get("/conflicts", response_class=HTMLResponse)
def conflicts_page(request: Request, session: Session = Depends(page_session)) -> Response:
    """Pairs of pages whose answers disagreed (knowledge/conflicts.py), for HR to fix at the source."""
    pairs = console(request).conflicts.pairs(since=time.time() - 90 * 86400)
    return render(request, "conflicts.html", session, pairs=pairs, days=90)


# -- contacts and escalations ------------------------------------------------------------------------------
@router.get("/contacts", response_class=HTMLResponse)
def contacts_page(request: Request, session: Session = Depends(page_session)) -> Response:
    return contacts_response(request, session)


def contacts_response(
    request: Request, session: Session, status: int = 200, form: dict | None = None, error: str = ""
) -> Response:
    c = console(request)
    return render(
        request, "contacts.html", session, status, contacts=c.escalations.contacts(),
        default=c.settings.hr_contact, summary=c.escalation_summary(), topics=HR_INTENTS, form=form or {},
        error=error,
    )  # fmt: skip


@router.post("/contacts")
def save_contact(
    request: Request, topic: str = Form("", max_length=64), language: str = Form("", max_length=20),
    label: str = Form("", max_length=200), email: str = Form("", max_length=300),
    url: str = Form("", max_length=2000), phone: str = Form("", max_length=40), csrf_token: str = Form(""),
    session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    check_form_csrf(session, csrf_token)
    contact = Contact(topic=topic, language=language, label=label, email=email, url=url, phone=phone)
    try:
        console(request).save_contact(contact, by=session.user)
    except ContactError as exc:
        form = {
            "topic": topic,
            "language": language,
            "label": label,
            "email": email,
            "url": url,
            "phone": phone,
        }
        return contacts_response(request, session, 400, form, str(exc))
    return back("/admin/contacts", "contact_saved")


@router.post("/contacts/remove")
def remove_contact(
    request: Request, topic: str = Form("", max_length=64), language: str = Form("", max_length=20),
    csrf_token: str = Form(""), session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    check_form_csrf(session, csrf_token)
    console(request).escalations.remove_contact(topic, language)
    return back("/admin/contacts", "contact_removed")


# -- verified answers --------------------------------------------------------------------------------------
@router.get("/verify", response_class=HTMLResponse)
def verify_page(
    request: Request, q: str = "", source: str = "", session: Session = Depends(page_session)
) -> Response:
    return verify_response(request, session, q[:1000], source[:64])


def verify_response(
    request: Request, session: Session, question: str, sid: str = "", status: int = 200,
    form: dict | None = None, error: str = "",
) -> Response:  # fmt: skip
    """The verify page: Kate's earlier answers to the question, and one source's passages to select a
    span from (`sid`); after a refused save, `form` holds what was typed."""
    c = console(request)
    candidates, language = c.candidates_for(question) if question else ([], "")
    view, passages = c.source_page(sid) if sid else (None, [])
    existing = c.verified_for(question) if question else None
    if existing is not None and not form:  # editing: start from what is kept
        form = {"answer": existing.answer, "source_url": existing.source_url}
        language = language or existing.language
    return render(
        request, "verify.html", session, status, question=question, language=language, candidates=candidates,
        sources=c.sources(), chosen=view, passages=passages[:200], form=form or {}, error=error,
        existing=existing,
    )  # fmt: skip


@router.post("/verify")
def save_verified(
    request: Request, question: str = Form("", max_length=1000), answer: str = Form("", max_length=2000),
    source_url: str = Form("", max_length=2000), language: str = Form("", max_length=20),
    candidate: str = Form("", max_length=10), csrf_token: str = Form(""),
    session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    check_form_csrf(session, csrf_token)
    c = console(request)
    if candidate.isdigit():  # one of Kate's earlier answers, picked by its number on the page
        offered, _ = c.candidates_for(question)
        if int(candidate) < len(offered):
            answer, source_url = offered[int(candidate)].answer, offered[int(candidate)].source_url
    try:
        c.verify(question, answer, source_url, language, by=session.user)
    except VerifiedError as exc:
        form = {"answer": answer, "source_url": source_url}
        return verify_response(request, session, question, "", 400, form, str(exc))
    return back("/admin/verified", "verified")


@router.get("/verified", response_class=HTMLResponse)
def verified_page(request: Request, session: Session = Depends(page_session)) -> Response:
    return render(request, "verified.html", session, answers=console(request).verified.all(), imported=None)


@router.get("/verified.jsonl")
def verified_export(request: Request, _: Session = Depends(page_session)) -> Response:
    return download(
        console(request).verified.export_jsonl(), "application/x-ndjson", "kate-verified-answers.jsonl"
    )


@router.post("/verified/import")
def verified_import(
    request: Request, text: str = Form("", max_length=5_000_000), csrf_token: str = Form(""),
    session: Session = Depends(page_session),
) -> Response:  # fmt: skip
    check_form_csrf(session, csrf_token)
    c = console(request)
    imported, status = import_result(lambda: c.verified.import_jsonl(text, by=session.user), VerifiedError)
    return render(request, "verified.html", session, status, answers=c.verified.all(), imported=imported)


@router.post("/verified/{vid}/remove")
def remove_verified(
    vid: str, request: Request, csrf_token: str = Form(""), session: Session = Depends(page_session)
) -> Response:
    check_form_csrf(session, csrf_token)
    if not console(request).verified.remove(vid):
        raise LookupError(f"no verified answer {vid[:40]!r}")
    return back("/admin/verified", "unverified")


# -- analytics ---------------------------------------------------------------------------------------------
@router.get("/analytics", response_class=HTMLResponse)
def analytics_page(request: Request, days: int = 30, session: Session = Depends(page_session)) -> Response:
    c = console(request)
    a = c.analytics(days)
    titles = {v.source.url: v.title for v in c.sources()}  # pages by their titles, where Kate knows them
    return render(request, "analytics.html", session, a=a, questions_chart=bars_svg(a.per_day),
                  rate_chart=rate_svg(a.per_day), titles=titles)  # fmt: skip
