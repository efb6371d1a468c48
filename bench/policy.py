"""The wave policies side by side, run by the real engine (issue 13; redreserve/policylab.py).

    .venv/bin/python bench/policy.py                       # the table, and bench/policy.png if matplotlib is there
    .venv/bin/python bench/policy.py --per-urgency 10 --rhneg 5 --busy-days 3 --month-days 0   # a quick look
    .venv/bin/python bench/policy.py --policies ours,broadcast
    .venv/bin/python bench/policy.py --model --per-urgency 500 --rhneg 200 --busy-days 0 --month-days 0  # fast model
    .venv/bin/python bench/policy.py --plot-from a.txt b.txt   # the picture from tables printed by parallel runs

Every policy meets the same requests and the same donors in the same mood (common random numbers,
one ``--seed``). Segments: single requests of each urgency (each on a fresh copy of the province),
an Rh− emergency needing 3 units, a busy stretch of overlapping requests for the province
(``--busy-days`` at ``--busy-per-day``), and a month at ``--month-per-day`` for the calls each donor
received (fatigue).

Columns: **enough in time** — share of requests with enough units *donated before the deadline*;
minutes to the first donation and to enough donated (median / p90; a request that never got there
counts as ∞, shown "–"); calls per request and per unit donated; donors **not needed** per request
(said available, then were told not to come, or gave beyond the units); calls delivered in quiet
hours (22:00–06:30) per request.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dispatcher.wave_policy import POLICIES, VARIANTS, WavePolicy  # noqa: E402
from redreserve.policymodel import FastModel, ranked_pools  # noqa: E402
from redreserve.policylab import (  # noqa: E402
    URGENCIES,
    LabRun,
    Outcome,
    PolicyLab,
    World,
    busy,
    rh_negative,
    singles,
)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, math.ceil(q * len(xs)) - 1)] if xs else float("nan")


def fmt(v: float, digits: int = 0) -> str:
    return "–" if math.isinf(v) or math.isnan(v) else f"{v:.{digits}f}"


def summarise(outs: list[Outcome]) -> dict[str, float]:
    n = len(outs)
    inf = math.inf
    first = [o.first_donation_min if o.first_donation_min is not None else inf for o in outs]
    enough = [o.enough_min if o.enough_min is not None else inf for o in outs]
    calls = sum(o.calls for o in outs)
    donated = sum(o.donated for o in outs)
    return {
        "n": n, "enough": sum(o.enough for o in outs) / n if n else float("nan"),
        "first_med": pct(first, 0.5), "first_p90": pct(first, 0.9),
        "enough_med": pct(enough, 0.5), "enough_p90": pct(enough, 0.9),
        "calls": calls / n if n else float("nan"), "per_unit": calls / donated if donated else inf,
        "not_needed": sum(o.not_needed for o in outs) / n if n else float("nan"),
        "quiet": sum(o.calls_quiet for o in outs) / n if n else float("nan"),
    }


HEADER = (f"{'policy':<13} {'segment':<9} {'n':>4} {'enough in time':>14} {'1st donation med/p90':>21} "
          f"{'enough med/p90':>15} {'calls/req':>9} {'calls/unit':>10} {'not needed':>10} {'quiet calls':>11}")


def row(policy: str, segment: str, s: dict[str, float]) -> str:
    return (f"{policy:<13} {segment:<9} {s['n']:>4} {s['enough']:>14.1%} "
            f"{fmt(s['first_med']) + ' / ' + fmt(s['first_p90']):>21} "
            f"{fmt(s['enough_med']) + ' / ' + fmt(s['enough_p90']):>15} {s['calls']:>9.1f} "
            f"{fmt(s['per_unit'], 1):>10} {s['not_needed']:>10.2f} {s['quiet']:>11.2f}")


def fatigue(run: LabRun) -> str:
    per = list(run.calls_per_donor.values())
    mean = sum(per) / run.roster if run.roster else 0.0
    return (f"calls per donor over the month: {mean:.2f} mean over the roster of {run.roster}, "
            f"{pct(per, 0.9) if per else 0:.0f} p90 / {max(per, default=0)} max among the {len(per)} called")


def plot(points: dict[str, dict[str, dict[str, float]]], path: Path) -> bool:
    """Calls per request against share donated in time: a point per policy and urgency, ours as a line."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no picture", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 6))
    markers = {"critical": "o", "urgent": "s", "planned": "^", "rh-neg": "D"}
    for k, (name, segs) in enumerate(points.items()):
        for seg, s in segs.items():
            if seg in markers:
                ax.scatter(s["calls"], 100 * s["enough"], marker=markers[seg], color=f"C{k}", s=60,
                           label=f"{name} {seg}")
    for seg in markers:  # ours' frontier: its settings (lean, default, eager) joined, per urgency
        ours = sorted((segs[seg]["calls"], 100 * segs[seg]["enough"]) for name, segs in points.items()
                      if name.startswith("ours") and seg in segs)
        if len(ours) > 1:
            ax.plot(*zip(*ours), color="black", linewidth=1, alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("calls per request (log)")
    ax.set_ylabel("requests with enough units donated before the deadline (%)")
    ax.set_title("Wave policies side by side (bench/policy.py; --model: the fast model)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def points_from_tables(paths: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """The picture's points from tables this script printed (runs split over processes, one per core)."""
    points: dict[str, dict[str, dict[str, float]]] = {}
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            f = line.split()
            if len(f) == 14 and f[3].endswith("%"):
                points.setdefault(f[0], {})[f[1]] = {"enough": float(f[3][:-1]) / 100, "calls": float(f[10])}
    return points


async def main_async(a: argparse.Namespace) -> None:
    if a.plot_from:
        if plot(points_from_tables(a.plot_from), Path(a.png)):
            print(f"picture: {a.png}")
        return
    names = a.policies.split(",")
    policies: list[WavePolicy] = [{**POLICIES, **VARIANTS}[n] for n in names]
    streams = {u: singles(u, a.per_urgency, a.seed) for u in URGENCIES if a.per_urgency}
    if a.rhneg:
        streams["rh-neg"] = rh_negative(a.rhneg, a.seed)
    busy_asks = busy(a.busy_days, a.busy_per_day, a.seed) if a.busy_days else []
    month_asks = busy(a.month_days, a.month_per_day, a.seed + 1) if a.month_days else []
    points: dict[str, dict[str, dict[str, float]]] = {}
    fatigue_lines, total, seconds = [], 0, 0.0
    print(HEADER)
    world = World(members=a.members, spread_km=a.spread_km)
    print(f"a province of {a.members} members spread {a.spread_km:g} km around the hospital; seed {a.seed}")
    async with PolicyLab(world=world, seed=a.seed, workers=a.workers) as lab:
        pools = await ranked_pools(lab.template, lab.settings, {(x.abo, x.rh) for s in streams.values() for x in s}) \
            if a.model else {}
        for p in policies:
            segs = points.setdefault(p.name, {})
            for seg, asks in streams.items():
                if a.model:  # single requests in the fast model (tests/test_policymodel.py: it agrees)
                    r = FastModel(p, pools, seed=a.seed, settings=lab.settings).run(asks)
                else:
                    r = await lab.run(p, asks, fresh_each=True)
                total, seconds = total + len(asks), seconds + r.seconds
                segs[seg] = summarise(r.outcomes)
                print(row(p.name, seg, segs[seg]), flush=True)
            if busy_asks:
                r = await lab.run(p, busy_asks, fresh_each=False)
                total, seconds = total + len(busy_asks), seconds + r.seconds
                segs["busy"] = summarise(r.outcomes)
                print(row(p.name, "busy", segs["busy"]), flush=True)
            if month_asks:
                r = await lab.run(p, month_asks, fresh_each=False)
                total, seconds = total + len(month_asks), seconds + r.seconds
                fatigue_lines.append(f"{p.name:<13} {fatigue(r)}")
    for line in fatigue_lines:
        print(line)
    how = "single requests in the fast model, the rest" if a.model else "requests"
    print(f"{total} {how} run by the engine in {seconds:.0f} s: {60 * total / seconds:.0f} requests/min")
    if a.png and plot(points, Path(a.png)):
        print(f"picture: {a.png}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", default=",".join([*POLICIES, *VARIANTS]))
    ap.add_argument("--per-urgency", type=int, default=20)
    ap.add_argument("--rhneg", type=int, default=10)
    ap.add_argument("--busy-days", type=int, default=7)
    ap.add_argument("--busy-per-day", type=float, default=3.0)
    ap.add_argument("--month-days", type=int, default=30)
    ap.add_argument("--month-per-day", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", action="store_true",
                    help="single and Rh− requests in the fast model (redreserve/policymodel.py), not the engine")
    ap.add_argument("--workers", type=int, default=2, help="processes for the single requests (one per core)")
    ap.add_argument("--members", type=int, default=World.members, help="the province's reserve club")
    ap.add_argument("--spread-km", type=float, default=World.spread_km, help="how far they live (Gaussian)")
    ap.add_argument("--png", default=str(Path(__file__).with_name("policy.png")))
    ap.add_argument("--plot-from", nargs="*", metavar="TABLE", help="only draw the picture from printed tables")
    t0 = time.perf_counter()
    asyncio.run(main_async(ap.parse_args()))
    print(f"wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
