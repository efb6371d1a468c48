"""Linking codes: the parser (property tests) and their life in the database — once, a day, one chat."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from dispatcher.channel_links import code_hash, is_consent, issue_code, redeem
from ground.link_codes import ALPHABET, LENGTH, format_code, new_code, parse_code
from models.tables import ChannelLinkCode, DonorChannel
from tests.dispatch_helpers import START, town

codes = st.text(alphabet=ALPHABET, min_size=LENGTH, max_size=LENGTH)


@given(codes, st.lists(st.sampled_from([" ", "-", "  ", "_", "."]), max_size=3), st.booleans())
def test_a_code_reads_back_however_it_is_typed(code, noise, lower):
    typed = format_code(code)
    for sep in noise:
        typed = typed[:2] + sep + typed[2:]
    typed = f"  {typed.lower() if lower else typed} "
    assert parse_code(typed) == code


@given(st.text(max_size=20))
def test_anything_parsed_is_a_canonical_code(text):
    code = parse_code(text)
    assert code is None or (len(code) == LENGTH and set(code) <= set(ALPHABET))


@given(st.sampled_from(["CO", "KHONG", "KO", "có", "không", "Ko"]), st.integers(0, 10**9))
def test_no_keyword_answer_is_ever_taken_for_a_code(word, n):
    assert parse_code(f"{word} {n}") is None
    assert parse_code(f"{word}{n}") is None


def test_look_alikes_are_not_in_the_alphabet_and_codes_are_random():
    assert not set("01OIL") & set(ALPHABET)
    assert len({new_code() for _ in range(200)}) == 200
    assert parse_code("ABCD-EFG0") is None and parse_code("ABCD-EFGHJ") is None


def test_consent_is_dong_y_in_any_spelling():
    assert all(is_consent(t) for t in ("DONG Y", "đồng ý", "Đồng Ý.", " dong  y! ", "dongy"))
    assert not any(is_consent(t) for t in ("dong", "CO 12", "đồng ý không", ""))


async def test_a_code_links_once_expires_after_its_hours_and_never_steals_another_donors_chat(db_sessionmaker):
    sm = db_sessionmaker
    _hid, (lan, mai) = await town(sm, n=2)
    rng = random.Random(3)
    async with sm() as s, s.begin():
        old = await issue_code(s, lan, "zalo", now=START, hours=24, created_by=None, rng=rng)
        code = await issue_code(s, lan, "zalo", now=START, hours=24, created_by=None, rng=rng)
        late = await issue_code(s, mai, "zalo", now=START, hours=1, created_by=42, rng=rng)
        stored = (await s.exec(select(ChannelLinkCode.code_hash))).all()
    assert code not in stored and code_hash(code) in stored  # only the hash is kept
    async with sm() as s, s.begin():
        assert (await redeem(s, "zalo", "zl", old, now=START)).outcome == "unknown"  # replaced by the new one
        assert (await redeem(s, "zalo", "zl", "hello", now=START)).outcome == "not_a_code"
        assert (await redeem(s, "zalo", "zl", format_code(code), now=START)).outcome == "linked"
    async with sm() as s, s.begin():
        assert (await redeem(s, "zalo", "zl", code, now=START)).outcome == "used"
        assert (await redeem(s, "zalo", "zm", late, now=START + timedelta(hours=1))).outcome == "expired"
    async with sm() as s, s.begin():
        again = await issue_code(s, mai, "zalo", now=START, hours=24, created_by=42, rng=rng)
    async with sm() as s, s.begin():
        # Mai's code sent from Lan's chat: that chat is Lan's; nothing changes for either.
        assert (await redeem(s, "zalo", "zl", again, now=START)).outcome == "taken"
    async with sm() as s:
        rows = {c.donor_id: (c.address, c.consent_at) for c in (await s.exec(select(DonorChannel).where(
            DonorChannel.channel == "zalo"))).all()}
    assert rows == {lan: ("zl", None)}  # known, not agreed to: never used for a call yet


async def test_forgetting_a_donor_removes_her_zalo_link_and_her_codes(db_sessionmaker):
    from models.donors import forget

    sm = db_sessionmaker
    _hid, (lan,) = await town(sm, n=1)
    async with sm() as s, s.begin():
        code = await issue_code(s, lan, "zalo", now=START, hours=24, created_by=None)
        assert (await redeem(s, "zalo", "zl", code, now=START)).outcome == "linked"
        await issue_code(s, lan, "zalo", now=START, hours=24, created_by=None)
    async with sm() as s:
        await forget(s, lan, now=START, actor="test")
        await s.commit()
    async with sm() as s:
        assert (await s.exec(select(DonorChannel))).all() == []
        assert (await s.exec(select(ChannelLinkCode))).all() == []
