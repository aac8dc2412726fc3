"""`kate actions`: the Rasa action server, with Kate's models loaded before it accepts a request.

rasa-sdk's own `run` starts Sanic worker processes that re-import everything, which would load the
models in a process other than the one we warmed up. Kate builds the same app (`create_app`: /webhook,
/health, /actions) and serves it in one process, so `/health` answering means the models are ready.
It adds `/ready`, which answers 200 only once the passage index is loaded too: a readiness probe's
question (docker/kubernetes/30-actions.yaml), as a replica without its index answers slowly. And
`/metrics`: the in-process reader's counters in Prometheus' format, as the reader service has them
(readings, how many questions shared each, queue waits, readings remembered, or bounded tighter under load).
"""

from __future__ import annotations

import logging
import time

from core.settings import Settings

logger = logging.getLogger(__name__)


def serve(settings: Settings, host: str = "127.0.0.1") -> None:
    from rasa_sdk.endpoint import create_app
    from rasa_sdk.executor import ActionExecutor
    from sanic.response import json as json_response
    from sanic.response import text as text_response

    from . import actions, runtime

    t0 = time.perf_counter()
    loaded = runtime.load(settings)
    executor = ActionExecutor()
    executor.register_package(actions)
    app = create_app(executor, cors_origins=[])
    app.config.KEEP_ALIVE_TIMEOUT = 120

    @app.get("/ready")
    async def ready(request: object) -> object:
        """503 until the passage index is loaded; /health only says the models are."""
        state = loaded.answerer.index_state()
        return json_response(state, status=200 if state["ready"] else 503)

    @app.get("/metrics")
    async def metrics(request: object) -> object:
        """The in-process reader's counters (empty when a reader service reads: it has its own)."""
        found = getattr(loaded.answerer.reader, "metrics", None)
        body = found.render() if found is not None else ""
        return text_response(body, content_type="text/plain; version=0.0.4")

    print(
        f"kate actions: models ready in {time.perf_counter() - t0:.1f} s; "
        f"listening on http://{host}:{settings.actions_port}",
        flush=True,
    )
    app.run(host=host, port=settings.actions_port, single_process=True, access_log=False, motd=False)
