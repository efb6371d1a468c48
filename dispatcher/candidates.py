"""Finding eligible donors near a hospital, in SQL, without scoring the whole country.

The medical pre-filter here is :func:`ground.eligibility.assess` written as SQL
(tests/test_dispatch_candidates.py checks that the two agree donor by donor). On top
come the dispatcher's own filters (issue 3): reachable on Telegram or on another channel
she agreed to that this request may use (``Search.channels``, issue 15), consent to be
contacted (DOMAIN.md §7), not committed elsewhere, not already asked, under the
contact cap.

Search: rings of grid cells (models.geo) around the hospital, widening until the
best ``limit`` donors are certain; SQL orders each ring by (arrives in time, tier,
planar distance) and returns a few hundred rows, each with the donor's answer
history, which Python scores exactly (dispatcher.ranking). A donor left in the
database can beat a fetched one only by the ranking's bounded bonuses, and the loop
fetches more until none can. A wider ring reads only the donors it adds, and a
ring too full for one read is read on from the last row returned: no row is read twice.

Speed (bench/rank.py, BENCHMARKS.md): every statement is built once per shape, with
the request's values as named bind parameters, and run on the session's connection
as plain Core. Building and compiling the SQL expressions anew for each request cost
more than the database's own work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, Integer, and_, bindparam, case, exists, func, null, or_, select, tuple_
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.compat import Tier
from dispatcher.donor_keys import REASKABLE_STATES
from ground.eligibility import APHERESIS, DonorFacts, Rules, add_years, year_window_start
from ground.parsing import format_blood_type
from dispatcher.ranking import GROUP_LATE, Candidate, RankContext, RankedDonor, place_of, rank_donors
from models.dispatch_tables import SAID_AVAILABLE_STATES, ContactState, DonorCommitment, RequestContact
from models.donors import consented_in_bot, refused_contact
from models.geo import cells_within
from models.tables import ClubMembership, Donation, Donor, DonorChannel, TelegramUser, table_of

KM_PER_DEG_LAT = 111.2
# What counts as "asked" in a donor's history: delivered and either open, answered or left silent
# (an answer of "available" stays one through en route, arrived, donated, no-show or released).
ASKED_STATES = ("notified", "declined", "no_answer") + SAID_AVAILABLE_STATES
_APHERESIS = tuple(sorted(APHERESIS))


def _param(name: str, type_, values: dict | None = None) -> ColumnElement:
    """A named bind parameter, given at execution; with ``values``, one that carries its value."""
    return bindparam(name, type_=type_) if values is None else bindparam(name, values[name], type_=type_)


# ------------------------------------------------------------------ conditions
# Built once per shape with named bind parameters; the *_values functions give the values.

def _medical(apheresis: bool, values: dict | None = None) -> list[ColumnElement]:
    D = table_of(Donor).c
    if apheresis:
        weight_ok = D.weight_kg >= _param("min_weight_apheresis", D.weight_kg.type, values)
    else:
        weight_ok = D.weight_kg >= case((D.sex == "F", _param("min_weight_female", D.weight_kg.type, values)),
                                        else_=_param("min_weight_male", D.weight_kg.type, values))
    conds = [
        D.abo.is_not(None),
        D.rh.is_not(None),
        or_(D.status == "active",
            and_(D.status.in_(("paused", "deferred")), D.status_until.is_not(None),
                 D.status_until <= _param("today", D.status_until.type, values))),
        or_(D.birth_date.is_(None),
            and_(D.birth_date <= _param("born_by", D.birth_date.type, values),
                 D.birth_date > _param("born_after", D.birth_date.type, values))),
        or_(D.weight_kg.is_(None), weight_ok),
        # Art. 6.4: the most recent donation's kind sets the wait (eligibility.interval_days).
        or_(D.last_donation_date.is_(None),
            and_(D.last_donation_component.in_(_APHERESIS),
                 D.last_donation_date <= _param("rested_apheresis", D.last_donation_date.type, values)),
            and_(or_(D.last_donation_component.is_(None), D.last_donation_component.not_in(_APHERESIS)),
                 D.last_donation_date <= _param("rested_whole_blood", D.last_donation_date.type, values))),
    ]
    if not apheresis:
        # At most max_whole_blood_per_year red-cell donations in the last 12 months (eligibility.yearly_limit_ends):
        # a lookup on the donation's donor index, for the donors read only.
        Dn = table_of(Donation).c
        given = (select(func.count()).where(Dn.donor_id == D.id, Dn.component.not_in(_APHERESIS),
                                            Dn.donated_on > _param("year_start", Dn.donated_on.type, values),
                                            Dn.donated_on <= _param("today", Dn.donated_on.type, values))
                 .scalar_subquery())
        conds.append(given < _param("max_per_year", Integer, values))
    return conds


def _medical_values(today: date, rules) -> dict:
    return {
        "today": today,
        "born_by": add_years(today, -rules.min_age),  # born on or before: at least min_age today
        "born_after": add_years(today, -(rules.max_age + 1)),  # born on or before: older than max_age
        "min_weight_apheresis": rules.min_weight_apheresis_kg,
        "min_weight_female": rules.min_weight_female_kg,
        "min_weight_male": rules.min_weight_male_kg,
        "rested_apheresis": today - timedelta(days=rules.interval_apheresis_days),
        "rested_whole_blood": today - timedelta(days=rules.interval_whole_blood_days),
        "year_start": year_window_start(today),
        "max_per_year": rules.max_whole_blood_per_year,
    }


async def donor_facts(session: Any, donor: Any, today: date) -> DonorFacts:
    """What eligibility needs about one donor: her row and her donations of the last 12 months."""
    return DonorFacts.of(donor, (await red_cell_days(session, [donor.id], today)).get(donor.id, ()))


async def red_cell_days(session: Any, donor_ids: list[int], today: date) -> dict[int, tuple[date, ...]]:
    """Each donor's whole-blood and red-cell donation days of the 12 months up to ``today``, for
    eligibility.DonorFacts (the yearly limit); donors with none are left out."""
    out: dict[int, list[date]] = {}
    donated_on = col(Donation.donated_on)
    for i in range(0, len(donor_ids), 500):
        rows = (await _execute(session, select(col(Donation.donor_id), donated_on).where(
            col(Donation.donor_id).in_(donor_ids[i:i + 500]), col(Donation.component).not_in(_APHERESIS),
            donated_on > year_window_start(today), donated_on <= today), {})).all()
        for donor_id, day in rows:
            out.setdefault(donor_id, []).append(day)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def medical_conditions(component: str, today: date, rules: Rules) -> list[ColumnElement]:
    """assess(facts, today, rules, component).eligible, as SQL on the donor table."""
    return _medical(component in APHERESIS, _medical_values(today, rules))


def messageable_conditions(require_consent: bool) -> list[ColumnElement]:
    """Reachable by the bot: linked, has started it, not blocked (DOMAIN.md §8), consented (§7)."""
    D, T = table_of(Donor).c, table_of(TelegramUser).c
    return [D.telegram_id.is_not(None), T.telegram_id.is_not(None), T.blocked_at.is_(None),
            *_telegram_consent(require_consent)]


def _telegram_consent(require_consent: bool) -> list[ColumnElement]:
    D = table_of(Donor).c
    return [consented_in_bot(), D.consent_contact_at.is_not(None)] if require_consent else [consented_in_bot()]


def _agreed_channel(donor_id: ColumnElement):
    """Her channels other than Telegram that this request may use (``channels``), agreed to and not
    known undeliverable. Agreeing to a channel is her consent to be called on it (DOMAIN.md §7: per
    purpose and per channel), so it stands for ``consent_contact_at`` there; only a donor who told the
    bot she wants no calls at all (``refused_contact``) is left out."""
    DC = table_of(DonorChannel).c
    return select(DC.id).where(DC.donor_id == donor_id,
                               DC.channel.in_(bindparam("channels", expanding=True, type_=DC.channel.type)),
                               DC.consent_at.is_not(None), DC.unreachable_at.is_(None))


def off_telegram_condition() -> ColumnElement:
    """Reachable on a channel other than Telegram this request may use (the donor table only)."""
    D = table_of(Donor).c
    return and_(_agreed_channel(D.id).exists(), ~refused_contact())


def reachable_condition(shape: tuple) -> ColumnElement:
    """Reachable for this search: on Telegram (DOMAIN.md §8), or on an agreed channel it may use."""
    on_telegram = and_(*messageable_conditions(shape[3]))
    return or_(on_telegram, off_telegram_condition()) if shape[4] else on_telegram


def _history(asked_for_request: bool, capped: bool, *, listing: bool = False) -> list[ColumnElement]:
    """Not committed elsewhere, not already asked for this request, under the contact cap.

    Each is a lookup for the donor's own row (the commitment's key, uq_contact,
    ix_contact_donor_asked), so its cost follows the donors read, not the size of the
    contact log. Forgotten donors' contacts (donor_id NULL) never match a donor.
    """
    D, C, K = table_of(Donor).c, table_of(RequestContact).c, table_of(DonorCommitment).c
    conds = [~exists().where(K.donor_id == D.id, K.until > _param("now", K.until.type))]
    if asked_for_request and listing:
        # The lead's call list: a donor asked but whom no channel reached is exactly whom to phone.
        conds.append(~exists().where(C.request_id == _param("request_id", Integer), C.donor_id == D.id,
                                     C.state.not_in((*REASKABLE_STATES, ContactState.unreachable.value))))
    elif asked_for_request:
        # Told "no longer needed" in an earlier wave of a request that has since reopened: she may be
        # asked again (dispatcher.donor_keys); anyone else asked for this request is not.
        conds.append(~exists().where(C.request_id == _param("request_id", Integer), C.donor_id == D.id,
                                     or_(C.state.not_in(REASKABLE_STATES),
                                         C.wave_no >= _param("reask_before_wave", Integer))))
    if capped:
        recent = (select(func.count()).where(C.donor_id == D.id, C.asked_at >= _param("cap_since", C.asked_at.type))
                  .scalar_subquery())
        conds.append(recent < _param("cap_count", Integer))
    return conds


def type_condition(tiers: Sequence[Tier]) -> ColumnElement:
    D = table_of(Donor).c
    return or_(*[and_(D.abo == a, D.rh == r) for t in tiers for a, r in t.types])


def tier_expression(tiers: Sequence[Tier], D: ReadOnlyColumnCollection | None = None) -> ColumnElement:
    D = table_of(Donor).c if D is None else D
    return case(*[(and_(D.abo == a, D.rh == r), t.index) for t in tiers for a, r in t.types], else_=99)


@dataclass
class Search:
    """One search for a request (or a what-if, with ``request_id`` None)."""

    hospital_lat: float
    hospital_lon: float
    component: str
    tiers: list[Tier]
    now: datetime
    today: date
    deadline: datetime
    radius_km: float | None  # None: every cell and donors without a location (rare types)
    request_id: int | None = None
    cap_count: int | None = 3  # None: the cap is overridden (critical request for a rare type)
    cap_days: int = 7
    require_consent: bool = True
    # Donors told "no longer needed" in a wave before this one may be asked again (0: nobody).
    reask_before_wave: int = 0
    # Channels besides Telegram on which this request may call a donor now (dispatcher.channels.usable):
    # a donor reachable on one of them is a candidate as much as a Telegram donor.
    channels: tuple[str, ...] = ()

    def shape(self) -> tuple:
        """What decides the SQL's text (the rest are bind parameters, see :meth:`values`)."""
        return (self.component in APHERESIS, self.request_id is not None, self.cap_count is not None,
                self.require_consent, bool(self.channels))

    def values(self, rules: Rules) -> dict[str, Any]:
        return {**_medical_values(self.today, rules), "now": self.now, "request_id": self.request_id,
                "cap_since": self.now - timedelta(days=self.cap_days), "cap_count": self.cap_count,
                "reask_before_wave": self.reask_before_wave, "channels": list(self.channels)}


