"""Reaching a person: HR contacts per topic and language, escalation offers, and the escalation log.

When Kate is not sure, runs out of answers, or gets a second 👎 on the same question, it offers to reach
HR. The offer (question, language, topic, why) is kept for as long as an answer stays votable, and its id
travels in the offer button's payload, so the contact Kate then gives is the one for that question's
topic and language, and the mail it prepares carries the question. Offers and requests both go to a
stream the console counts: how often Kate had to hand over, and how often employees took the offer.

Contacts: one per (topic, language), topic an HR intent or "" for any topic, language a code or "" for
any language; `KATE_HR_CONTACT` is the last resort. Each has a mail address, a ticket URL and/or a phone.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from urllib.parse import quote

import redis

from .scripted import DEMO_AUTHOR
from .store import DEFAULT_PREFIX, guarded, json_record, stream_entries

REASONS = ("unsure", "no_other", "second_down", "asked")  # why Kate offered, or "asked" (typed)
EVENTS = ("offered", "requested")
MAX_CONTACTS = 500
MAX_LOG = 200_000
MAX_FIELD = 2000
_EMAIL = re.compile(r"^[^@\s<>()\[\]]+@[^@\s<>()\[\]]+\.[^@\s<>()\[\]]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 .()-]{3,30}$")
_TOPIC = re.compile(r"^[a-z0-9_]{0,64}$")
_LANGUAGE = re.compile(r"^([a-z]{2,3}(-[a-z0-9]{2,8})?)?$")


CONTACT_FIELDS = ("topic", "language", "label", "email", "url", "phone")


class ContactError(ValueError):
    """A contact that cannot be stored as given (the message says which field)."""


@dataclass
class Contact:
    topic: str = ""  # an HR intent (leave_policy...), or "" for every topic
    language: str = ""  # a language code, or "" for every language
    label: str = ""  # "HR service desk"
    email: str = ""
    url: str = ""  # a ticket form or a team page (http or https)
    phone: str = ""
    by: str = ""
    updated_at: float = 0.0

    @property
    def field(self) -> str:
        return f"{self.topic}|{self.language}"

    def validated(self) -> Contact:
        self.topic, self.language = self.topic.strip().lower(), self.language.strip().lower()
        self.label, self.email = self.label.strip()[:200], self.email.strip()
        self.url, self.phone = self.url.strip(), self.phone.strip()
        if not _TOPIC.match(self.topic):
            raise ContactError(f"topic must be an intent name or empty, got {self.topic[:80]!r}")
        if not _LANGUAGE.match(self.language):
            raise ContactError(
                f"language must be a code such as en, fr or ja, or empty, got {self.language[:20]!r}"
            )
        if not (self.email or self.url or self.phone):
            raise ContactError("give a mail address, a ticket URL or a phone number")
        if self.email and not _EMAIL.match(self.email):
            raise ContactError(f"not a mail address: {self.email[:200]!r}")
        if self.url and not re.match(r"^https?://[^\s<>\"()\[\]]+$", self.url):
            raise ContactError(
                f"the URL must start with http:// or https:// and have no spaces: {self.url[:200]!r}"
            )
        if self.phone and not _PHONE.match(self.phone):
            raise ContactError(f"not a phone number: {self.phone[:40]!r}")
        return self

    def mail_link(self, question: str) -> str:
        """A mailto: link that opens a mail to HR with the employee's question in it."""
        subject = quote("Question for HR (from Kate)")
        body = quote(question[:1500])
        return f"mailto:{self.email}?subject={subject}&body={body}"


def contact_from_setting(value: str) -> Contact | None:
    """`KATE_HR_CONTACT`: a mail address, an http(s) URL or a phone number (several comma-separated)."""
    contact = Contact(label="HR")
    for part in (p.strip() for p in value.split(",")):
        if _EMAIL.match(part):
            contact.email = part
        elif part.startswith(("http://", "https://")):
            contact.url = part
        elif _PHONE.match(part):
            contact.phone = part
    return contact if (contact.email or contact.url or contact.phone) else None


@dataclass
class Offer:
    """What Kate could not answer, kept while the employee may press "Contact HR"."""

    question: str
    language: str
    topic: str
    reason: str
    conversation_id: str
    id: str = ""


@dataclass
class Escalation:
    event: str  # "offered" | "requested"
    reason: str
    question: str
    language: str
    topic: str
    conversation_id: str
    time: float = 0.0
    id: str = ""


