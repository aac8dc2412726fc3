"""The chat widget and the admin console in a real headless Chromium, against the running Kate (`stack`):
socket.io to the real Rasa server, the real action server and reader, the console on the same Redis.

Every page watches for script execution: payloads push to `window.__kate_pwned` or call alert(), and
an init script plus a dialog handler record both, so "rendered inert" is checked, not assumed.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.error
import urllib.request

import pytest
from browser import SCREENSHOTS
from lumen import lumen_intranet
from redis_process import free_port

from knowledge.feedback import FeedbackLog
from knowledge.scripted import ScriptedAnswers
from knowledge.sources import SourceRegistry
from knowledge.store import connect
from knowledge.verified import VerifiedAnswers

PAYLOAD = "<script>alert('kate-xss')</script><img src=x onerror=\"__kate_pwned.push('img')\">"
TIMEOUT_MS = 60_000
ACTIVE = "document.querySelector('#kate-widget').shadowRoot.activeElement"  # focus inside the widget


def watched(context):
    """A page that records any script a payload manages to run."""
    page = context.new_page()
    page.add_init_script("window.__kate_pwned = [];")
    page.ran = []
    page.on("dialog", lambda dialog: (page.ran.append(dialog.message), dialog.dismiss()))
    page.set_default_timeout(TIMEOUT_MS)
    return page


def assert_inert(page):
    assert page.ran == [] and page.evaluate("window.__kate_pwned") == []


def open_chat(browser, stack, **context_options):
    page = watched(browser.new_context(**context_options))
    page.goto(stack.web_url + "/")
    page.wait_for_selector("#kate-widget[data-connected=true]", state="attached")
    return page


def ask(page, text: str) -> None:
    before = page.locator(".message.bot").count()
    page.fill("textarea", text)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.querySelector('#kate-widget').shadowRoot.querySelectorAll('.message.bot').length > n",
        arg=before,
    )


# A reply is complete with its vote buttons, or as one of the replies that have none (actions/messages.py:
# the reader found nothing, the intranet is down or slow, the message was off topic).
LAST_REPLY_DONE = """n => {
    const bot = document.querySelector('#kate-widget').shadowRoot.querySelectorAll('.message.bot');
    const last = bot[bot.length - 1];
    return bot.length > n && (last.querySelector('.votes') !== null
        || /no other answer|could not find|cannot read|too slow|outside what I know/.test(last.textContent));
}"""


def answered_from(page, question: str, url: str, votes: int = 12) -> bool:
    """Ask, then press 👎 while the answer is not from `url` (a scripted answer → the intranet; an intranet
    answer → the best one from another page), as an employee would. Whether `url` ever answered."""
    link = f".message.bot a[href='{url}']"
    before = page.locator(link).count()
    count = page.locator(".message.bot").count()
    ask(page, question)
    for _ in range(votes + 1):
        page.wait_for_function(LAST_REPLY_DONE, arg=count)
        if page.locator(link).count() > before:
            return True
        down = page.locator(".message.bot").last.locator(".vote[data-vote=down]")
        if down.count() == 0:
            return False  # nothing left to offer
        count = page.locator(".message.bot").count()
        down.click()
    return False


def wait_for_text(page, text: str | re.Pattern) -> None:
    page.locator(".message.bot", has_text=text).last.wait_for()


def reply_after(page, before: int, *parts: str) -> str:
    """The text of the bot's messages after the first `before`, once it holds every one of `parts`
    (a reply arrives paragraph by paragraph over socket.io; the widget merges them as they come)."""
    page.wait_for_function(
        """([n, parts]) => {
            const root = document.querySelector('#kate-widget').shadowRoot;
            const bot = [...root.querySelectorAll('.message.bot')].slice(n);
            const text = bot.map(m => m.textContent).join(' ');
            return parts.every(p => text.includes(p));
        }""",
        arg=[before, list(parts)],
    )
    return "\n".join(page.locator(".message.bot").all_inner_texts()[before:])


def admin_login(browser, stack):
    page = watched(browser.new_context(accept_downloads=True))
    page.goto(stack.web_url + "/admin/sources")
    assert page.url.endswith("/admin/login")  # no session: sent to the login
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", stack.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/sources")
    return page


def add_and_fetch(admin, url: str) -> None:
    """Add an English source in the console's form and press its "Refresh now", as an admin does."""
    admin.fill("#add-source input[name=url]", url)
    admin.fill("#add-source input[name=language]", "en")
    admin.click("#add-source button[type=submit]")
    admin.wait_for_url("**/admin/sources?notice=added")
    admin.locator("tr", has_text=url).locator("button", has_text="Refresh now").click()
    admin.wait_for_url("**notice=refreshed")


