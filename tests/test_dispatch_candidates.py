"""The SQL search agrees with eligibility.assess() and finds the nearest eligible donors first."""

import random
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from dispatcher.candidates import Search, call_list, count_eligible, fetch_ranked, medical_conditions, red_cell_days
from dispatcher.compat import compatible_tiers
from ground.eligibility import DonorFacts, assess
from dispatcher.ranking import RankContext
from models.dispatch_tables import DonorCommitment, RequestContact
from models.geo import geo_cell
from models.tables import Club, ClubMembership, Donation, Donor, Hospital, TelegramUser
from ground.config import DispatchConfig, EligibilityConfig

RULES = EligibilityConfig()
TODAY = date(2024, 2, 29)  # a leap day: age and interval edges at their worst
NOW = datetime(2024, 2, 29, 3, 0, tzinfo=timezone.utc)
HOSP = (21.0285, 105.8542)  # Hà Nội


def edge_dates(anchor, spans):
    out = []
    for years, days in spans:
        try:
            base = anchor.replace(year=anchor.year - years)
        except ValueError:
            base = anchor.replace(year=anchor.year - years, day=28)
        out += [base + timedelta(days=d) for d in (-1, 0, 1)] if days is None else [anchor - timedelta(days=days + d) for d in (-1, 0, 1)]
    return out


def random_donor(rng, i):
    births = edge_dates(TODAY, [(18, None), (60, None), (61, None)]) + [date(1990, 5, 5), date(2006, 2, 28), date(2006, 3, 1), None]
    lasts = edge_dates(TODAY, [(0, 84), (0, 14)]) + [None, TODAY - timedelta(days=400), TODAY]
    lat = HOSP[0] + rng.uniform(-0.2, 0.2)
    lon = HOSP[1] + rng.uniform(-0.2, 0.2)
    return Donor(
        full_name=f"Donor {i}", phone=f"+8490{i:07d}", telegram_id=8_000_000_000 + i,
        abo=rng.choice(["O", "A", "B", "AB", None]), rh=rng.choice(["+", "-", "+", None]),
        sex=rng.choice(["M", "F", None]), birth_date=rng.choice(births),
        weight_kg=rng.choice([None, 41.9, 42.0, 44.9, 45.0, 49.9, 50.0, 70.0]),
        last_donation_date=rng.choice(lasts),
        last_donation_component=rng.choice([None, "whole_blood", "red_cells", "platelets", "plasma"]),
        status=rng.choice(["active", "active", "paused", "deferred", "retired"]),
        status_until=rng.choice([None, TODAY, TODAY + timedelta(days=1), TODAY - timedelta(days=1)]),
        lat=lat, lon=lon, geo_cell=geo_cell(lat, lon), consent_contact_at=NOW,
    )


async def test_the_sql_filter_agrees_with_assess_donor_by_donor(db_sessionmaker):
    rng = random.Random(3)
    donors = [random_donor(rng, i) for i in range(600)]
    # Donation histories around the yearly limit's window (a year back from a leap day), of every kind.
    year_edges = [date(2023, 2, 27), date(2023, 2, 28), date(2023, 3, 1), date(2023, 6, 1), date(2023, 9, 1),
                  date(2023, 12, 1), TODAY, TODAY + timedelta(days=1)]
    async with db_sessionmaker() as s:
        s.add_all(donors)
        await s.flush()
        history: dict[int, list[date]] = {}
        for d in donors:
            for day in rng.sample(year_edges, rng.choice([0, 0, 3, 4, 5, 6, 7, 8])):
                kind = rng.choice(["whole_blood", "red_cells", "whole_blood", "platelets", "plasma"])
                s.add(Donation(donor_id=d.id, donated_on=day, component=kind))
                if kind in ("whole_blood", "red_cells"):
                    history.setdefault(d.id, []).append(day)
        await s.commit()
        assert any(len(v) >= 4 for v in history.values())
        found = await red_cell_days(s, [d.id for d in donors], TODAY)
        assert found == {k: tuple(sorted(x for x in v if date(2023, 2, 28) < x <= TODAY))
                         for k, v in history.items() if any(date(2023, 2, 28) < x <= TODAY for x in v)}
        for component in ("whole_blood", "red_cells", "platelets", "plasma"):
            rows = await s.exec(select(Donor.id).where(*medical_conditions(component, TODAY, RULES)))
            in_sql = {r[0] for r in rows}
            by_assess = {d.id for d in donors
                         if assess(DonorFacts.of(d, tuple(history.get(d.id, ()))), TODAY, RULES, component).eligible}
            assert in_sql == by_assess, component
        assert 10 < len(in_sql) < 590  # the edges really are on both sides
        limited = {d.id for d in donors
                   if assess(DonorFacts.of(d, tuple(history.get(d.id, ()))), TODAY, RULES).reasons == ("yearly_limit",)}
        assert limited  # the yearly limit alone really does hold some back


