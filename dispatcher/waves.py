"""How many donors to ask, and when to stop (DOMAIN.md §5). Pure functions.

Yield of one message = reads × says available × arrives × passes screening
(defaults 0.85 × 0.40 × 0.75 × 0.77 ≈ 0.2). We stop asking once confirmed
"available" reaches ``target_available`` = units × margin, margin defaulting to
1 / (arrives × passes) ≈ 1.7 (DOMAIN.md §5). Until then each wave or top-up asks
the fewest new donors such that, counting the asks still out, the probability of
reaching the target is at least the urgency's confidence.

An ask still out counts with a weight: the share of its response window left,
because a donor silent for most of the window is unlikely to answer in time. As
asks age, the same computation asks more: that is what makes timed waves grow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ground.config import DispatchRates


@dataclass(frozen=True)
class Rates:
    reads: float = 0.85
    says_available: float = 0.40
    arrives: float = 0.75
    passes: float = 0.77

    @classmethod
    def of(cls, cfg: DispatchRates) -> "Rates":
        return cls(cfg.reads, cfg.says_available, cfg.arrives, cfg.passes)

    @property
    def available_per_ask(self) -> float:
        return self.reads * self.says_available

    @property
    def donates_given_available(self) -> float:
        return self.arrives * self.passes

    @property
    def yield_per_ask(self) -> float:
        return self.available_per_ask * self.donates_given_available


def target_available(units: int, rates: Rates, margin: float | None = None) -> int:
    """Confirmed "available" at which asking stops (DOMAIN.md §5: ≈ 1.7 × units)."""
    m = margin if margin is not None else 1.0 / rates.donates_given_available
    return max(units, math.ceil(units * m - 1e-9))


def _prob_at_least(need: int, probs: Sequence[float], extra_n: int, extra_p: float) -> float:
    """P(at least ``need`` successes) for independent asks (Poisson-binomial, capped DP)."""
    if need <= 0:
        return 1.0
    dist = [1.0] + [0.0] * need  # dist[k] = P(k successes), the last cell means "need or more"
    for p in list(probs) + [extra_p] * extra_n:
        for k in range(need, 0, -1):
            if k == need:
                dist[k] = dist[k] + dist[k - 1] * p
            else:
                dist[k] = dist[k] * (1 - p) + dist[k - 1] * p
        dist[0] *= 1 - p
    return dist[need]


def more_to_ask(
    *,
    units: int,
    confirmed: int,
    outstanding: Sequence[float],
    rates: Rates,
    confidence: float,
    margin: float | None = None,
    minimum: int = 0,
    maximum: int = 50,
) -> int:
    """How many new donors to ask now.

    ``outstanding`` holds, per ask still out, the share of its response window left (0–1).
    Returns 0 when covered; at most ``maximum`` (the policy asks in waves, never everyone).
    """
    need = target_available(units, rates, margin) - confirmed
    if need <= 0:
        return 0
    p = rates.available_per_ask
    out = [p * min(max(w, 0.0), 1.0) for w in outstanding]
    n = 0
    while n < maximum and _prob_at_least(need, out, n, p) < confidence:
        n += 1
    if n == 0:
        return 0
    return min(max(n, minimum), maximum)


def first_wave_size(units: int, rates: Rates, confidence: float, margin: float | None = None,
                    minimum: int = 0, maximum: int = 50) -> int:
    return more_to_ask(units=units, confirmed=0, outstanding=(), rates=rates, confidence=confidence,
                       margin=margin, minimum=minimum, maximum=maximum)


def beta_mean(successes: int, trials: int, prior_mean: float, strength: float) -> float:
    return (successes + prior_mean * strength) / (trials + strength)


def learned_rates(prior: Rates, strength: float, *, asked: int, available: int,
                  outcomes: int, donated: int) -> Rates:
    """The club's own rates, with DOMAIN.md §5's defaults as a Beta prior of ``strength`` asks.

    Telegram does not tell us who read a message, so "reads × says available" is learned as one
    rate (available ÷ asked) and split in the prior's proportion; likewise "arrives × passes" from
    donated ÷ available over requests whose outcome the hospital recorded. Only the hospital's
    "donated" counts as a yield (DOMAIN.md §5).
    """
    per_ask = beta_mean(available, asked, prior.available_per_ask, strength)
    conv = beta_mean(donated, outcomes, prior.donates_given_available, strength)
    says = min(per_ask / prior.reads, 1.0)
    arrives = min(conv / prior.passes, 1.0)
    # When a product outgrows a clamped factor, the other factor takes the rest.
    return Rates(reads=per_ask / says, says_available=says, arrives=arrives, passes=conv / arrives)


def window_left(asked_minutes_ago: float, window_min: float) -> float:
    if window_min <= 0:
        return 0.0
    return min(max(1.0 - asked_minutes_ago / window_min, 0.0), 1.0)