def _donor_conditions(shape: tuple, *, listing: bool = False) -> list[ColumnElement]:
    """Eligible and not held back by history: everything but the blood type and reachability."""
    apheresis, asked_for_request, capped = shape[:3]
    return [*_medical(apheresis), *_history(asked_for_request, capped, listing=listing)]


def _base(tiers: tuple[Tier, ...], shape: tuple, columns, *, messageable: bool = True):
    """``messageable``: only donors the bot can reach for this search; else everyone, for the call
    lists, with the history filter that keeps those asked whom no channel reached."""
    D, T = table_of(Donor), table_of(TelegramUser)
    outer = not messageable or shape[4]
    stmt = select(*columns).select_from(D.join(T, T.c.telegram_id == D.c.telegram_id, isouter=outer))
    stmt = stmt.where(type_condition(tiers), *_donor_conditions(shape, listing=not messageable))
    return stmt.where(reachable_condition(shape)) if messageable else stmt


def _not_reached(shape: tuple) -> ColumnElement:
    """For the call lists: the bot cannot reach her for this search, or it asked and no channel reached her."""
    D, C = table_of(Donor).c, table_of(RequestContact).c
    unreachable = ~reachable_condition(shape)
    if not shape[1]:
        return unreachable
    return or_(unreachable, exists().where(C.request_id == _param("request_id", Integer), C.donor_id == D.id,
                                           C.state == ContactState.unreachable.value))