def widget_session(page) -> str:
    return page.evaluate(
        "JSON.parse(localStorage.getItem(Object.keys(localStorage).find(k => k.startsWith('kate-widget:'))))"
        ".session"
    )


def test_chat_round_trip_vote_and_the_admin_feedback_table(browser, stack):
    page = open_chat(browser, stack, viewport={"width": 1100, "height": 800}, locale="en-US")
    assert page.locator("textarea").get_attribute("placeholder") == "Ask an HR question…"
    # the typing indicator is watched from the start: a fast answer can hide it before a test looks
    page.evaluate(
        """() => {
          const typing = document.querySelector('#kate-widget').shadowRoot.querySelector('.typing');
          window.typingShown = false;
          new MutationObserver(() => { if (!typing.hidden) window.typingShown = true; })
            .observe(typing, {attributes: true, attributeFilter: ['hidden']});
        }"""
    )
    page.fill("textarea", "Above what value must a gift be declared?")
    page.keyboard.press("Enter")
    link = page.locator(".message.bot a[href$='/en/code-of-conduct.html']").last
    link.wait_for()
    assert page.evaluate("window.typingShown")  # shown while the answer was coming
    assert link.get_attribute("rel") == "noopener noreferrer"
    answer_text = page.locator(".messages").inner_text()
    assert "50 euros" in answer_text
    assert page.locator(".message.bot blockquote").count() >= 1  # the answer's sentence, quoted
    assert not page.locator(".typing").is_visible()
    up, down = page.locator(".vote[data-vote=up]").last, page.locator(".vote[data-vote=down]").last
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "chat.png"))

    down.click()
    wait_for_text(page, "Thanks for telling me")
    assert down.get_attribute("aria-pressed") == "true" and up.get_attribute("aria-pressed") == "false"
    assert down.is_disabled() and up.is_disabled() and up.is_visible()
    # the 👎 follow-up: the best answer from another page, or the pages to read when no other page answers
    wait_for_text(page, re.compile("Here is another answer|I have no other answer"))

    session = widget_session(page)
    page.reload()  # the conversation and the vote survive a reload
    page.wait_for_selector("#kate-widget[data-connected=true]", state="attached")
    assert page.locator(".message.user").count() == 1
    assert page.locator(".vote[aria-pressed=true]").first.get_attribute("data-vote") == "down"
    assert widget_session(page) == session
    assert_inert(page)

    entries = [e for e in FeedbackLog(connect(stack.redis_url)).entries() if e.conversation_id == session]
    assert [(e.vote, e.question) for e in entries] == [("down", "Above what value must a gift be declared?")]

    admin = admin_login(browser, stack)
    admin.goto(stack.web_url + "/admin/feedback?vote=down&q=gift+be+declared")
    row = admin.locator(
        "#feedback-table tbody tr", has_text="Above what value must a gift be declared?"
    ).first
    assert "code-of-conduct" in row.locator("a[target=_blank]").get_attribute(
        "href"
    )  # (the bot tests asked it too)
    assert "👎" in row.inner_text() and "en" in row.inner_text()
    with admin.expect_download() as download:
        admin.click("text=Export CSV")
    with open(download.value.path(), encoding="utf-8") as exported:
        rows = list(csv.DictReader(io.StringIO(exported.read())))
    assert {r["vote"] for r in rows} == {"down"} and all("gift be declared" in r["question"] for r in rows)
    assert [r["source_url"] for r in rows if r["conversation_id"] == session] == [entries[0].source_url]
    admin.goto(stack.web_url + "/admin/feedback")
    admin.screenshot(path=str(SCREENSHOTS / "console-feedback.png"), full_page=True)
    assert_inert(admin)