def test_the_day_before_the_interval_ends_she_waits_and_on_the_day_she_may_give():
    gave = date(2026, 1, 1)
    facts = DonorFacts("O", "+", "F", date(1990, 1, 1), 55, gave, "whole_blood")
    assert not assess(facts, gave + timedelta(days=83), RULES).eligible
    assert assess(facts, gave + timedelta(days=84), RULES).eligible


def setup(rng, n, *, linked=True):
    out = []
    for i in range(n):
        lat, lon = HOSP[0] + rng.uniform(-0.6, 0.6), HOSP[1] + rng.uniform(-0.6, 0.6)
        out.append(Donor(full_name=f"D{i}", phone=f"+8491{i:07d}", telegram_id=(9_000_000_000 + i) if linked else None,
                         abo=rng.choice(["O", "A", "B", "AB"]), rh="+" if rng.random() > 0.05 else "-",
                         lat=lat, lon=lon, geo_cell=geo_cell(lat, lon), consent_contact_at=NOW,
                         last_donation_date=rng.choice([None, TODAY - timedelta(days=rng.randint(90, 900))])))
    return out


def search_for(abo, rh, radius=None, request_id=None, component="red_cells"):
    return Search(*HOSP, component=component, tiers=compatible_tiers(abo, rh, component), now=NOW, today=TODAY,
                  deadline=NOW + timedelta(hours=3), radius_km=radius, request_id=request_id)


def ctx():
    return RankContext.of(hospital_lat=HOSP[0], hospital_lon=HOSP[1], now=NOW, today=TODAY,
                          deadline=NOW + timedelta(hours=3), dispatch=DispatchConfig(), eligibility=RULES)


async def test_the_ring_search_returns_exactly_the_best_of_a_full_scan(db_sessionmaker):
    rng = random.Random(5)
    donors = setup(rng, 1500)
    async with db_sessionmaker() as s:
        s.add_all(donors)
        s.add_all([TelegramUser(telegram_id=d.telegram_id) for d in donors])
        await s.commit()
        for abo, rh in [("O", "+"), ("AB", "+"), ("A", "-")]:
            for radius in (None, 30.0):
                got = await fetch_ranked(s, search_for(abo, rh, radius), ctx(), RULES, limit=40, start_radius_km=5)
                full = await fetch_ranked(s, search_for(abo, rh, radius), ctx(), RULES, limit=5000, start_radius_km=500)
                assert [r.donor_id for r in got] == [r.donor_id for r in full[:40]], (abo, rh, radius)
                assert [r.score for r in got] == sorted(r.score for r in got)


async def test_unreachable_committed_already_asked_and_capped_donors_are_left_out(db_sessionmaker):
    rng = random.Random(6)
    donors = setup(rng, 40)
    for d in donors:
        d.abo, d.rh = "O", "+"
    async with db_sessionmaker() as s:
        s.add(Hospital(name="BV", lat=HOSP[0], lon=HOSP[1]))
        s.add_all(donors)
        await s.flush()
        blocked, unstarted, committed, asked, capped, no_consent = donors[:6]
        no_consent.consent_contact_at = None
        s.add_all([TelegramUser(telegram_id=d.telegram_id) for d in donors if d is not unstarted])
        await s.flush()
        (await s.get(TelegramUser, blocked.telegram_id)).blocked_at = NOW
        from models.dispatch_tables import BloodRequest
        reqs = [BloodRequest(hospital_id=1, abo="O", rh="+", component="red_cells", units=1, urgency="urgent",
                             deadline=NOW + timedelta(hours=3)) for _ in range(4)]
        s.add_all(reqs)
        await s.flush()
        s.add(DonorCommitment(donor_id=committed.id, request_id=reqs[1].id, until=NOW + timedelta(hours=1)))
        s.add(RequestContact(request_id=reqs[0].id, donor_id=asked.id, asked_at=NOW))
        for r in reqs[1:4]:
            s.add(RequestContact(request_id=r.id, donor_id=capped.id, asked_at=NOW - timedelta(days=2)))
        s.add(RequestContact(request_id=reqs[1].id, donor_id=None, asked_at=NOW))  # a forgotten donor
        await s.commit()
        got = {r.donor_id for r in await fetch_ranked(s, search_for("O", "+", request_id=reqs[0].id), ctx(), RULES, 100)}
        assert got == {d.id for d in donors[6:]}
        assert await count_eligible(s, search_for("O", "+", request_id=reqs[0].id), RULES, at_most=10) == 10
        overridden = search_for("O", "+", request_id=reqs[0].id)
        overridden.cap_count = None
        assert capped.id in {r.donor_id for r in await fetch_ranked(s, overridden, ctx(), RULES, 100)}