class Escalations:
    """Contacts, offers and the escalation log of one Kate."""

    def __init__(
        self, client: redis.Redis, prefix: str = DEFAULT_PREFIX, offer_ttl_s: float = 30 * 86400
    ) -> None:
        self.r = client
        self.contacts_key = f"{prefix}contacts"
        self.offer_prefix = f"{prefix}offer:"
        self.log_key = f"{prefix}escalations"
        self.offer_ttl_s = int(offer_ttl_s)

    # -- contacts ---------------------------------------------------------------------------------------
    def put_contact(self, contact: Contact) -> Contact:
        contact = contact.validated()
        contact.updated_at = time.time()
        with guarded(self.r):
            if self.r.hlen(self.contacts_key) >= MAX_CONTACTS and not self.r.hexists(
                self.contacts_key, contact.field
            ):
                raise ContactError(f"Kate keeps at most {MAX_CONTACTS} contacts")
            self.r.hset(self.contacts_key, contact.field, json.dumps(asdict(contact), ensure_ascii=False))
        return contact

    def remove_contact(self, topic: str, language: str) -> bool:
        with guarded(self.r):
            return bool(self.r.hdel(self.contacts_key, f"{topic}|{language}"))

    def contacts(self) -> list[Contact]:
        with guarded(self.r):
            raw = self.r.hvals(self.contacts_key)
        found = [c for c in (json_record(v, Contact) for v in raw) if c is not None]
        return sorted(found, key=lambda c: (c.topic, c.language))

    def contact_for(self, topic: str, language: str, default: Contact | None = None) -> Contact | None:
        """The most specific contact: this topic in this language, this topic, this language, anyone."""
        fields = [f"{topic}|{language}", f"{topic}|", f"|{language}", "|"]
        with guarded(self.r):
            found = self.r.hmget(self.contacts_key, fields)
        return next((c for c in (json_record(v, Contact) for v in found) if c is not None), default)

    def seed_demo(self, contacts: list[dict]) -> int:
        """Add the demo company's contacts that are not there yet (an admin's are kept)."""
        added = 0
        for raw in contacts[:MAX_CONTACTS]:
            contact = Contact(**{k: str(v) for k, v in raw.items() if k in CONTACT_FIELDS}, by=DEMO_AUTHOR)
            contact = contact.validated()
            contact.updated_at = time.time()
            with guarded(self.r):
                added += int(self.r.hsetnx(self.contacts_key, contact.field, json.dumps(asdict(contact))))
        return added

    def drop_demo(self) -> int:
        stale = [c.field for c in self.contacts() if c.by == DEMO_AUTHOR]
        if not stale:
            return 0
        with guarded(self.r):
            return int(self.r.hdel(self.contacts_key, *stale))

    # -- offers and the log -----------------------------------------------------------------------------
    def offer(self, offer: Offer) -> Offer:
        """Keep an offer for its button, and log it."""
        offer.id = offer.id or secrets.token_hex(8)
        offer.question = offer.question[:MAX_FIELD]
        with guarded(self.r):
            self.r.set(
                self.offer_prefix + offer.id,
                json.dumps(asdict(offer), ensure_ascii=False),
                ex=self.offer_ttl_s,
            )
        self._log("offered", offer)
        return offer

    def get_offer(self, offer_id: str) -> Offer | None:
        if not offer_id or not offer_id.isalnum() or len(offer_id) > 64:
            return None
        with guarded(self.r):
            raw = self.r.get(self.offer_prefix + offer_id)
        return json_record(raw, Offer)

    def requested(self, offer: Offer) -> bool:
        """Log that the employee asked for HR; once per offer (a double click counts once)."""
        if offer.id:
            with guarded(self.r):
                if not self.r.set(f"{self.offer_prefix}{offer.id}:taken", "1", nx=True, ex=self.offer_ttl_s):
                    return False
        self._log("requested", offer)
        return True

    def _log(self, event: str, offer: Offer) -> None:
        record = {
            "event": event, "reason": offer.reason, "question": offer.question[:MAX_FIELD],
            "language": offer.language[:20], "topic": offer.topic[:64],
            "conversation_id": offer.conversation_id[:200], "time": repr(time.time()),
        }  # fmt: skip
        with guarded(self.r):
            self.r.xadd(self.log_key, record, maxlen=MAX_LOG, approximate=True)

    def latest(self, limit: int = 10_000) -> Iterator[Escalation]:
        """The newest `limit` log entries, newest first."""
        for stream_id, raw in stream_entries(self.r, self.log_key, newest_first=True, limit=limit):
            yield Escalation(
                event=raw.get("event", ""), reason=raw.get("reason", ""), question=raw.get("question", ""),
                language=raw.get("language", ""), topic=raw.get("topic", ""),
                conversation_id=raw.get("conversation_id", ""), time=float(raw.get("time") or 0),
                id=stream_id,
            )  # fmt: skip
