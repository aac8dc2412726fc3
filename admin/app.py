"""Kate's web app (`kate web`): the chat page at /, the embeddable widget script, the admin console.

`create_app(settings, knowledge)` is the factory (as rasa-sdk's `create_app`); `kate up` serves it
with uvicorn on KATE_WEB_PORT. Every response carries a strict Content-Security-Policy: the console's
pages run only the app's own script files, so text from an intranet page or an employee's message can
never run as a script in an admin's browser, even if some template forgot to escape it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from core.settings import Settings
from knowledge.escalation import ContactError
from knowledge.feedback import FeedbackError
from knowledge.library import Knowledge
from knowledge.scripted import ScriptedError
from knowledge.sources import SourceError
from knowledge.store import StoreUnavailable
from knowledge.verified import VerifiedError

from . import api, pages
from .console import Console
from .deps import LoginRequired
from .widget import WidgetBundle, rasa_origin

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings, knowledge: Knowledge) -> FastAPI:
    app = FastAPI(
        title="Kate admin API",
        description="Sources and feedback of Kate, the HR assistant. Log in with POST /api/login.",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url=None,  # the bundled Swagger UI would load from a CDN; the schema is what tools need
        redoc_url=None,
    )
    app.state.console = Console(settings, knowledge)
    app.state.widget = WidgetBundle(settings)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # noqa: ANN001
        response = await call_next(request)
        origin = rasa_origin(settings, request.url.hostname or "127.0.0.1")
        ws = origin.replace("http", "ws", 1)
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {origin} {ws}; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.url.path.startswith(("/admin", "/api")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/admin/login", status_code=303)

    def error(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api"):
            return JSONResponse({"detail": message}, status_code=status)
        return pages.render(request, "error.html", None, status, status=status, message=message)

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable) -> Response:
        logger.error("%s", exc)
        return error(request, 503, f"Kate's database is unreachable: {exc}")

    @app.exception_handler(SourceError)
    @app.exception_handler(FeedbackError)
    @app.exception_handler(ScriptedError)
    @app.exception_handler(ContactError)
    @app.exception_handler(VerifiedError)
    async def refused(request: Request, exc: ValueError) -> Response:
        return error(request, 400, str(exc))

    @app.exception_handler(LookupError)
    async def not_found(request: Request, exc: LookupError) -> Response:
        return error(request, 404, str(exc.args[0]) if exc.args else "not found")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/api"):
            return JSONResponse({"detail": exc.errors()}, status_code=422)
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors()[:5])
        return error(request, 422, f"The form was not accepted: {problems}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def chat_page(request: Request) -> Response:
        return pages.templates.TemplateResponse(request, "chat.html", {})

    @app.get("/kate-widget.js", include_in_schema=False)
    def widget_script() -> Response:
        return Response(
            app.state.widget.script(),
            media_type="application/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
        )

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok"}

    return app