async def test_the_call_list_holds_the_donors_the_bot_cannot_reach_for_their_own_club(db_sessionmaker):
    rng = random.Random(7)
    donors = setup(rng, 10, linked=False)
    for d in donors:
        d.abo, d.rh = "B", "-"
    async with db_sessionmaker() as s:
        s.add_all(donors)
        a, b = Club(name="A", lat=0, lon=0), Club(name="B", lat=0, lon=0)
        s.add_all([a, b])
        await s.flush()
        for i, d in enumerate(donors):
            s.add(ClubMembership(club_id=a.id if i < 6 else b.id, donor_id=d.id))
        await s.commit()
        entries = await call_list(s, search_for("B", "-"), RULES, [a.id])
        assert {e.donor_id for e in entries} == {d.id for d in donors[:6]}
        assert all(e.why == "not_linked" and e.phone.startswith("+84") for e in entries)
        assert {e.blood_type for e in entries} == {"B−"}  # the RhD minus sign, as everywhere else (UX.md)
        assert await call_list(s, search_for("B", "-"), RULES, []) == []  # no club of one's own: nobody


async def test_a_donor_who_agreed_only_to_keep_her_profile_is_on_no_call_list(db_sessionmaker):
    donors = setup(random.Random(3), 2, linked=False)
    for d in donors:
        d.abo, d.rh = "B", "-"
    donors[1].consent_profile_at, donors[1].consent_contact_at = NOW, None
    async with db_sessionmaker() as s:
        s.add_all(donors)
        club = Club(name="A", lat=0, lon=0)
        s.add(club)
        await s.flush()
        s.add_all([ClubMembership(club_id=club.id, donor_id=d.id) for d in donors])
        await s.commit()
        entries = await call_list(s, search_for("B", "-"), RULES, [club.id])
        assert [e.donor_id for e in entries] == [donors[0].id]


def _planar_km2(lat, lon):
    import math

    kx = 111.32 * math.cos(math.radians(HOSP[0]))
    dy, dx = (lat - HOSP[0]) * 111.2, (lon - HOSP[1]) * kx
    return dy * dy + dx * dx