async def _execute(session, stmt, values: dict):
    # Core on the session's connection (same transaction): the ORM layer adds nothing for plain columns.
    return await (await session.connection()).execute(stmt, values)


@lru_cache(maxsize=256)
def _count_statement(tiers: tuple[Tier, ...], shape: tuple, local: bool):
    D = table_of(Donor).c
    stmt = _base(tiers, shape, [D.id])
    if local:
        stmt = stmt.where(D.geo_cell.in_(bindparam("cells", expanding=True, type_=D.geo_cell.type)))
    sub = stmt.limit(_param("at_most", Integer)).subquery()
    return select(func.count()).select_from(sub)


async def count_eligible(session: AsyncSession, search: Search, rules: Rules, *, at_most: int) -> int:
    """How many messageable eligible donors the search would find, counting no further than ``at_most``."""
    values = {**search.values(rules), "at_most": at_most}
    if search.radius_km is not None:
        values["cells"] = cells_within(search.hospital_lat, search.hospital_lon, search.radius_km)
    stmt = _count_statement(tuple(search.tiers), search.shape(), search.radius_km is not None)
    return (await _execute(session, stmt, values)).scalar_one()


NATIONWIDE_KM = 2500.0  # farther than any two points in Vietnam
K_MUL = 5  # first read: this many times the donors wanted (eligibility filters drop some)
NATIONWIDE_AT_ONCE = 5000  # a compatible pool this small is read whole, without rings
CELL_LIST_MAX_KM = 150.0  # beyond this a cell list grows too long; the lat/lon box alone narrows the search


