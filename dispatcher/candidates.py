"""Finding eligible donors near a hospital, in SQL, without scoring the whole country.

The medical pre-filter here is :func:`dispatcher.eligibility.assess` written as SQL
(tests/test_dispatch_candidates.py checks that the two agree donor by donor). On top
come the dispatcher's own filters (issue 3): reachable on Telegram, consent to be
contacted (DOMAIN.md §7), not committed elsewhere, not already asked, under the
contact cap.

Search: rings of grid cells (models.geo) around the hospital, widening until the
best ``limit`` donors are certain; SQL orders each ring by (arrives in time, tier,
planar distance) and returns a few hundred rows, which Python scores exactly
(dispatcher.ranking). A donor left in the database can beat a fetched one only by
the ranking's bounded bonuses, and the loop fetches more until none can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql import ColumnElement

from dispatcher.compat import Tier
from dispatcher.eligibility import APHERESIS, add_years
from dispatcher.ranking import Candidate, RankContext, RankedDonor, place, rank_donors
from models.dispatch_tables import DonorCommitment, RequestContact
from models.geo import cells_within
from models.tables import ClubMembership, Donor, TelegramUser

KM_PER_DEG_LAT = 111.2


def medical_conditions(component: str, today: date, rules) -> list[ColumnElement]:
    """assess(facts, today, rules, component).eligible, as SQL on the donor table."""
    D = Donor.__table__.c
    youngest = add_years(today, -rules.min_age)  # born on or before: at least min_age today
    oldest_excl = add_years(today, -(rules.max_age + 1))  # born on or before: older than max_age
    if component in APHERESIS:
        weight_ok = D.weight_kg >= rules.min_weight_apheresis_kg
    else:
        weight_ok = D.weight_kg >= case((D.sex == "F", rules.min_weight_female_kg),
                                        else_=rules.min_weight_male_kg)
    return [
        D.abo.is_not(None),
        D.rh.is_not(None),
        or_(D.status == "active",
            and_(D.status.in_(("paused", "deferred")), D.status_until.is_not(None), D.status_until <= today)),
        or_(D.birth_date.is_(None), and_(D.birth_date <= youngest, D.birth_date > oldest_excl)),
        or_(D.weight_kg.is_(None), weight_ok),
        # Art. 6.4: the most recent donation's kind sets the wait (eligibility.interval_days).
        or_(D.last_donation_date.is_(None),
            and_(D.last_donation_component.in_(tuple(APHERESIS)),
                 D.last_donation_date <= today - timedelta(days=rules.interval_apheresis_days)),
            and_(or_(D.last_donation_component.is_(None), D.last_donation_component.not_in(tuple(APHERESIS))),
                 D.last_donation_date <= today - timedelta(days=rules.interval_whole_blood_days))),
    ]


def messageable_conditions(require_consent: bool) -> list[ColumnElement]:
    """Reachable by the bot: linked, has started it, not blocked (DOMAIN.md §8), consented (§7)."""
    D, T = Donor.__table__.c, TelegramUser.__table__.c
    conds = [D.telegram_id.is_not(None), T.telegram_id.is_not(None), T.blocked_at.is_(None)]
    if require_consent:
        conds.append(D.consent_contact_at.is_not(None))
    return conds


def history_conditions(request_id: int | None, now: datetime, cap_count: int | None,
                       cap_days: int) -> list[ColumnElement]:
    D, C, K = Donor.__table__.c, RequestContact.__table__.c, DonorCommitment.__table__.c
    # NOT IN with a NULL in the list rejects every row: forgotten donors leave NULL donor_ids.
    conds = [D.id.not_in(select(K.donor_id).where(K.until > now))]
    if request_id is not None:
        conds.append(D.id.not_in(select(C.donor_id).where(C.request_id == request_id, C.donor_id.is_not(None))))
    if cap_count is not None:
        capped = (select(C.donor_id).where(C.asked_at >= now - timedelta(days=cap_days), C.donor_id.is_not(None))
                  .group_by(C.donor_id).having(func.count() >= cap_count))
        conds.append(D.id.not_in(capped))
    return conds


def type_condition(tiers: list[Tier]) -> ColumnElement:
    D = Donor.__table__.c
    return or_(*[and_(D.abo == a, D.rh == r) for t in tiers for a, r in t.types])


def tier_expression(tiers: list[Tier], D=None) -> ColumnElement:
    D = Donor.__table__.c if D is None else D
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


def _where(search: Search, rules, *, messageable: bool = True) -> list[ColumnElement]:
    conds = [type_condition(search.tiers), *medical_conditions(search.component, search.today, rules),
             *history_conditions(search.request_id, search.now, search.cap_count, search.cap_days)]
    if messageable:
        conds += messageable_conditions(search.require_consent)
    return conds


def _base(search: Search, rules, columns, *, messageable: bool = True):
    D, T = Donor.__table__, TelegramUser.__table__
    stmt = select(*columns).select_from(D.join(T, T.c.telegram_id == D.c.telegram_id, isouter=not messageable))
    return stmt.where(*_where(search, rules, messageable=messageable))


async def count_eligible(session, search: Search, rules, *, at_most: int) -> int:
    """How many messageable eligible donors the search would find, counting no further than ``at_most``."""
    D = Donor.__table__.c
    stmt = _base(search, rules, [D.id])
    if search.radius_km is not None:
        stmt = stmt.where(D.geo_cell.in_(cells_within(search.hospital_lat, search.hospital_lon, search.radius_km)))
    sub = stmt.limit(at_most).subquery()
    return (await session.exec(select(func.count()).select_from(sub))).scalar_one()


NATIONWIDE_KM = 2500.0  # farther than any two points in Vietnam
K_MUL = 5  # first read: this many times the donors wanted (eligibility filters drop some)
NATIONWIDE_AT_ONCE = 5000  # a compatible pool this small is read whole, without rings
CELL_LIST_MAX_KM = 150.0  # beyond this a cell list grows too long; the lat/lon box alone narrows the search


async def fetch_ranked(session, search: Search, ctx: RankContext, rules, limit: int,
                       *, start_radius_km: float = 4.0) -> list[RankedDonor]:
    """The best ``limit`` eligible, messageable donors for ``search``, ranked (dispatcher.ranking).

    Donors who can arrive in time come first, tier by tier (DOMAIN.md §1), so each tier
    is searched on its own within reach of the deadline, reading only its own blood
    types from the index. Only when those do not fill ``limit`` are the rest (late or
    without a location) searched, all tiers together.
    """
    reach = ctx.reach_km()
    cap = reach if search.radius_km is None else min(reach, search.radius_km)
    kept: list[tuple] = []
    if cap > 0:
        for t in search.tiers:
            found = await _search_rings(session, search, ctx, rules, limit - len(kept), start_radius_km,
                                        tiers=[t], cap_km=cap)
            kept += [kc for kc in found if kc[0][0] == 0]
            if len(kept) >= limit:
                break
    if len(kept) < limit:
        kept = await _search_rings(session, search, ctx, rules, limit, start_radius_km, tiers=search.tiers)
    return await _with_history(session, rank_donors([c for _, c in kept[:limit]], ctx), ctx)


async def _search_rings(session, search: Search, ctx: RankContext, rules, limit: int, start_radius_km: float,
                        *, tiers, cap_km: float | None = None) -> list[tuple]:
    """[((group, tier, cost, id), Candidate)], best first, for ``tiers`` within ``cap_km`` (default: the search's).

    One statement per ring of radius r: the nearest ``k`` compatible donors by (arrives
    in time, tier, distance), read from the cell-and-type index alone (no table rows),
    left-joined to the full eligibility filter, so only those ``k`` rows are read in
    full. The ring widens, and ``k`` grows, until no donor left unread could outrank
    the ``limit``-th kept.
    """
    N = Donor.__table__.alias("n")
    n = N.c
    coslat = max(math.cos(math.radians(search.hospital_lat)), 0.01)
    kx = 111.32 * coslat
    dy = (n.lat - search.hospital_lat) * KM_PER_DEG_LAT
    dx = (n.lon - search.hospital_lon) * kx
    d2 = dy * dy + dx * dx
    reach = ctx.reach_km()
    group = case((n.lat.is_(None), 1), (d2 > reach * reach, 2), else_=0)
    tier = tier_expression(tiers, n)
    kinds = {t.index: t.kind for t in tiers}
    min_tier = min(t.index for t in tiers)
    abos = sorted({a for t in tiers for a, _ in t.types})
    rhs = sorted({r for t in tiers for _, r in t.types})
    nationwide = search.radius_km is None and cap_km is None
    # The most an unread donor's rest and answer history could take off her travel time, in minutes.
    slack = ctx.response_weight_min * (1 - ctx.prior_answer_rate) + ctx.rest_weight_min + 1.0
    full = cap_km if cap_km is not None else search.radius_km if search.radius_km is not None else NATIONWIDE_KM * 2
    r = min(start_radius_km, full)
    k = max(K_MUL * limit, 300)
    # A small pool (a rare type nationwide, DOMAIN.md §3, or a sparse province) is read at once, no rings.
    at_once = NATIONWIDE_AT_ONCE if nationwide else k
    pool = select(n.id).where(n.abo.in_(abos), n.rh.in_(rhs), tier != 99)
    if not nationwide:
        pool = pool.where(*_box(n, search, full, kx, d2))
    count = (await session.exec(select(func.count()).select_from(pool.limit(at_once + 1).subquery()))).scalar_one()
    if count <= at_once:
        r = full
    D, T = Donor.__table__, TelegramUser.__table__
    donor_conds = [type_condition(search.tiers), *medical_conditions(search.component, search.today, rules),
                   *history_conditions(search.request_id, search.now, search.cap_count, search.cap_days),
                   D.c.telegram_id.is_not(None)]
    if search.require_consent:
        donor_conds.append(D.c.consent_contact_at.is_not(None))
    cols = [D.c.id.label("eid"), T.c.telegram_id.label("tid"), D.c.abo, D.c.rh, D.c.lat, D.c.lon,
            D.c.last_donation_date, D.c.last_donation_component, D.c.telegram_id, D.c.locale]
    keyed: dict[int, tuple] = {}  # id -> ((group, tier, cost, id), Candidate) for eligible donors
    while True:
        whole = r >= full
        near = select(n.id, group.label("grp"), tier.label("tier"), d2.label("d2")).where(
            n.abo.in_(abos), n.rh.in_(rhs), tier != 99)
        if not (whole and nationwide):
            near = near.where(*_box(n, search, r, kx, d2))
        near = near.order_by(group, tier, d2, n.id).limit(k).subquery("near")
        stmt = (select(near.c.id, near.c.grp, near.c.tier, near.c.d2, *cols)
                # Two plain LEFT JOINs (not one to a parenthesised join) keep both as primary-key lookups.
                .select_from(near.outerjoin(D, and_(D.c.id == near.c.id, *donor_conds))
                             .outerjoin(T, and_(T.c.telegram_id == D.c.telegram_id, T.c.blocked_at.is_(None))))
                .order_by(near.c.grp, near.c.tier, near.c.d2, near.c.id))
        rows = (await session.exec(stmt)).all()
        for row in rows:
            if row.eid is not None and row.tid is not None and row.id not in keyed:
                c = Candidate(row.id, row.abo, row.rh, row.tier, kinds[row.tier], row.lat, row.lon,
                              row.last_donation_date, row.last_donation_component, telegram_id=row.telegram_id,
                              locale=row.locale)
                p = place(c, ctx)
                keyed[row.id] = ((p[0], row.tier, p[4], row.id), c)
        order = sorted(keyed.values(), key=lambda kc: kc[0])
        ranked = [_Kept(*kc[0][:3]) for kc in order[:limit]]
        read_all = len(rows) < k
        if read_all and whole:
            break
        bounds = []
        if not read_all:
            last = rows[-1]
            bounds.append((last.grp, last.tier, ctx.travel_min(math.sqrt(last.d2 or 0.0)) * 0.99 - slack))
        if not whole:
            bounds.append((0 if r < reach else 2, min_tier, ctx.travel_min(r) * 0.99 - slack))
            if nationwide:
                bounds.append((1, min_tier, -1e9))  # donors without a location, read only nationwide
        if len(ranked) >= limit:
            worst_kept = ranked[limit - 1]
            if (worst_kept.group, worst_kept.tier, worst_kept.cost) <= min(bounds):
                break
        if not read_all:
            k *= 3
        elif len(ranked) >= limit and ranked[limit - 1].group == 0:
            # Far enough that the bonuses cannot lift anyone beyond over the limit-th kept donor.
            km = (ranked[limit - 1].cost + slack) / 60.0 * ctx.speed_kmh / ctx.road_factor
            r = min(max(r * 1.25, km * 1.02), full)
        elif ranked:
            # Density so far says how far the ring must reach to hold ``limit`` donors.
            r = min(r * min(max(math.sqrt(1.3 * limit / len(ranked)), 1.25), 4.0), full)
        else:
            r = min(r * 4, full)
    return order[:limit]


def _box(n, search: Search, r: float, kx: float, d2) -> list[ColumnElement]:
    """Within r km of the hospital: the grid cells (an index seek), the lat/lon box, the circle."""
    conds = []
    if r <= CELL_LIST_MAX_KM:
        conds.append(n.geo_cell.in_(cells_within(search.hospital_lat, search.hospital_lon, r)))
    return conds + [n.lat.between(search.hospital_lat - r / KM_PER_DEG_LAT, search.hospital_lat + r / KM_PER_DEG_LAT),
                    n.lon.between(search.hospital_lon - r / kx, search.hospital_lon + r / kx),
                    d2 <= r * r]


class _Kept(NamedTuple):
    group: int
    tier: int
    cost: float


async def _with_history(session, ranked: list[RankedDonor], ctx: RankContext) -> list[RankedDonor]:
    """Re-rank with each donor's own answer history (one grouped query for the few hundred kept)."""
    if not ranked:
        return ranked
    C = RequestContact.__table__.c
    ids = [r.donor_id for r in ranked]
    answered = func.sum(case((C.answered_at.is_not(None), 1), else_=0))
    asked_states = ("notified", "available", "declined", "no_answer")
    hist = {}
    for chunk in range(0, len(ids), 500):
        rows = await session.exec(
            select(C.donor_id, func.count(), answered)
            .where(C.donor_id.in_(ids[chunk:chunk + 500]), C.state.in_(asked_states))
            .group_by(C.donor_id))
        hist.update({d: (n, a or 0) for d, n, a in rows})
    if not hist:
        return ranked
    from dataclasses import replace

    cands = [replace(r.candidate, asked=hist.get(r.donor_id, (0, 0))[0], answered=hist.get(r.donor_id, (0, 0))[1])
             for r in ranked]
    return rank_donors(cands, ctx)


@dataclass(frozen=True)
class CallListEntry:
    club_id: int
    donor_id: int
    full_name: str
    phone: str
    blood_type: str
    why: str  # not_linked | not_started | blocked | no_consent


async def call_list(session, search: Search, rules, club_ids: list[int] | None, limit: int = 200) -> list[CallListEntry]:
    """Likely-eligible compatible donors the bot cannot message, for their club's lead (DOMAIN.md §8).

    Names and phones: for the leads of the donor's own club only (DOMAIN.md §7).
    """
    D, T, M = Donor.__table__.c, TelegramUser.__table__.c, ClubMembership.__table__.c
    why = case((D.telegram_id.is_(None), "not_linked"), (T.telegram_id.is_(None), "not_started"),
               (T.blocked_at.is_not(None), "blocked"), else_="no_consent")
    reachable = and_(*messageable_conditions(search.require_consent))
    stmt = (_base(search, rules, [M.club_id, D.id, D.full_name, D.phone, D.abo, D.rh, why.label("why")],
                  messageable=False)
            .join(ClubMembership.__table__, and_(M.donor_id == D.id, M.role == "member"))
            .where(~reachable))
    if club_ids is not None:
        stmt = stmt.where(M.club_id.in_(club_ids))
    if search.radius_km is not None:
        stmt = stmt.where(D.geo_cell.in_(cells_within(search.hospital_lat, search.hospital_lon, search.radius_km)))
    stmt = stmt.order_by(M.club_id, tier_expression(search.tiers), D.full_name).limit(limit)
    return [CallListEntry(r.club_id, r.id, r.full_name, r.phone, f"{r.abo}{r.rh}", r.why)
            for r in (await session.exec(stmt)).all()]
