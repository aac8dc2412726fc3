"""`kate web`: the web app (chat page, widget script, admin console) served by uvicorn in one process.

It binds 127.0.0.1 by default, like Rasa and the action server under `kate up`; a deployment puts it
behind a reverse proxy or passes `--host`.
"""

from __future__ import annotations

from core.settings import Settings

from .security import ConfigurationError
from .widget import WidgetAssetsMissing


def uvicorn_options(host: str, port: int) -> dict:
    """How uvicorn serves the app. Its own proxy-header handling is off: it would believe the leftmost,
    client-written X-Forwarded-For entry from any proxy it trusts; `admin.deps.client_address` reads the
    header from the right, through `KATE_TRUSTED_PROXIES` only."""
    return {"host": host, "port": port, "log_level": "warning", "access_log": False, "proxy_headers": False}


def serve(settings: Settings, host: str = "127.0.0.1") -> int:
    import uvicorn

    from core.wiring import open_knowledge

    from .app import create_app

    knowledge = open_knowledge(settings)
    try:
        app = create_app(settings, knowledge)
    except (ConfigurationError, WidgetAssetsMissing) as exc:
        print(f"kate web: {exc}", flush=True)
        return 2
    print(f"kate web: listening on http://{host}:{settings.web_port}", flush=True)
    uvicorn.run(app, **uvicorn_options(host, settings.web_port))
    knowledge.close()
    return 0