async def fetch_ranked(session: AsyncSession, search: Search, ctx: RankContext, rules: Rules, limit: int,
                       *, start_radius_km: float = 4.0, in_time_only: bool = False) -> list[RankedDonor]:
    """The best ``limit`` eligible, messageable donors for ``search``, ranked (dispatcher.ranking).

    Donors who can arrive in time come first, tier by tier (DOMAIN.md §1), so each tier
    is searched on its own within reach of the deadline, reading only its own blood
    types from the index. Only when those do not fill ``limit`` are the rest (late or
    without a location) searched, all tiers together. The result is exactly the first
    ``limit`` of ``rank_donors`` over every eligible donor (tests/test_dispatch_candidates.py).
    ``in_time_only`` leaves out donors who cannot arrive before the deadline (issue 9: they are
    asked only once nobody who can is left), keeping those whose location is unknown.
    """
    if limit <= 0:
        return []
    rings = _Rings(session, search, ctx, search.values(rules), start_radius_km)
    reach = ctx.reach_km()
    cap = reach if search.radius_km is None else min(reach, search.radius_km)
    kept: list[tuple] = []
    if cap > 0:
        for t in search.tiers:
            found = await rings.best(limit - len(kept), (t,), cap_km=cap)
            kept += [kc for kc in found if kc[0][0] == 0]
            if len(kept) >= limit:
                break
    if len(kept) < limit:
        kept = await rings.best(limit, tuple(search.tiers))
        if in_time_only:  # the best come first by group, so the in-time ones are all among them
            kept = [kc for kc in kept if kc[0][0] != GROUP_LATE]
    return rank_donors([c for _, c in kept[:limit]], ctx)