def choir_page() -> str:
    title = (
        "&lt;script&gt;alert('kate-xss')&lt;/script&gt;"
        "&lt;img src=x onerror=\"__kate_pwned.push('title')\"&gt;"
    )
    return (
        f"<html lang='en'><head><title>{title} Company choir</title></head><body><main>"
        "<h1>Company choir</h1>"
        "<p>The company choir rehearses every Thursday at noon in the Aurora room on the third floor.</p>"
        "<p>Payloads in page text: &lt;script&gt;alert('kate-xss')&lt;/script&gt; "
        "&lt;img src=x onerror=\"__kate_pwned.push('passage')\"&gt; must stay text.</p>"
        "</main></body></html>"
    )


def test_a_source_added_in_the_console_answers_at_once_and_stops_when_disabled(browser, stack, page_server):
    page_server.pages["/choir.html"] = choir_page()
    url = page_server.url("/choir.html")
    question = "In which room does the choir rehearse?"
    admin = admin_login(browser, stack)

    admin.fill("#add-source input[name=url]", "not a url")  # a bad URL: refused, with the reason shown
    admin.click("#add-source button[type=submit]")
    assert "'not a url'" in admin.locator("#add-error").inner_text()
    assert admin.locator("#add-source input[name=url]").input_value() == "not a url"  # nothing lost

    add_and_fetch(admin, url)
    assert "ok (200)" in admin.locator("main").inner_text()
    assert "must stay text" in admin.locator(".passages").inner_text()
    assert "<script>alert('kate-xss')</script>" in admin.locator(".passages").inner_text()  # shown, not run
    admin.goto(stack.web_url + "/admin/sources")
    assert "<script>alert('kate-xss')</script>" in admin.locator("tr", has_text=url).inner_text()
    admin.screenshot(path=str(SCREENSHOTS / "console-sources.png"), full_page=True)
    assert_inert(admin)

    chat = open_chat(browser, stack)
    assert answered_from(chat, question, url)
    assert "Aurora" in chat.locator(".messages").inner_text()
    assert "<script>alert('kate-xss')</script>" in chat.locator(f"a[href='{url}']").last.inner_text()
    assert_inert(chat)

    admin.locator("tr", has_text=url).locator("button", has_text="Disable").click()
    admin.wait_for_url("**notice=disabled")
    assert "no" in admin.locator("tr", has_text=url).locator("td").nth(2).inner_text()
    assert not answered_from(chat, question, url)  # not first, and not after any number of 👎
    assert chat.locator(f".message.bot a[href='{url}']").count() == 1  # only the earlier answer

    admin.locator("tr", has_text=url).locator("button", has_text="Remove").click()
    admin.click("button:has-text('Remove it')")  # the confirmation page
    admin.wait_for_url("**notice=removed")
    assert SourceRegistry(connect(stack.redis_url)).get(url) is None
    assert_inert(admin)


def test_payloads_in_a_message_stay_text_in_the_widget_and_the_console(browser, stack):
    chat = open_chat(browser, stack)
    message = f"{PAYLOAD} where is the Paris office?"
    ask(chat, message)
    assert chat.locator(".message.user .body").last.inner_text() == message
    assert chat.locator(".message.user img, .message.user script, .message.bot img").count() == 0
    chat.locator(".vote[data-vote=up]").last.click()
    wait_for_text(chat, "Thanks for your feedback")
    assert_inert(chat)

    admin = admin_login(browser, stack)
    admin.goto(stack.web_url + "/admin/feedback?q=kate-xss")
    assert message in admin.locator("#feedback-table").inner_text()
    assert admin.locator("#feedback-table img, #feedback-table script").count() == 0
    assert_inert(admin)