@pytest.mark.parametrize("channels", [(), ("sms",)])
async def test_the_search_returns_the_donors_and_order_of_scoring_every_eligible_donor(db_sessionmaker, channels):
    """The fast path (rings, bounds, filters in SQL) against rank_donors over every donor, answer history included.

    Random donors near Hà Nội, some without a location, some ineligible; some with a history
    of answering (it moves them), some committed, already asked or at the contact cap. Some
    agreed to SMS (some of those numbers undeliverable): with SMS usable (issue 15) they are
    candidates whether or not Telegram reaches them; a donor who refused calls never is.
    """
    from models.tables import DonorChannel
    from dispatcher.compat import compatible_tiers as tiers_of
    from dispatcher.ranking import Candidate, rank_donors
    from models.dispatch_tables import BloodRequest

    rng = random.Random(12)
    donors = []
    for i in range(1400):
        d = random_donor(rng, i)
        d.lat, d.lon = HOSP[0] + rng.uniform(-0.3, 0.3), HOSP[1] + rng.uniform(-0.3, 0.3)
        if rng.random() < 0.03:
            d.lat = d.lon = None
        d.geo_cell = geo_cell(d.lat, d.lon)
        d.abo = rng.choice(["O", "O", "A", "B", "AB"])
        d.rh = "+" if rng.random() > 0.1 else "-"
        d.status = "active" if rng.random() < 0.9 else "retired"
        d.consent_contact_at = None if rng.random() < 0.05 else NOW
        if d.consent_contact_at is None and rng.random() < 0.5:
            d.consent_profile_at = NOW  # she said: keep my profile, do not call me
        donors.append(d)
    async with db_sessionmaker() as s:
        s.add(Hospital(name="BV", lat=HOSP[0], lon=HOSP[1]))
        s.add_all(donors)
        users = [TelegramUser(telegram_id=d.telegram_id, blocked_at=NOW if rng.random() < 0.05 else None)
                 for d in donors if rng.random() < 0.9]
        s.add_all(users)
        await s.flush()
        sms_rows = [DonorChannel(donor_id=d.id, channel="sms", address=f"+849{d.id:08d}", rank=1,
                                 consent_at=None if rng.random() < 0.1 else NOW,
                                 unreachable_at=NOW if rng.random() < 0.1 else None)
                    for d in donors if rng.random() < 0.3]
        s.add_all(sms_rows)
        by_sms = {c.donor_id for c in sms_rows if c.consent_at is not None and c.unreachable_at is None}
        reqs = [BloodRequest(hospital_id=1, abo="O", rh="+", component="red_cells", units=1, urgency="urgent",
                             deadline=NOW + timedelta(hours=3)) for _ in range(12)]
        s.add_all(reqs)
        await s.flush()
        contacts = []
        for d in rng.sample(donors, 300):
            for r in rng.sample(reqs[1:], rng.randint(1, 6)):
                recent = rng.random() < 0.15
                contacts.append(RequestContact(
                    request_id=r.id, donor_id=d.id, state=rng.choice(["notified", "available", "declined", "no_answer",
                                                                      "queued", "unreachable"]),
                    asked_at=NOW - timedelta(days=rng.randint(1, 6) if recent else rng.randint(8, 300)),
                    answered_at=NOW if rng.random() < 0.6 else None))
        asked_now = {d.id for d in rng.sample(donors, 30)}
        contacts += [RequestContact(request_id=reqs[0].id, donor_id=i, asked_at=NOW - timedelta(days=30))
                     for i in asked_now]
        committed = {d.id for d in rng.sample(donors, 30)}
        s.add_all(contacts)
        s.add_all([DonorCommitment(donor_id=i, request_id=reqs[1].id, until=NOW + timedelta(hours=1))
                   for i in committed])
        await s.commit()

        linked = {u.telegram_id for u in users if u.blocked_at is None}
        asked, recent = {}, {}
        for c in contacts:
            if c.state in ("notified", "available", "declined", "no_answer"):
                n, a = asked.get(c.donor_id, (0, 0))
                asked[c.donor_id] = (n + 1, a + (c.answered_at is not None))
            if c.asked_at >= NOW - timedelta(days=7):
                recent[c.donor_id] = recent.get(c.donor_id, 0) + 1

        def everyone(abo, rh, component, radius):
            tiers = tiers_of(abo, rh, component)
            tier_of = {ab: t for t in tiers for ab in t.types}
            out = []
            for d in donors:
                t = tier_of.get((d.abo, d.rh))
                on_telegram = d.telegram_id in linked and d.consent_contact_at is not None
                refused = d.consent_profile_at is not None and d.consent_contact_at is None
                off_telegram = bool(channels) and d.id in by_sms and not refused
                if (t is None or not assess(DonorFacts.of(d), TODAY, RULES, component).eligible
                        or not (on_telegram or off_telegram)
                        or d.id in committed or d.id in asked_now or recent.get(d.id, 0) >= 3):
                    continue
                if radius is not None and (d.lat is None or _planar_km2(d.lat, d.lon) > radius * radius):
                    continue
                n, a = asked.get(d.id, (0, 0))
                out.append(Candidate(d.id, d.abo, d.rh, t.index, t.kind, d.lat, d.lon, d.last_donation_date,
                                     d.last_donation_component, asked=n, answered=a))
            return out

        checked = 0
        for abo, rh, component in [("O", "+", "red_cells"), ("AB", "+", "platelets"), ("A", "+", "whole_blood")]:
            for radius in (None, 12.0, 30.0):
                for hours in (0.75, 3.0):
                    deadline = NOW + timedelta(hours=hours)
                    search = Search(*HOSP, component=component, tiers=compatible_tiers(abo, rh, component), now=NOW,
                                    today=TODAY, deadline=deadline, radius_km=radius, request_id=reqs[0].id,
                                    channels=channels)
                    rctx = RankContext.of(hospital_lat=HOSP[0], hospital_lon=HOSP[1], now=NOW, today=TODAY,
                                          deadline=deadline, dispatch=DispatchConfig(), eligibility=RULES)
                    reference = rank_donors(everyone(abo, rh, component, radius), rctx)
                    for limit in (7, 60):
                        got = await fetch_ranked(s, search, rctx, RULES, limit, start_radius_km=2)
                        case_ = (abo, rh, component, radius, hours, limit)
                        assert [r.donor_id for r in got] == [r.donor_id for r in reference[:limit]], case_
                        assert [r.reasons for r in got] == [r.reasons for r in reference[:limit]], case_
                        checked += len(got)
        assert checked > 500