class _Rings:
    """The ring search of one request: the request's values, and its statements by shape."""

    def __init__(self, session, search: Search, ctx: RankContext, values: dict, start_radius_km: float):
        self.session, self.search, self.ctx, self.start_radius_km = session, search, ctx, start_radius_km
        self.shape = search.shape()
        self.kx = 111.32 * max(math.cos(math.radians(search.hospital_lat)), 0.01)
        self.reach = ctx.reach_km()
        self.values = {**values, "hlat": search.hospital_lat, "hlon": search.hospital_lon, "kx": self.kx,
                       "reach2": self.reach * self.reach}
        # The most an unread donor's rest and answer history could take off her travel time, in minutes.
        self.slack = ctx.response_weight_min * (1 - ctx.prior_answer_rate) + ctx.rest_weight_min + 1.0

    def _area(self, r: float, area: str) -> dict:
        s = self.search
        if area == "all":
            return {}
        out: dict[str, float | list[int]] = {"lat_lo": s.hospital_lat - r / KM_PER_DEG_LAT, "lat_hi": s.hospital_lat + r / KM_PER_DEG_LAT,
               "lon_lo": s.hospital_lon - r / self.kx, "lon_hi": s.hospital_lon + r / self.kx, "r2": r * r}
        if area == "cells":
            out["cells"] = cells_within(s.hospital_lat, s.hospital_lon, r)
        return out

    async def best(self, limit: int, tiers: tuple[Tier, ...], *, cap_km: float | None = None) -> list[tuple]:
        """[((group, tier, cost, id), Candidate)], best first, for ``tiers`` within ``cap_km`` (default: the search's).

        One statement per ring of radius r: the nearest ``k`` compatible donors by (arrives
        in time, tier, distance), read from the cell-and-type index alone (no table rows),
        left-joined to the full eligibility filter, so only those ``k`` rows are read in
        full. The ring widens until no donor left unread could outrank the ``limit``-th kept.
        """
        search, ctx, session = self.search, self.ctx, self.session
        tier_of = {ab: (t.index, t.kind) for t in tiers for ab in t.types}
        min_tier = min(t.index for t in tiers)
        nationwide = search.radius_km is None and cap_km is None
        full = cap_km if cap_km is not None else search.radius_km if search.radius_km is not None else NATIONWIDE_KM * 2
        k = max(K_MUL * limit, 300)
        r = await self._first_radius(tiers, full, nationwide, k)
        slack, travel_min = self.slack, ctx.travel_min
        done = 0.0  # every compatible donor within ``done`` km has been read
        after = None  # in the current ring, every row up to this (group, tier, d2, id) has been read
        keyed: dict[int, tuple] = {}  # id -> ((group, tier, cost, id), row) for eligible donors
        while True:
            whole = r >= full
            area = "all" if whole and nationwide else "cells" if r <= CELL_LIST_MAX_KM else "box"
            values = {**self.values, **self._area(r, area), "k": k, "done2": done * done}
            if after is not None:
                values.update(after_group=after[0], after_tier=after[1], after_d2=after[2], after_id=after[3])
            stmt = _ring_statement(tiers, self.shape, area, done > 0, after is not None)
            rows = (await _execute(session, stmt, values)).all()
            for row in rows:
                donor_id, grp, abo, rh, lat, lon, d2, tid, last_date, last_kind, _, asked, answered, ch = row
                tier = tier_of[(abo, rh)][0]
                key = (grp, tier, d2 or 0.0, donor_id)
                if after is None or key > after:
                    after = key
                if tid is not None or ch is not None:
                    p = place_of(lat, lon, last_date, last_kind, asked, answered, ctx)
                    keyed[donor_id] = ((p[0], tier, p[4], donor_id), row)
            order = sorted(keyed.values(), key=lambda kc: kc[0])
            read_all = len(rows) < k
            if read_all and whole:
                break
            bounds = []
            if not read_all:
                assert after is not None  # a full read (k rows) left its last key
                bounds.append((after[0], after[1], travel_min(math.sqrt(after[2])) * 0.99 - slack))
            if not whole:
                bounds.append((0 if r < self.reach else 2, min_tier, travel_min(r) * 0.99 - slack))
                if nationwide:
                    bounds.append((1, min_tier, -1e9))  # donors without a location, read only nationwide
            worst_kept = order[limit - 1][0][:3] if len(order) >= limit else None
            if worst_kept is not None and worst_kept <= min(bounds):
                break
            if not read_all:
                k *= 2  # read on from ``after`` in the same ring
                continue
            done, after = r, None
            r = self._wider(r, full, worst_kept, len(order), limit)
        return [(key, _candidate(row, tier_of)) for key, row in order[:limit]]

    async def _first_radius(self, tiers: tuple[Tier, ...], full: float, nationwide: bool, k: int) -> float:
        """The first ring's radius: the search's start, or the whole area when its pool is small
        (a rare type nationwide, DOMAIN.md §3, or a sparse province), read at once with no rings."""
        at_once = NATIONWIDE_AT_ONCE if nationwide else k
        full_area = "all" if nationwide else "cells" if full <= CELL_LIST_MAX_KM else "box"
        count = (await _execute(self.session, _pool_statement(tiers, full_area),
                                {**self.values, **self._area(full, full_area), "at_most": at_once + 1})).scalar_one()
        return full if count <= at_once else min(self.start_radius_km, full)

    def _wider(self, r: float, full: float, worst_kept: tuple | None, kept: int, limit: int) -> float:
        """The next ring's radius, once every donor within ``r`` km has been read."""
        if worst_kept is not None and worst_kept[0] == 0:
            # Far enough that the bonuses cannot lift anyone beyond over the limit-th kept donor.
            km = (worst_kept[2] + self.slack) / 60.0 * self.ctx.speed_kmh / self.ctx.road_factor
            return min(max(r * 1.25, km * 1.02), full)
        if kept:
            # Density so far says how far the ring must reach to hold ``limit`` donors.
            return min(r * min(max(math.sqrt(1.3 * limit / kept), 1.25), 4.0), full)
        return min(r * 4, full)


