"""Ranking: order properties (Hypothesis) and the reasons a donor carries."""

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.ranking import Candidate, RankContext, rank_donors, rank_one
from ground.config import DispatchConfig, EligibilityConfig

NOW = datetime(2026, 3, 10, 3, 0, tzinfo=timezone.utc)
TODAY = date(2026, 3, 10)
HOSP = (10.7769, 106.7009)  # Ho Chi Minh City


def ctx(hours=6.0):
    return RankContext.of(hospital_lat=HOSP[0], hospital_lon=HOSP[1], now=NOW, today=TODAY,
                          deadline=NOW + timedelta(hours=hours), dispatch=DispatchConfig(), eligibility=EligibilityConfig())


candidates = st.builds(
    Candidate,
    donor_id=st.integers(1, 10**6),
    abo=st.just("O"), rh=st.just("+"),
    tier=st.integers(0, 5), tier_kind=st.just("exact"),
    lat=st.floats(9.0, 12.5), lon=st.floats(105.0, 108.5),
    last_donation_date=st.one_of(st.none(), st.dates(date(2020, 1, 1), TODAY)),
    last_donation_component=st.sampled_from([None, "whole_blood", "platelets"]),
    asked=st.integers(0, 20), answered=st.integers(0, 20),
).filter(lambda c: c.answered <= c.asked)


@settings(max_examples=200, deadline=None)
@given(candidates, st.floats(0.0, 0.5), st.floats(0.5, 30))
def test_closer_never_ranks_below_farther_all_else_equal(c, dlat, hours):
    near = replace(c, lat=HOSP[0] + dlat * 0.5, lon=HOSP[1])
    far = replace(c, lat=HOSP[0] + dlat, lon=HOSP[1])
    assert rank_one(near, ctx(hours)).score <= rank_one(far, ctx(hours)).score


@settings(max_examples=200, deadline=None)
@given(candidates, candidates)
def test_a_better_tier_ranks_first_among_donors_who_arrive_in_time(a, b):
    ra, rb = rank_one(a, ctx(48)), rank_one(b, ctx(48))
    if ra.group == rb.group == 0 and a.tier < b.tier:
        assert ra.score < rb.score


@settings(max_examples=200, deadline=None)
@given(st.lists(candidates, min_size=2, max_size=30, unique_by=lambda c: c.donor_id), st.floats(0.3, 5))
def test_donors_who_cannot_arrive_in_time_go_last(cs, hours):
    ranked = rank_donors(cs, ctx(hours))
    groups = [r.group for r in ranked]
    assert groups == sorted(groups)
    assert [r.score for r in ranked] == sorted(r.score for r in ranked)


@settings(max_examples=200, deadline=None)
@given(candidates, st.integers(1, 10))
def test_more_answers_never_hurt_and_a_new_donor_is_neither_favoured_nor_punished(c, extra):
    c = replace(c, answered=0, asked=extra)
    better = replace(c, answered=extra)
    assert rank_one(better, ctx()).score < rank_one(c, ctx()).score
    new = replace(c, asked=0, answered=0)
    base = rank_one(replace(new, last_donation_date=None), ctx())
    # cost of a new donor = travel − rest bonus only: the answer term is exactly zero
    assert abs(base.cost - (base.travel_min - 10.0)) < 1e-9


@settings(max_examples=200, deadline=None)
@given(candidates, st.integers(1, 300))
def test_a_longer_rest_never_ranks_lower(c, days):
    c = replace(c, last_donation_date=TODAY - timedelta(days=90), last_donation_component="whole_blood")
    rested = replace(c, last_donation_date=TODAY - timedelta(days=90 + days))
    assert rank_one(rested, ctx()).score <= rank_one(c, ctx()).score


def test_reasons_read_like_the_board():
    c = Candidate(7, "O", "-", 0, "exact", HOSP[0] + 0.03, HOSP[1],
                  last_donation_date=TODAY - timedelta(days=213), last_donation_component="whole_blood",
                  asked=6, answered=5)
    r = rank_one(c, ctx())
    assert r.describe() == "O- exact, 3.3 km ≈ 9 min, last gave 7 months ago, answered 5 of 6"
    assert r.reasons[0] == ("tier", {"type": "O-", "kind": "exact", "tier": 0})


def test_a_donor_too_far_for_the_deadline_says_so():
    c = Candidate(8, "O", "+", 0, "exact", 21.03, 105.85)  # Hà Nội, for a Saigon hospital
    r = rank_one(c, ctx(3))
    assert r.group == 2 and "after the deadline" in r.describe()
