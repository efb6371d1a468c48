"""The yearly limit on whole blood (DOMAIN.md §2: NIHBT advises 3–4 a year, default 4) is kept.

Decided in one place, ``dispatcher.eligibility.assess``, and its SQL twin in
``dispatcher.candidates``: a donor with ``max_whole_blood_per_year`` whole-blood or red-cell
donations in the last 12 months is not asked for whole blood or red cells until the oldest
leaves the window; she may still be asked for platelets or plasma.
"""

from __future__ import annotations

from datetime import date, timedelta

from models.tables import Donation, Donor
from ground.config import EligibilityConfig
from ground.eligibility import YEARLY_LIMIT, DonorFacts, add_years, assess
from sqlmodel import select
from tests.test_journey_arrival import call_of
from tests.test_journey_dispatch import env, post, seed  # noqa: F401 (env is a fixture)

RULES = EligibilityConfig()


def facts(*days: date, last_kind: str = "whole_blood") -> DonorFacts:
    return DonorFacts("O", "+", "M", date(1990, 1, 1), 65, max(days) if days else None, last_kind,
                      red_cell_days=tuple(days))


def test_the_fifth_whole_blood_donation_in_twelve_months_waits_for_the_oldest_to_leave_the_window():
    today = date(2026, 12, 3)
    four = (date(2025, 12, 10), date(2026, 3, 5), date(2026, 6, 1), date(2026, 9, 1))
    verdict = assess(facts(*four), today, RULES, "red_cells")
    assert not verdict.eligible and verdict.reasons == (YEARLY_LIMIT,)
    assert verdict.eligible_from == date(2026, 12, 10)  # a year after the oldest
    assert not assess(facts(*four), date(2026, 12, 9), RULES, "whole_blood").eligible
    assert assess(facts(*four), date(2026, 12, 10), RULES, "whole_blood").eligible
    # Platelets and plasma are not whole blood: the limit does not apply (the 84 days have passed).
    assert assess(facts(*four), today, RULES, "platelets").eligible
    # Three in the window, one older: below the limit.
    assert assess(facts(date(2025, 12, 3), *four[1:]), today, RULES, "red_cells").eligible
    # A stricter club setting counts the same way.
    strict = EligibilityConfig(max_whole_blood_per_year=3)
    assert assess(facts(*four[1:]), today, strict).eligible_from == date(2027, 3, 5)


def test_a_leap_day_donation_leaves_the_window_when_the_sql_says_so():
    days = (date(2024, 2, 29), date(2024, 5, 1), date(2024, 8, 1), date(2024, 11, 1))
    verdict = assess(facts(*days), date(2025, 2, 20), RULES)
    assert verdict.eligible_from == date(2025, 3, 1)
    assert not assess(facts(*days), date(2025, 2, 28), RULES).eligible
    assert assess(facts(*days), date(2025, 3, 1), RULES).eligible


async def test_a_donor_at_the_yearly_limit_is_not_called_for_red_cells_the_next_nearest_is(env):
    staff, (limited, free, other) = await seed(env, [("O", "+", 1), ("O", "+", 3), ("O", "+", 5)])
    today = env.clock().date()
    async with env.sessionmaker() as s:
        ids = {d.telegram_id: d.id for d in (await s.exec(select(Donor))).all()}
        for user, oldest in ((limited, 360), (free, 380)):  # free's oldest left the window; both rested 84 days
            for k in range(4):
                s.add(Donation(donor_id=ids[user.id], donated_on=today - timedelta(days=oldest - 90 * k),
                               component="whole_blood"))
            donor = await s.get(Donor, ids[user.id])
            donor.last_donation_date, donor.last_donation_component = today - timedelta(days=oldest - 270), \
                "whole_blood"
        await s.commit()
    await post(env, staff, "O+ 1")
    assert call_of(limited) is None
    assert call_of(free) is not None and call_of(other) is not None
    # She sees why on her own profile, and from when she may give whole blood again.
    await limited.send("/me")
    profile = limited.last_text()
    assert "gave whole blood as often as advised in 12 months" in profile, profile
    assert "may give again from " + add_years(today - timedelta(days=360), 1).strftime("%d/%m/%Y") in profile