def _candidate(row, tier_of: dict) -> Candidate:
    donor_id, _, abo, rh, lat, lon, _, tid, last_date, last_kind, locale, asked, answered, ch = row
    tier, kind = tier_of[(abo, rh)]
    return Candidate(donor_id, abo, rh, tier, kind, lat, lon, last_date, last_kind, asked=asked, answered=answered,
                     telegram_id=tid, locale=locale, channel_id=None if tid is not None else ch)


def _geometry(n):
    """Planar squared distance (km²) of index entry ``n`` from the hospital, and its group."""
    dy = (n.lat - _param("hlat", Float)) * KM_PER_DEG_LAT
    dx = (n.lon - _param("hlon", Float)) * _param("kx", Float)
    d2 = dy * dy + dx * dx
    group = case((n.lat.is_(None), 1), (d2 > _param("reach2", Float), 2), else_=0)
    return d2, group


def _in_types(n, tiers) -> list[ColumnElement]:
    """The tiers' blood types, as the index seeks them (abo, rh), then exactly."""
    abos = sorted({a for t in tiers for a, _ in t.types})
    rhs = sorted({r for t in tiers for _, r in t.types})
    return [n.abo.in_(abos), n.rh.in_(rhs), tier_expression(tiers, n) != 99]


def _in_area(n, d2, area: str) -> list[ColumnElement]:
    """Within r km of the hospital: the grid cells (an index seek), the lat/lon box, the circle."""
    if area == "all":
        return []
    conds = []
    if area == "cells":
        conds.append(n.geo_cell.in_(bindparam("cells", expanding=True, type_=n.geo_cell.type)))
    return conds + [n.lat.between(_param("lat_lo", Float), _param("lat_hi", Float)),
                    n.lon.between(_param("lon_lo", Float), _param("lon_hi", Float)),
                    d2 <= _param("r2", Float)]


