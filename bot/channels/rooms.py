"""Rasa 3.6's socket.io channel with its session persistence working again.

With `session_persistence: true` Rasa answers into a room named after the session id, which the browser's
socket joins on `session_request`. Rasa 3.6 calls `sio.enter_room(...)` without `await`; since
python-socketio 5.10 that is a coroutine, so the socket never joins the room and no answer ever reaches
the browser (RasaHQ/rasa#13027, unfixed in 3.6.21). This channel replaces only that handler: it awaits
`enter_room` when it is a coroutine, which works with every python-socketio Rasa 3.6 accepts. Everything
else (events, output, health route) is Rasa's own. credentials.yml names it `channels.rooms.SocketIORooms`.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint


class SocketIORooms(SocketIOInput):
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)
        sio = self.sio

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: dict | None) -> None:
            data = data if isinstance(data, dict) else {}
            session_id = data.get("session_id")
            if not isinstance(session_id, str) or not session_id or len(session_id) > 128:
                session_id = uuid.uuid4().hex
            if self.session_persistence:
                joined = sio.enter_room(sid, session_id, namespace=self.namespace)
                if inspect.isawaitable(joined):
                    await joined
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        return webhook
