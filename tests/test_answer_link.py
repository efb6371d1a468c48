"""The signed answer link (issue 15): a token bound to one ask, and its one-screen page on the bot's own
HTTP server, driven by a real HTTP client against the running server, answering through the real engine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from hypothesis import given, settings as hsettings, strategies as st
from sqlmodel import select

from bot.answer_page import AnswerPage, answer_url, call_links
from bot.i18n import make_i18n
from bot.ops_server import Health, OpsServer, UpdateActivity
from bot.sms_render import render_sms
from dispatcher.link_answers import LinkAnswers
from dispatcher.metrics import Metrics
from dispatcher.sender import Outgoing
from ground.answer_link import BadLink, LinkClaim, sign, verify
from ground.config import SmsConfig
from ground.sms_text import count_parts
from models.dispatch_tables import RequestContact
from models.tables import AuditLog
from tests.dispatch_helpers import START, STAFF_TG, contacts, make, post, request, town
from tests.test_sms_render import call

SECRET = "a-test-secret-of-some-length"
LATER = START + timedelta(hours=3)
I18N = make_i18n("vi")

ids = st.integers(min_value=0, max_value=2**32 - 1)


@given(ids, ids, st.integers(min_value=1, max_value=10**8))
def test_a_token_says_what_was_signed_until_it_expires(contact_id, request_id, seconds):
    claim = LinkClaim(contact_id, request_id, datetime.fromtimestamp(1_700_000_000 + seconds, timezone.utc))
    token = sign(claim, SECRET)
    assert len(token) == 27 and token.isascii()
    assert verify(token, SECRET, claim.expires_at - timedelta(seconds=1)) == claim
    with pytest.raises(BadLink) as expired:
        verify(token, SECRET, claim.expires_at)
    assert expired.value.reason == "expired" and expired.value.claim == claim


@hsettings(max_examples=300)
@given(ids, ids, st.data())
def test_a_token_altered_anywhere_is_refused_or_says_exactly_the_same(contact_id, request_id, data):
    claim = LinkClaim(contact_id, request_id, LATER)
    token = sign(claim, SECRET)
    i = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    c = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.%"))
    altered = token[:i] + c + token[i + 1:]
    try:
        got = verify(altered, SECRET, START)
    except BadLink as bad:
        assert bad.reason == "tampered"
    else:  # base64's last character has two unused bits: the same bytes, the same claim, never another
        assert got == claim


@given(st.text(max_size=60))
def test_any_string_is_refused_as_tampered_never_a_crash(token):
    with pytest.raises(BadLink):
        verify(token, SECRET, START)


def test_another_secret_or_none_makes_no_token_valid():
    token = sign(LinkClaim(1, 2, LATER), SECRET)
    for secret in ("another-secret-of-length", ""):
        with pytest.raises(BadLink):
            verify(token, secret, START)


# --------------------------------------------------------------------------- in the SMS

def test_the_link_goes_into_a_call_only_while_it_fits_two_parts():
    params = call()
    out = Outgoing(1, "call:123:5@sms", 9, "call", params, "vi", None, "+84910000005", contact_id=5)
    link = call_links("https://rr.example.vn", SECRET)(out)
    assert link is not None and link.startswith("https://rr.example.vn/a/") and len(link) == 51
    # With diacritics the call alone takes 2 UCS-2 parts (111 of 134): the link would make it 3 (163).
    accented = render_sms(out, I18N, "vi", SmsConfig(), link)
    assert link not in accented and count_parts(accented).parts == 2
    # Unaccented, the call is one GSM-7 part; with the link, two.
    plain = render_sms(out, I18N, "vi", SmsConfig(unaccented=True), link)
    assert plain.endswith(" " + link) and count_parts(plain).parts == 2
    # Allowed three parts, the accented call carries it too.
    assert render_sms(out, I18N, "vi", SmsConfig(max_parts=3), link).endswith(link)


def test_only_a_call_with_its_ask_gets_a_link():
    links = call_links("https://rr.example.vn", SECRET)
    assert links(Outgoing(1, "k", 9, "call", call(), "vi", None, "+84", contact_id=None)) is None


# --------------------------------------------------------------------------- the page, over HTTP

@pytest.fixture
async def page(db_sessionmaker):
    hid, donors = await town(db_sessionmaker, n=3, abo="O", rh="-")
    d, sender, _tg, clock = make(db_sessionmaker)
    rid = await post(d, hid, abo="O", rh="-", units=1)
    await sender.run_until_idle()
    answer_page = AnswerPage(LinkAnswers(db_sessionmaker, d, clock=clock), SECRET, I18N, "vi",
                             d.tz, clock=clock)
    server = OpsServer("127.0.0.1", 0, health=Health(db_sessionmaker, lambda: True, UpdateActivity("polling"), 120),
                       metrics=Metrics(), clock=clock, routes=answer_page.routes())
    await server.start()
    http = aiohttp.ClientSession(f"http://127.0.0.1:{server.port}")
    req = await request(db_sessionmaker, rid)
    asks = await contacts(db_sessionmaker, rid)

    def link(i=0, *, request_id=None, expires=None):
        url = answer_url("", SECRET, asks[i].id, request_id or rid, expires or req.deadline)
        return url  # "/a/<token>": the server's own path
    try:
        yield dict(http=http, rid=rid, d=d, sm=db_sessionmaker, clock=clock, link=link, asks=asks, sender=sender)
    finally:
        await http.close()
        await server.stop()


async def _get(p, url):
    async with p["http"].get(url) as r:
        return r.status, await r.text()


async def _press(p, url, answer):
    async with p["http"].post(url, data={"answer": answer}) as r:
        return r.status, await r.text()


async def _state(p, i=0):
    async with p["sm"]() as s:
        return (await s.get(RequestContact, p["asks"][i].id)).state


async def test_the_page_shows_the_hospital_time_and_code_and_nothing_about_her(page):
    status, html = await _get(page, page["link"]())
    assert status == 200
    assert f"Yêu cầu hiến máu {page['rid']}" in html and "BV Bạch Mai cần máu trước" in html
    assert "Tôi sẽ đến" in html and "Lần này không đến được" in html
    assert "Donor 000" not in html and "+8498" not in html and "O−" not in html and "O-" not in html


async def test_coming_through_the_link_is_the_engine_answer_a_second_press_says_so_then_withdrawing_works(page):
    url = page["link"]()
    status, html = await _press(page, url, "available")
    assert status == 200 and "Bệnh viện chờ bạn trước" in html
    assert await _state(page) == "available"
    status, html = await _press(page, url, "available")  # the same press again (a double tap, a reload)
    assert status == 200 and "Bạn đã trả lời như vậy rồi" in html
    assert await _state(page) == "available"
    status, html = await _get(page, url)
    assert "Bạn đã nhận lời sẽ đến." in html and "Tôi không thể đến được nữa" in html
    status, html = await _press(page, url, "withdraw")
    assert status == 200 and "bạn không cần đến nữa" in html
    assert await _state(page) == "withdrew"


async def test_a_tampered_or_forged_link_is_refused_and_changes_nothing(page):
    url = page["link"]()
    token = url.rsplit("/", 1)[1]
    forged = "/a/" + ("B" if token[0] != "B" else "C") + token[1:]
    other_request = page["link"](request_id=page["rid"] + 1)  # a real signature, on a request she was not asked for
    for bad in (forged, "/a/not-a-token", other_request):
        status, html = await _press(page, bad, "available")
        assert status in (403, 404) and "Liên kết này không hợp lệ" in html
    assert [await _state(page, i) for i in range(len(page["asks"]))] == [c.state for c in page["asks"]]
    status, _ = await _press(page, url, "hack")  # a button that does not exist
    assert status == 403 and await _state(page) == page["asks"][0].state


async def test_an_expired_link_says_so_and_is_on_the_request_record(page):
    url = page["link"](expires=START + timedelta(minutes=5))
    page["clock"].advance(minutes=6)
    status, html = await _press(page, url, "available")
    assert status == 410 and "Liên kết này đã hết hạn" in html
    assert await _state(page) == page["asks"][0].state
    async with page["sm"]() as s:
        rows = (await s.exec(select(AuditLog.subject).where(AuditLog.action == "answer_link_expired"))).all()
    assert rows == [f"request:{page['rid']}"]


async def test_a_link_to_a_closed_request_says_it_no_longer_asks_and_changes_nothing(page):
    result = await page["d"].desk.cancel(page["rid"], by=STAFF_TG, reason="test")
    assert result.outcome.value == "ok"
    status, html = await _get(page, page["link"]())
    assert status == 200 and "không cần thêm người hiến nữa" in html and "<button" not in html
    before = await _state(page)
    status, html = await _press(page, page["link"](), "available")
    assert "không cần thêm người hiến nữa" in html
    assert await _state(page) == before
    async with page["sm"]() as s:
        closed = (await s.exec(select(AuditLog.subject).where(AuditLog.action == "dispatch_answer_closed"))).all()
    assert closed == [f"request:{page['rid']}"]