@lru_cache(maxsize=64)
def _pool_statement(tiers: tuple[Tier, ...], area: str):
    n = table_of(Donor).alias("n").c
    d2, _ = _geometry(n)
    pool = select(n.id).where(*_in_types(n, tiers), *_in_area(n, d2, area)).limit(_param("at_most", Integer))
    return select(func.count()).select_from(pool.subquery())


@lru_cache(maxsize=512)
def _ring_statement(tiers: tuple[Tier, ...], shape: tuple, area: str, annulus: bool, resume: bool):
    """The next ``k`` compatible donors of a ring, each with her eligibility and answer history.

    ``annulus``: leave out the disc of ``done2`` already read. ``resume``: read on after
    the last (group, tier, d2, id) returned. A row whose ``telegram_id`` and channel are NULL
    is not eligible or not reachable; it still counts towards ``k`` and the bounds.
    """
    n = table_of(Donor).alias("n").c
    d2, group = _geometry(n)
    tier = tier_expression(tiers, n)
    dist = func.coalesce(d2, 0.0)  # NULL (no location) sorts alike on SQLite and PostgreSQL
    near = select(n.id, group.label("grp"), n.abo, n.rh, n.lat, n.lon, d2.label("d2")).where(
        *_in_types(n, tiers), *_in_area(n, d2, area))
    if annulus:
        near = near.where(or_(n.lat.is_(None), d2 > _param("done2", Float)))
    if resume:
        near = near.where(tuple_(group, tier, dist, n.id) > tuple_(
            _param("after_group", Integer), _param("after_tier", Integer), _param("after_d2", Float),
            _param("after_id", Integer)))
    nearest = near.order_by(group, tier, dist, n.id).limit(_param("k", Integer)).subquery("near")
    D, T, C = table_of(Donor), table_of(TelegramUser), table_of(RequestContact).c
    on_telegram = and_(D.c.telegram_id.is_not(None), *_telegram_consent(shape[3]))
    reach = or_(on_telegram, off_telegram_condition()) if shape[4] else on_telegram
    donor_conds = [*_donor_conditions(shape), reach]
    # Her first agreed channel besides Telegram, for a donor Telegram does not reach (NULL: none, or
    # the search uses no other channel): by her order, as next_channel moves a call on.
    DC = table_of(DonorChannel).c
    channel = (_agreed_channel(D.c.id).order_by(DC.rank, DC.id).limit(1).scalar_subquery() if shape[4]
               else null())
    # The donor's own answer history (dispatcher.ranking): read here, so every donor is scored exactly.
    asked = select(func.count()).where(C.donor_id == D.c.id, C.state.in_(ASKED_STATES))
    answered = asked.where(C.answered_at.is_not(None))
    return (select(nearest.c.id, nearest.c.grp, nearest.c.abo, nearest.c.rh, nearest.c.lat, nearest.c.lon,
                   nearest.c.d2,
                   T.c.telegram_id, D.c.last_donation_date, D.c.last_donation_component, D.c.locale,
                   asked.scalar_subquery(), answered.scalar_subquery(), channel)
            # Two plain LEFT JOINs (not one to a parenthesised join) keep both as primary-key lookups.
            .select_from(nearest.outerjoin(D, and_(D.c.id == nearest.c.id, *donor_conds))
                         .outerjoin(T, and_(T.c.telegram_id == D.c.telegram_id, T.c.blocked_at.is_(None),
                                            on_telegram))))


