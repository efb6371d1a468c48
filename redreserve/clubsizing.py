"""Club sizing (issue 13, item 5): "with these members, what share of O− / A+ / … requests of 1–3
units can we cover within 2 hours, and how many more members of each type would raise it to 95 %?"

The club's real roster is copied into a lab world (redreserve.policylab): its members as they are
(type, place, last donation, consent, whether the bot can reach them), the nearest hospital (or
the club's own place when there is none). The engine's ranking orders them once per blood type
(policymodel.ranked_pools), and the fast model (redreserve.policymodel, which agrees with the
engine-driven lab: tests/test_policymodel.py) plays critical requests of 1–3 units at random
times of day under the product's policy. "Covered within 2 hours": the units all donated within
two hours of the request.

More members of a type are new donors (never gave) placed where the club's members live (each at
the place of a member drawn at random); they join the ranked pool by travel time among the
identical type. It is an estimate for a lead, not a promise: the rates are DOMAIN.md §5's.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.wave_policy import OURS, WavePolicy
from models.engine import create_schema, make_engine, make_sessionmaker
from models.geo import haversine_km
from models.tables import Club, ClubMembership, Donor, Hospital, TelegramUser
from redreserve.policylab import Ask, Behaviour, lab_settings
from redreserve.policymodel import Donor as Pooled
from redreserve.policymodel import FastModel, ranked_pools

TYPES = (("O", "-"), ("O", "+"), ("A", "-"), ("A", "+"), ("B", "-"), ("B", "+"), ("AB", "-"), ("AB", "+"))
WITHIN_MIN = 120.0
GOAL = 0.95
STEPS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 70, 100)  # more members tried, in order


@dataclass(frozen=True)
class TypeSizing:
    abo: str
    rh: str
    members: int  # of this type in the club
    share: float  # of requests with every unit donated within 2 hours
    more_for_goal: int | None  # members of this type to add for 95 % (None: more than the last step)

    @property
    def label(self) -> str:
        return f"{self.abo}{'−' if self.rh == '-' else '+'}"


@dataclass(frozen=True)
class ClubSizing:
    club: str
    hospital: str
    hospital_km: float
    members: int
    callable: int  # members the bot can call now (linked, consented, eligible)
    requests: int  # simulated per type
    types: tuple[TypeSizing, ...]


async def copy_club(session: AsyncSession, club: Club, path: Path) -> tuple[str, float, int]:
    """The club's members and its nearest hospital, copied into a new SQLite world at ``path``."""
    hospitals = (await session.exec(select(Hospital))).all()
    near = min(hospitals, key=lambda h: haversine_km(club.lat, club.lon, h.lat, h.lon), default=None)
    members = (await session.exec(select(Donor).join(ClubMembership, col(ClubMembership.donor_id) == Donor.id)
                                  .where(ClubMembership.club_id == club.id))).all()
    tg_ids = [d.telegram_id for d in members if d.telegram_id is not None]
    users = (await session.exec(select(TelegramUser).where(col(TelegramUser.telegram_id).in_(tg_ids)))).all()
    db = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await create_schema(db)
        async with make_sessionmaker(db)() as s:
            if near is None:
                h = Hospital(name=club.name, lat=club.lat, lon=club.lon)
            else:
                h = Hospital(name=near.name, lat=near.lat, lon=near.lon, address=near.address)
            s.add(h)
            copy = Club(name=club.name, lat=club.lat, lon=club.lon)
            s.add(copy)
            for u in users:
                s.add(TelegramUser(**u.model_dump()))
            await s.flush()
            s.add_all([Donor(**d.model_dump()) for d in members])
            await s.flush()  # the donors before their memberships (no relationship orders them)
            s.add_all([ClubMembership(club_id=copy.id, donor_id=d.id) for d in members])
            await s.commit()
            return h.name, haversine_km(club.lat, club.lon, h.lat, h.lon), len(members)
    finally:
        await db.dispose()


def _asks(abo: str, rh: str, n: int, seed: int) -> list[Ask]:
    rng = random.Random(f"club:{abo}{rh}:{seed}")
    return [Ask(rng.uniform(0, 24 * 60), abo, rh, rng.choice((1, 2, 3)), "critical") for _ in range(n)]


def _covered(model: FastModel, asks: list[Ask]) -> float:
    outs = model.run(asks).outcomes
    return sum(o.enough_min is not None and o.enough_min <= WITHIN_MIN for o in outs) / len(outs)


def _with_more(pool: list[Pooled], k: int, places: list[Pooled], rng: random.Random) -> list[Pooled]:
    """``pool`` with ``k`` new members of the requested type (tier 0), where members live."""
    if k == 0 or not places:
        return pool
    new = [Pooled(-(i + 1), 0, p.distance_km, p.travel_min) for i, p in enumerate(rng.choices(places, k=k))]
    own = sorted([d for d in pool if d.tier == 0] + new,
                 key=lambda d: float("inf") if d.travel_min is None else d.travel_min)
    return own + [d for d in pool if d.tier != 0]


async def size_club(session: AsyncSession, club: Club, *, requests: int = 200, seed: int = 1,
                    policy: WavePolicy = OURS, behaviour: Behaviour = Behaviour()) -> ClubSizing:
    settings = lab_settings()
    with tempfile.TemporaryDirectory(prefix="redreserve-club-") as d:
        world = Path(d) / "club.db"
        hospital, km, members = await copy_club(session, club, world)
        pools = await ranked_pools(world, settings, set(TYPES))
    everyone = {p.donor_id: p for pool in pools.values() for p in pool}
    places = list(everyone.values())
    types = (await session.exec(select(Donor.abo, Donor.rh).join(ClubMembership,
                                                                 col(ClubMembership.donor_id) == Donor.id)
                                .where(ClubMembership.club_id == club.id))).all()
    out = []
    for abo, rh in TYPES:
        asks = _asks(abo, rh, requests, seed)
        share = more = None
        for k in STEPS:
            pool = _with_more(pools[abo, rh], k, places, random.Random(f"more:{abo}{rh}:{seed}"))
            s = _covered(FastModel(policy, {**pools, (abo, rh): pool}, behaviour, seed, settings), asks)
            share = s if share is None else share
            if s >= GOAL:
                more = k
                break
        assert share is not None  # STEPS starts with 0
        out.append(TypeSizing(abo, rh, sum(t == (abo, rh) for t in types), share, more))
    return ClubSizing(club.name, hospital, km, members, len(everyone), requests, tuple(out))


def render(z: ClubSizing) -> str:
    lines = [f"Club “{z.club}”: {z.members} members, {z.callable} the bot can call now; "
             f"hospital {z.hospital} ({z.hospital_km:.1f} km).",
             f"Critical requests of 1–3 units, every unit donated within 2 hours: {z.requests} simulated per type "
             f"(redreserve/policymodel.py, DOMAIN.md §5's answer rates).",
             f"{'type':<5} {'members':>7} {'covered in 2 h':>15} {'more members for 95 %':>22}"]
    for t in z.types:
        more = "–" if t.share >= GOAL else (f"+{t.more_for_goal}" if t.more_for_goal is not None
                                            else f"more than {STEPS[-1]}")
        lines.append(f"{t.label:<5} {t.members:>7} {t.share:>14.0%} {more:>22}")
    return "\n".join(lines)


__all__ = ["ClubSizing", "TypeSizing", "render", "size_club"]
