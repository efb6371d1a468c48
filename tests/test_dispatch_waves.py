"""Wave sizing (DOMAIN.md §5)."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.waves import Rates, _prob_at_least, first_wave_size, learned_rates, more_to_ask, target_available

R = Rates()


def test_the_field_defaults_give_a_yield_of_about_one_in_five():
    assert abs(R.yield_per_ask - 0.196) < 0.001


def test_asking_stops_at_about_1_7_times_the_units():
    assert [target_available(u, R) for u in (1, 2, 3, 4)] == [2, 4, 6, 7]
    assert target_available(2, R, margin=1.0) == 2


def test_the_first_wave_asks_about_five_per_unit_or_more_as_urgency_grows():
    planned, urgent, critical = (first_wave_size(2, R, c) for c in (0.6, 0.8, 0.9))
    assert planned <= urgent <= critical
    assert 8 <= planned and critical <= 25


def test_no_one_more_is_asked_once_confirmed_reaches_the_target():
    assert more_to_ask(units=2, confirmed=4, outstanding=[1.0] * 3, rates=R, confidence=0.9) == 0


def test_a_decline_is_replaced_at_once():
    n = first_wave_size(1, R, 0.8)
    full = [1.0] * n
    assert more_to_ask(units=1, confirmed=0, outstanding=full, rates=R, confidence=0.8) == 0
    assert more_to_ask(units=1, confirmed=0, outstanding=full[:-1], rates=R, confidence=0.8) >= 1


def test_silent_asks_count_less_as_their_window_runs_out():
    fresh = more_to_ask(units=1, confirmed=0, outstanding=[1.0] * 6, rates=R, confidence=0.8)
    stale = more_to_ask(units=1, confirmed=0, outstanding=[0.2] * 6, rates=R, confidence=0.8)
    assert stale > fresh


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 6), st.lists(st.floats(0.01, 0.99), max_size=12), st.integers(0, 20))
def test_the_dp_matches_a_simulation(need, probs, n):
    rng = random.Random(1)
    p = 0.3
    hits = sum(
        sum(rng.random() < q for q in probs) + sum(rng.random() < p for _ in range(n)) >= need
        for _ in range(4000)
    )
    assert abs(_prob_at_least(need, probs, n, p) - hits / 4000) < 0.04


def test_learned_rates_start_at_the_prior_and_follow_the_club():
    assert learned_rates(R, 20, asked=0, available=0, outcomes=0, donated=0) == R
    keen = learned_rates(R, 20, asked=200, available=120, outcomes=120, donated=110)
    assert keen.available_per_ask > 0.5 and keen.donates_given_available > 0.85
    assert first_wave_size(2, keen, 0.8) < first_wave_size(2, R, 0.8)