@dataclass(frozen=True)
class CallListEntry:
    club_id: int
    donor_id: int
    full_name: str
    phone: str
    blood_type: str
    why: str  # not_linked | not_started | blocked | no_consent


async def call_list(session: AsyncSession, search: Search, rules: Rules, club_ids: list[int],
                    limit: int = 200) -> list[CallListEntry]:
    """Likely-eligible compatible donors the bot cannot message, for the leads of ``club_ids`` (DOMAIN.md §8):
    on no channel this request may use (an SMS-only donor when SMS is not for this request or its budget
    is spent), or asked and reached by none (a 403, an undeliverable SMS, the budget spent mid-wave).

    Names and phones go to the leads of the donor's own club only, never to a hospital
    before she accepted (DOMAIN.md §7): the caller passes the clubs the reader leads.
    A donor who agreed only to keep her profile is on no list: she said no to being contacted.
    """
    D, T, M = table_of(Donor).c, table_of(TelegramUser).c, table_of(ClubMembership).c
    if not club_ids:
        return []
    why = case((D.telegram_id.is_(None), "not_linked"), (T.telegram_id.is_(None), "not_started"),
               (T.blocked_at.is_not(None), "blocked"), else_="no_consent")
    shape = search.shape()
    stmt = (_base(tuple(search.tiers), shape,
                  [M.club_id, D.id, D.full_name, D.phone, D.abo, D.rh, why.label("why")], messageable=False)
            .join(table_of(ClubMembership), and_(M.donor_id == D.id, M.role == "member"))
            .where(_not_reached(shape), ~refused_contact(), M.club_id.in_(club_ids)))
    if search.radius_km is not None:
        stmt = stmt.where(D.geo_cell.in_(cells_within(search.hospital_lat, search.hospital_lon, search.radius_km)))
    stmt = stmt.order_by(M.club_id, tier_expression(search.tiers), D.full_name).limit(limit)
    return [CallListEntry(r.club_id, r.id, r.full_name, r.phone, format_blood_type(r.abo, r.rh), r.why)
            for r in (await _execute(session, stmt, search.values(rules))).all()]


async def unreachable_counts(session: AsyncSession, search: Search, rules: Rules) -> dict[int, int]:
    """Per club, how many compatible likely-eligible members only a phone call reaches: counts, no names."""
    D, M = table_of(Donor).c, table_of(ClubMembership).c
    shape = search.shape()
    stmt = (_base(tuple(search.tiers), shape, [M.club_id, func.count(D.id)], messageable=False)
            .join(table_of(ClubMembership), and_(M.donor_id == D.id, M.role == "member"))
            .where(_not_reached(shape), ~refused_contact()).group_by(M.club_id))
    if search.radius_km is not None:
        stmt = stmt.where(D.geo_cell.in_(cells_within(search.hospital_lat, search.hospital_lon, search.radius_km)))
    return {club_id: n for club_id, n in (await _execute(session, stmt, search.values(rules))).all()}
