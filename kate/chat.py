"""`kate chat`: talk to the running bot from a terminal, through Rasa's REST channel.

Buttons are numbered under the message; typing the number (or + / - for 👍 / 👎) sends the button's
payload, as a click in the web widget would.
"""

from __future__ import annotations

import json
import secrets
import sys
import urllib.error
import urllib.request
from typing import TextIO

TIMEOUT_S = 90.0  # an intranet answer has its own budget (KATE_ANSWER_BUDGET); this only bounds a hang


class ChatError(RuntimeError):
    """The bot could not be reached or answered with an error."""


def send(url: str, sender: str, message: str, timeout: float = TIMEOUT_S) -> list[dict]:
    """The bot's messages in reply to one user message (REST channel)."""
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            replies = json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ChatError(f"the bot at {url} did not answer ({exc}); is Kate up (`kate status`)?") from exc
    return replies if isinstance(replies, list) else []


def show(replies: list[dict], out: TextIO) -> list[dict]:
    """Print the bot's messages; returns the buttons of the last message that has some."""
    buttons: list[dict] = []
    for reply in replies:
        if reply.get("text"):
            print("Kate> " + reply["text"].replace("\n", "\n      "), file=out)
        if reply.get("buttons"):
            buttons = reply["buttons"]
            print(
                "      " + "   ".join(f"[{i}] {b.get('title', '')}" for i, b in enumerate(buttons, 1)),
                file=out,
            )
    return buttons


def chosen_payload(line: str, buttons: list[dict]) -> str | None:
    """The payload a typed button choice stands for, or None when the line is a message."""
    shortcuts = {"+": "👍", "-": "👎"}
    for b in buttons:
        if line in shortcuts and b.get("title") == shortcuts[line]:
            return b.get("payload")
    if line.isdigit() and 1 <= int(line) <= len(buttons):
        return buttons[int(line) - 1].get("payload")
    return None


def chat(url: str, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    sender = "chat-" + secrets.token_hex(6)
    print(f"Chatting with Kate at {url} (empty line or Ctrl-D quits).", file=out)
    buttons: list[dict] = []
    while True:
        print("You> ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line or not line.strip():
            return 0
        line = line.strip()
        message = chosen_payload(line, buttons) or line
        try:
            buttons = show(send(url, sender, message), out) or []
        except ChatError as exc:
            print(f"kate chat: {exc}", file=sys.stderr)
            return 1
