"""How a request asks: the wave policy the engine runs (issue 13). Pure data and arithmetic.

``OURS`` is the product's policy (DOMAIN.md §5): the wave model (dispatcher.waves) sizes each
wave, a decline or an expired silence is replaced at once, the stop target is units × margin,
and the radius, intervals and sizes come from ``[dispatch]``. The other policies are the
anchors the policy lab (redreserve/policylab.py) compares it with, parameters from DOMAIN.md §6:
everyone at once, fixed waves of 10, BloodConnect's and Haemologix's. The engine takes one
through its constructor; every ``None`` here means "as ``[dispatch]`` says".
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import timedelta

from dispatcher.waves import Rates, target_available
from ground.config import DispatchConfig, Margins, PerUrgency


class Sizing(str, enum.Enum):
    model = "model"  # the wave model: the fewest asks that reach the stop target at the urgency's confidence
    fixed = "fixed"  # ``first_wave``, then ``later_wave`` donors per wave
    over_ask = "over_ask"  # the "available" still missing, plus ``first_wave`` (first) or ``later_wave`` (later)
    per_unit = "per_unit"  # max(``first_wave``, ``per_unit`` × units), at most ``cap``, every wave


EVERYONE = 100_000  # a wave size that asks every donor within reach


@dataclass(frozen=True)
class WavePolicy:
    name: str = "ours"
    sizing: Sizing = Sizing.model
    first_wave: int = 0
    later_wave: int = 0
    per_unit: float = 0.0
    cap: int = EVERYONE
    # A decline, a withdrawal or an expired silence is replaced at once, and a wave whose asks are all
    # settled fires at once (DOMAIN.md §5: "alert a few, replace each refusal"); otherwise only timed waves ask.
    replace_at_once: bool = True
    interval_min: float | None = None  # between waves; None: [dispatch] wave_interval_min per urgency
    # "Available" wanted per unit; None: [dispatch] margin (a missing urgency there: 1 / (arrives × passes)).
    stop_margin: Margins | None = None
    confidence: PerUrgency | None = None  # the wave model's; None: [dispatch] confidence
    min_wave: int | None = None  # the wave model's smallest timed wave; None: [dispatch] min_wave
    initial_radius_km: float | None = None
    radius_growth: float | None = None
    max_radius_km: float | None = None
    rare_everyone: bool = True  # a rare type asks every match at once (DOMAIN.md §3)
    # When nobody new is left within reach: try again this many times, ``retry_min`` apart, before giving up.
    retries: int = 0
    retry_min: float = 60.0

    def margin_of(self, cfg: DispatchConfig, urgency: str) -> float | None:
        """"Available" wanted per unit (None: 1 / (arrives × passes), dispatcher.waves)."""
        return (cfg.margin if self.stop_margin is None else self.stop_margin).of(urgency)

    def target(self, units: int, rates: Rates, cfg: DispatchConfig, urgency: str) -> int:
        """Confirmed "available" at which asking stops."""
        return target_available(units, rates, self.margin_of(cfg, urgency))

    def confidence_of(self, cfg: DispatchConfig, urgency: str) -> float:
        return (cfg.confidence if self.confidence is None else self.confidence).of(urgency)

    def smallest_wave(self, cfg: DispatchConfig) -> int:
        return cfg.min_wave if self.min_wave is None else self.min_wave

    def wave_size(self, *, units: int, missing: int, first: bool, firing: bool, model: int) -> int:
        """How many new donors to ask now; ``model`` is the wave model's answer, ``missing`` the
        "available" still wanted (counting none of the asks still out)."""
        if missing <= 0:
            return 0
        if self.sizing == Sizing.model:
            return model if firing or self.replace_at_once else 0
        if not firing:
            return 0
        if self.sizing == Sizing.fixed:
            n = self.first_wave if first else self.later_wave
        elif self.sizing == Sizing.over_ask:
            n = missing + (self.first_wave if first else self.later_wave)
        else:
            n = max(self.first_wave, math.ceil(self.per_unit * units))
        return max(0, min(n, self.cap))

    def interval(self, cfg: DispatchConfig, urgency: str) -> timedelta:
        return timedelta(minutes=cfg.wave_interval_min.of(urgency) if self.interval_min is None
                         else self.interval_min)

    def reach_km(self, cfg: DispatchConfig) -> float:
        return cfg.max_radius_km if self.max_radius_km is None else self.max_radius_km

    def radius_km(self, cfg: DispatchConfig, wave_no: int) -> float:
        """The wave's radius: the first wave's, grown at each wave, never beyond reach."""
        start = cfg.initial_radius_km if self.initial_radius_km is None else self.initial_radius_km
        growth = cfg.radius_growth if self.radius_growth is None else self.radius_growth
        return min(start * growth ** (max(wave_no, 1) - 1), self.reach_km(cfg))


OURS = WavePolicy()
UNITS = Margins(critical=1.0, urgent=1.0, planned=1.0)  # stop once as many say yes as there are units
# Everyone within reach in one message each, at once; the stop target as ours (the rest are stood down).
BROADCAST = WavePolicy(name="broadcast", sizing=Sizing.fixed, first_wave=EVERYONE, later_wave=EVERYONE,
                       replace_at_once=False, initial_radius_km=100.0)
FIXED_10 = WavePolicy(name="fixed10", sizing=Sizing.fixed, first_wave=10, later_wave=10, replace_at_once=False,
                      rare_everyone=False)
# DOMAIN.md §6: waves 3 minutes apart out to 15 km; over-ask +2, then +1; hourly retries, at most 3;
# it stops once as many donors as units say yes.
BLOODCONNECT = WavePolicy(name="bloodconnect", sizing=Sizing.over_ask, first_wave=2, later_wave=1,
                          replace_at_once=False, interval_min=3.0, stop_margin=UNITS, initial_radius_km=15.0,
                          radius_growth=1.0, max_radius_km=15.0, rare_everyone=False, retries=3, retry_min=60.0)
# DOMAIN.md §6: ask max(10, 2 × units), at most 50, per rung; 10 minutes per rung; the radius doubles up to
# 100 km, then the request is handed to a human coordinator (the engine's "exhausted": the leads are paged).
HAEMOLOGIX = WavePolicy(name="haemologix", sizing=Sizing.per_unit, first_wave=10, per_unit=2.0, cap=50,
                        replace_at_once=False, interval_min=10.0, stop_margin=UNITS, radius_growth=2.0,
                        max_radius_km=100.0, rare_everyone=False)

POLICIES: dict[str, WavePolicy] = {p.name: p for p in (OURS, BROADCAST, FIXED_10, BLOODCONNECT, HAEMOLOGIX)}

# Ours at other settings, the lab's frontier (issue 13): the same model asking for fewer or more.
# Lean: a non-critical request stops at one "yes" per unit, since a drop-out reopens it and its long
# deadline leaves time to ask again.
OURS_LEAN = WavePolicy(name="ours-lean", stop_margin=Margins(critical=None, urgent=1.0, planned=1.0))
# Eager: surer first waves, never fewer than 5.
OURS_EAGER = WavePolicy(name="ours-eager", confidence=PerUrgency(critical=0.97, urgent=0.9, planned=0.8), min_wave=5)
# The product's defaults before issue 13's tuning, kept as the lab's "before" (BENCHMARKS.md "Policy lab"):
# a sure first wave at every urgency and ≈ 1.73 "available" per unit (1 / (arrives × passes)).
OURS_BEFORE = WavePolicy(name="ours-before", confidence=PerUrgency(critical=0.9, urgent=0.8, planned=0.6),
                         stop_margin=Margins(critical=None, urgent=None, planned=None))
VARIANTS: dict[str, WavePolicy] = {p.name: p for p in (OURS_LEAN, OURS_EAGER, OURS_BEFORE)}
