"""The one script an intranet page includes to get Kate's chat widget: `/kate-widget.js`.

It is the socket.io client (installed from npm by the setup commands, never loaded from a CDN), wrapped
so that it defines no global, then the widget's settings, then the widget (static/kate-widget.js).
The bundle is built once per process and served with the app's origin baked in.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.settings import Settings

HERE = Path(__file__).parent
SOCKET_IO = HERE / "widget" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
WIDGET = HERE / "static" / "kate-widget.js"


class WidgetAssetsMissing(RuntimeError):
    """npm has not installed the widget's browser libraries (`./kate.sh setup` does)."""


def rasa_origin(settings: Settings, host: str) -> str:
    """Where browsers reach Rasa: KATE_PUBLIC_RASA_URL, else the host the page came from, Rasa's port."""
    return settings.public_rasa_url or f"http://{host}:{settings.rasa_port}"


class WidgetBundle:
    def __init__(self, settings: Settings) -> None:
        if not SOCKET_IO.is_file():
            raise WidgetAssetsMissing(
                f"{SOCKET_IO} is missing: run `./kate.sh setup` (it installs the widget's npm packages)"
            )
        library = "\n".join(
            line for line in SOCKET_IO.read_text(encoding="utf-8").splitlines()
            if not line.startswith("//# sourceMappingURL")
        )  # fmt: skip
        config = {"socketUrl": settings.public_rasa_url, "rasaPort": settings.rasa_port}
        self._script = (
            "/* Kate chat widget. Includes Socket.IO (MIT licence, (c) Guillermo Rauch). */\n"
            "(function () {\n"
            "var module = { exports: {} }, exports = module.exports, define;\n"
            f"{library}\n"
            "var io = module.exports;\n"
            f"var KATE_CONFIG = {json.dumps(config)};\n"
            f"{WIDGET.read_text(encoding='utf-8')}\n"
            "})();\n"
        )

    def script(self) -> str:
        return self._script