def request(url: str, data: bytes | None = None, headers: dict | None = None, method: str | None = None):
    """(status, headers, body) of one request; redirects are not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_console_and_api_refuse_unauthenticated_and_forged_requests(browser, stack, page_server):
    web = stack.web_url
    for path in ("/admin/sources", "/admin/feedback", "/admin/feedback.csv"):
        status, headers, _ = request(web + path)
        assert status == 303 and headers["Location"] == "/admin/login", path
    status, headers, _ = request(web + "/admin/sources", b"url=http%3A%2F%2Fevil.test%2F", method="POST")
    assert status == 303 and headers["Location"] == "/admin/login"
    for method, path in [("GET", "/api/sources"), ("GET", "/api/feedback"), ("POST", "/api/sources"),
                         ("DELETE", "/api/sources/abc"), ("GET", "/api/feedback.csv")]:  # fmt: skip
        assert request(web + path, method=method)[0] == 401, (method, path)
    assert request(web + "/api/openapi.json")[0] == 200

    json_headers = {"Content-Type": "application/json"}
    body = json.dumps({"username": "admin", "password": "wrong"}).encode()
    assert request(web + "/api/login", body, json_headers)[0] == 401
    body = json.dumps({"username": "admin", "password": stack.admin_password}).encode()
    status, headers, raw = request(web + "/api/login", body, json_headers)
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=strict" in headers["Set-Cookie"]
    token = json.loads(raw)["csrf_token"]
    new = json.dumps({"url": "http://127.0.0.1:9/api-added.html", "title": "API"}).encode()
    assert request(web + "/api/sources", new, {**json_headers, "Cookie": cookie})[0] == 403  # no token
    assert (
        request(web + "/api/sources", new, {**json_headers, "Cookie": cookie, "X-CSRF-Token": "x"})[0] == 403
    )
    status, _, raw = request(
        web + "/api/sources", new, {**json_headers, "Cookie": cookie, "X-CSRF-Token": token}
    )
    assert status == 201
    sid = json.loads(raw)["id"]
    auth = {"Cookie": cookie, "X-CSRF-Token": token}
    assert request(web + f"/api/sources/{sid}", headers={"Cookie": cookie})[0] == 200
    assert request(web + f"/api/sources/{sid}", method="DELETE", headers={"Cookie": cookie})[0] == 403
    assert request(web + f"/api/sources/{sid}", method="DELETE", headers=auth)[0] == 204
    assert request(web + "/api/logout", b"", auth)[0] == 204
    assert request(web + "/api/sources", headers={"Cookie": cookie})[0] == 401  # the session is over

    # A page on another site posts a form to the console while the admin is logged in: refused.
    admin = admin_login(browser, stack)
    evil = "http://127.0.0.1:9/forged.html"
    page_server.pages["/forged.html"] = (
        f"<html><body><form id=f method=post action='{web}/admin/sources'>"
        f"<input name=url value='{evil}'><input name=csrf_token value='guessed'></form>"
        "<script>document.getElementById('f').submit()</script></body></html>"
    )
    with admin.expect_navigation(url=f"{web}/admin/sources"):
        admin.goto(page_server.url("/forged.html"))
    assert "403" in admin.locator("h1").inner_text()
    assert SourceRegistry(connect(stack.redis_url)).get(evil) is None


@pytest.mark.parametrize(
    "locale, placeholder, launcher_label",
    [
        ("fr-FR", "Posez une question RH…", "Discuter avec Kate"),
        ("ja-JP", "人事について質問してください…", "Kateとチャット"),
    ],
)
def test_embedded_widget_on_a_phone_by_keyboard_in_the_browser_language(
    browser, stack, page_server, locale, placeholder, launcher_label
):
    page_server.pages["/intranet.html"] = (
        "<!doctype html><html><head><meta name=viewport content='width=device-width'>"
        "<style>button, p { color: red; font-size: 40px; }</style></head>"
        f"<body><p>Intranet home</p><script src='{stack.web_url}/kate-widget.js'></script></body></html>"
    )
    page = watched(browser.new_context(locale=locale, viewport={"width": 390, "height": 844}))
    page.goto(page_server.url("/intranet.html"))
    page.wait_for_selector("#kate-widget[data-connected=true]", state="attached")
    launcher = page.locator(".launcher")
    assert launcher.get_attribute("aria-label") == launcher_label
    assert page.locator(".panel").is_hidden()
    launcher.focus()
    page.keyboard.press("Enter")
    assert launcher.get_attribute("aria-expanded") == "true"
    assert page.locator(".panel").get_attribute("role") == "dialog"
    assert page.locator(".messages").get_attribute("role") == "log"
    assert page.evaluate(ACTIVE + ".tagName") == "TEXTAREA"
    assert page.locator("textarea").get_attribute("placeholder") == placeholder
    box = page.locator(".panel").bounding_box()
    assert box["width"] == 390  # the whole phone screen
    assert page.locator(".send").evaluate("b => getComputedStyle(b).fontSize") != "40px"  # page CSS stays out
    question = (
        "Quel est le montant du forfait mobilités durables ?" if locale == "fr-FR" else "給料日はいつですか？"
    )
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    page.locator(".vote").last.wait_for()
    reply = page.locator(".messages").inner_text()
    assert ("Source :" in reply and "700" in reply) if locale == "fr-FR" else "25" in reply
    if locale == "fr-FR":
        page.screenshot(path=str(SCREENSHOTS / "chat-phone.png"))
    page.keyboard.press("Escape")
    assert page.locator(".panel").is_hidden()
    assert page.evaluate(ACTIVE + ".className") == "launcher"
    assert_inert(page)


def test_the_widget_says_when_it_cannot_reach_kate(browser, stack, page_server):
    dead = f"http://127.0.0.1:{free_port()}"
    page_server.pages["/offline.html"] = (
        f"<html><body><script src='{stack.web_url}/kate-widget.js' data-mode='page' "
        f"data-socket-url='{dead}'></script></body></html>"
    )
    page = watched(browser.new_context(locale="en-GB"))
    page.goto(page_server.url("/offline.html"))
    banner = page.locator(".banner")
    banner.wait_for()
    assert banner.inner_text() == "Connection lost. Reconnecting…" and banner.get_attribute("role") == "alert"
    page.fill("textarea", "Is anyone there?")
    page.keyboard.press("Enter")
    assert page.locator(".message.user .body").inner_text() == "Is anyone there?"  # sent on reconnection
    assert re.search(r"kate-widget:", page.evaluate("Object.keys(localStorage).join(',')"))


def test_hr_edits_a_scripted_answer_and_the_next_employee_gets_it(browser, stack):
    store = ScriptedAnswers(connect(stack.redis_url))
    before = store.get("working_hours", "en")
    admin = admin_login(browser, stack)
    admin.click("nav a:has-text('Answers')")
    admin.locator("tr[data-key=working_hours]").locator("a", has_text="Edit").click()
    form = admin.locator("form.answer-form[data-variant='']").first
    new_text = "Core hours are 10:00 to 16:00. " + PAYLOAD
    form.locator("textarea[name=text_en]").fill(new_text)
    form.locator("button", has_text="Save").click()
    admin.wait_for_url("**/admin/answers/working_hours?notice=answers_saved")
    assert "by admin" in admin.locator("form.answer-form").first.inner_text()
    admin.screenshot(path=str(SCREENSHOTS / "console-answer.png"), full_page=True)
    assert_inert(admin)
    try:
        chat = open_chat(browser, stack)
        ask(chat, "what are the working hours?")
        wait_for_text(chat, "Core hours are 10:00 to 16:00.")
        assert "<script>alert('kate-xss')</script>" in chat.locator(".message.bot").last.inner_text()  # text
        assert_inert(chat)
    finally:
        store.put(before)


def parking_page() -> str:
    return (
        "<html lang='en'><head><title>Parking</title></head><body><main><h1>Parking</h1>"
        "<h2>Until March 2026</h2><p>Staff park in the Lilac car park on Rue Verte, behind the main "
        "entrance. Badges open the barrier.</p>"
        "<h2>From April 2026</h2><p>Staff park in the Cedar car park under building B. Badges open the "
        "barrier from 7:00.</p></main></body></html>"
    )


def test_a_passage_hidden_in_the_console_is_no_longer_used(browser, stack, page_server):
    page_server.pages["/parking.html"] = parking_page()
    url = page_server.url("/parking.html")
    question = "In which car park do staff park?"
    admin = admin_login(browser, stack)
    add_and_fetch(admin, url)
    try:
        chat = open_chat(browser, stack)
        assert answered_from(chat, question, url)
        said = chat.locator(".message.bot", has=chat.locator(f"a[href='{url}']")).last.inner_text()
        first = next(name for name in ("Lilac", "Cedar") if name in said)
        # HR hides the passage Kate answered from (say, the outdated one)
        admin.locator("ol.passages li", has_text=f"{first} car park").locator(
            "button", has_text="Hide"
        ).click()
        admin.wait_for_url("**notice=hidden")
        assert "Hidden." in admin.locator("ol.passages li", has_text=f"{first} car park").inner_text()
        admin.goto(stack.web_url + "/admin/sources")
        assert "1 hidden" in admin.locator("tr", has_text=url).inner_text()
        admin.screenshot(path=str(SCREENSHOTS / "console-hidden-passage.png"), full_page=True)
        shown = chat.locator(".message.bot").count()
        assert answered_from(chat, question, url)  # the page still answers, from its other passage
        later = " ".join(
            chat.locator(".message.bot").nth(i).inner_text()
            for i in range(shown, chat.locator(".message.bot").count())
        )
        assert f"{first} car park" not in later
        assert_inert(chat)
    finally:
        SourceRegistry(connect(stack.redis_url)).remove(url)


def test_two_thumbs_down_offer_a_person_and_the_console_counts_it(browser, stack):
    chat = open_chat(browser, stack)
    ask(chat, "Above what value must a gift be declared?")
    downs = 0
    for _ in range(2):  # the offer comes at the second 👎, or sooner when the answers run out
        count = chat.locator(".message.bot").count()
        chat.wait_for_function(LAST_REPLY_DONE, arg=count - 1)
        down = chat.locator(".message.bot").last.locator(".vote[data-vote=down]")
        if down.count() == 0:
            break
        down.click()
        downs += 1
        chat.wait_for_function(LAST_REPLY_DONE, arg=count)
    assert downs >= 1
    offer = chat.locator(".message.bot").last.locator("button.choice", has_text="Contact HR")
    offer.click()
    wait_for_text(chat, "You can reach HR here:")
    mail = chat.locator(".message.bot").last.locator("a[href^='mailto:people@northwind.example']")
    assert "gift" in mail.get_attribute("href")  # the mail carries the question
    chat.screenshot(path=str(SCREENSHOTS / "chat-contact-hr.png"))
    assert_inert(chat)
    admin = admin_login(browser, stack)
    admin.click("nav a:has-text('Contacts')")
    escalations = admin.locator("#escalations").inner_text()
    assert "Above what value must a gift be declared?" in escalations
    assert "second_down" in escalations or "no_other" in escalations
    assert (
        int(
            re.search(r"requests \(offers taken, or employees who asked for HR\): (\d+)", escalations).group(
                1
            )
        )
        >= 1
    )
    admin.click("nav a:has-text('Analytics')")  # the charts render under the strict CSP, no CDN
    assert admin.locator("#totals svg.chart").count() == 2
    assert admin.locator("#totals svg.chart rect").count() >= 1
    assert int(re.search(r"requests to reach HR: (\d+)", admin.locator("#totals").inner_text()).group(1)) >= 1
    admin.screenshot(path=str(SCREENSHOTS / "console-analytics.png"), full_page=True)
    assert_inert(admin)


def test_hr_verifies_an_answer_and_the_question_and_a_french_paraphrase_get_it(browser, stack):
    question = "What is the individual training budget per year?"
    paraphrase = "Quel est le budget de formation individuel par an ?"
    chat = open_chat(browser, stack)
    ask(chat, question)
    count = chat.locator(".message.bot").count()
    chat.wait_for_function(LAST_REPLY_DONE, arg=count - 1)
    chat.locator(".message.bot").last.locator(".vote[data-vote=down]").click()
    chat.wait_for_function(LAST_REPLY_DONE, arg=count)

    admin = admin_login(browser, stack)
    admin.goto(stack.web_url + "/admin/feedback?vote=down&q=" + "individual training budget")
    admin.locator("#feedback-table tr", has_text=question).first.locator("a", has_text="Verify").click()
    admin.wait_for_url("**/admin/verify?q=*")
    assert admin.locator("input[name=question]").input_value() == question
    admin.select_option("select[name=source]", label="Training and development")
    admin.click("button:has-text('Show its passages')")
    passage = admin.locator("ol.selectable .passage-text", has_text="1,500 euros").first
    passage.evaluate(
        """(el) => {
            const node = [...el.childNodes].find(n => n.textContent.includes('1,500 euros'));
            const start = node.textContent.indexOf('1,500 euros');
            const range = document.createRange();
            range.setStart(node, start);
            range.setEnd(node, start + '1,500 euros'.length);
            const selection = window.getSelection();
            selection.removeAllRanges();
            selection.addRange(range);
            el.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));
        }"""
    )
    assert admin.locator("#verify-answer").input_value() == "1,500 euros"  # the selection, as text
    assert admin.locator("#verify-source").input_value().endswith("/en/training.html")
    admin.screenshot(path=str(SCREENSHOTS / "console-verify.png"), full_page=True)
    admin.click("#verify-form button[type=submit]")
    admin.wait_for_url("**/admin/verified?notice=verified")
    row = admin.locator("#verified-table tr", has_text=question)
    assert "1,500 euros" in row.inner_text() and "yes" in row.inner_text()  # kept with its passage
    assert_inert(admin)

    try:
        for asked, confirmed in (
            (question, "Confirmed by HR."),
            (paraphrase, "Réponse confirmée par les RH."),
        ):
            before = chat.locator(".message.bot").count()
            ask(chat, asked)
            reply = reply_after(chat, before, confirmed, "Training")
            assert "1,500 euros" in reply, reply
        assert_inert(chat)
    finally:
        store = VerifiedAnswers(connect(stack.redis_url))
        for v in store.all():
            store.remove(v.id)


def test_the_console_renders_in_japanese_and_french(browser, stack):
    page = watched(browser.new_context(locale="ja-JP"))  # the browser's language: Japanese
    page.goto(stack.web_url + "/admin/login")
    assert (
        page.locator("html").get_attribute("lang") == "ja" and page.locator("h1").inner_text() == "ログイン"
    )
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", stack.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/sources")
    assert page.locator("h1").inner_text() == "ソース" and "ソースを追加" in page.locator("main").inner_text()
    page.click("nav.languages a[lang=fr]")  # chosen in the header: kept for the next pages
    assert page.locator("h2", has_text="Ajouter une source").count() == 1
    page.click("nav a:has-text('Statistiques')")
    assert (
        page.locator("h1").inner_text() == "Statistiques"
        and page.locator("html").get_attribute("lang") == "fr"
    )
    assert_inert(page)


def test_the_widget_shows_lists_numbered_steps_and_table_rows_readably(browser, stack):
    with lumen_intranet(stack):
        chat = open_chat(browser, stack, viewport={"width": 520, "height": 1100})
        before = chat.locator(".message.bot").count()
        ask(chat, "Which documents do I need to bring on my first day?")
        reply_after(chat, before, "passport-size photo", "Source")
        last = chat.locator(".message.bot").last
        assert last.locator("ul > li").count() == 5 and last.locator("strong").first.inner_text() == (
            "Documents to bring on your first day"
        )
        before = chat.locator(".message.bot").count()
        ask(chat, "Quelles sont les étapes pour ajouter un ayant droit à la mutuelle ?")
        reply_after(chat, before, "Validez", "Source")
        steps = chat.locator(".message.bot").last.locator("ol > li")
        assert steps.count() == 5 and steps.first.inner_text().startswith("Connectez-vous")
        before = chat.locator(".message.bot").count()
        ask(chat, "What is the hotel cap per night in London?")
        # the row and its source page's title; the source is a paragraph of its own and may come later
        reply_after(chat, before, "London · Hotel cap per night: 210 GBP", "Business travel")
        chat.screenshot(path=str(SCREENSHOTS / "chat-lists.png"))
        assert_inert(chat)


def test_the_widget_passes_the_pages_signed_token_and_only_managers_read_their_page(
    browser, stack, page_server
):
    from lumen import SECRET

    from knowledge.audience import Employee, sign

    question = "What is the target bonus for managers?"
    with lumen_intranet(stack) as lumen:
        bonus = lumen.url("en/managers-bonus.html")
        for name, token, sees in [
            ("manager", sign(Employee(groups=("managers",)), SECRET), True),
            ("engineer", sign(Employee(groups=("engineers",)), SECRET), False),
            ("forged", sign(Employee(groups=("managers",)), "guessed"), False),
        ]:
            page_server.pages[f"/{name}.html"] = (
                f"<!doctype html><html><body><p>Intranet</p><script src='{stack.web_url}/kate-widget.js' "
                f"data-mode='page' data-lang='en' data-employee-token='{token}'></script></body></html>"
            )
            page = watched(browser.new_context())
            page.goto(page_server.url(f"/{name}.html"))
            page.wait_for_selector("#kate-widget[data-connected=true]", state="attached")
            before = page.locator(".message.bot").count()
            ask(page, question)
            page.wait_for_function(LAST_REPLY_DONE.replace("no other answer", "HR"), arg=before)
            reply = "\n".join(page.locator(".message.bot").all_inner_texts()[before:])
            assert ("15%" in reply) is sees, (name, reply)
            assert (page.locator(f".message.bot a[href='{bonus}']").count() > 0) is sees, name
            page.context.close()
