"""HR contacts, escalation offers and their log in a real Redis."""

from __future__ import annotations

import pytest

from knowledge.escalation import Contact, ContactError, Escalations, Offer, contact_from_setting
from knowledge.store import connect


@pytest.mark.parametrize(
    "contact, words",
    [
        (Contact(), "give a mail address"),
        (Contact(email="not-an-address"), "not a mail address"),
        (Contact(url="javascript:alert(1)"), "must start with http"),
        (Contact(phone="call me"), "not a phone number"),
        (Contact(topic="Leave Policy!", email="a@b.example"), "topic must be"),
        (Contact(language="french", email="a@b.example"), "language must be"),
    ],
)
def test_contacts_are_checked_field_by_field(redis_client, contact, words):
    with pytest.raises(ContactError, match=words):
        Escalations(redis_client).put_contact(contact)


def test_the_setting_reads_mail_url_and_phone():
    contact = contact_from_setting("hr@company.example, https://desk.example/new , +81 3 1234 5678")
    assert (contact.email, contact.url, contact.phone) == (
        "hr@company.example", "https://desk.example/new", "+81 3 1234 5678"
    )  # fmt: skip
    assert contact_from_setting("") is None and contact_from_setting("nonsense") is None


def test_offers_expire_unknown_ids_are_none_and_everything_survives_a_restart(redis_client, redis_server):
    log = Escalations(redis_client, offer_ttl_s=1)
    log.put_contact(Contact(topic="payroll_date", language="ja", email="kyuyo@company.example"))
    kept = log.offer(Offer("給料日は？", "ja", "payroll_date", "unsure", "c1"))
    assert log.get_offer(kept.id).question == "給料日は？"
    assert log.get_offer("nope") is None and log.get_offer("../x") is None
    redis_server.crash()
    redis_server.start()
    again = Escalations(connect(redis_server.url))
    assert again.contact_for("payroll_date", "ja").email == "kyuyo@company.example"
    assert again.contact_for("payroll_date", "en") is None
    assert [e.event for e in again.latest()] == ["offered"]
    redis_client.pexpire(log.offer_prefix + kept.id, 1)
    import time

    time.sleep(0.05)
    assert log.get_offer(kept.id) is None
