"""Pictures for the reports (issue 16): a club's or a hospital's figures as one PNG, drawn headless.

Figures are made with matplotlib's object API and drawn by the Agg canvas: no pyplot, so no
display is needed and no state is shared between two figures; each chart may be drawn in a
worker thread (the monthly reports are, not to hold up the sender's loop). matplotlib's
bundled DejaVu Sans has every Vietnamese diacritic.
"""

from __future__ import annotations

import io
from datetime import datetime, tzinfo
from typing import Callable

import matplotlib.dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.texts import component_name, fmt_type, urgency_name
from dispatcher.club_report import ClubReport
from dispatcher.hospital_report import HospitalReport
from ground.clock import as_utc
from models.stats import RequestTimes

WIDTH_PX, HEIGHT_PX, DPI = 1200, 1000, 100
# Colour-blind-safe (Okabe–Ito); one colour per series, the same in every report.
COLOURS = ("#D55E00", "#0072B2", "#009E73", "#E69F00", "#CC79A7", "#56B4E9")


def club_chart(report: ClubReport, club: str, gettext: Callable[[str], str]) -> bytes:
    """Members by type (all / able today / within 30 days) over donations per month by component."""
    _ = gettext
    fig = _figure(HEIGHT_PX)
    top, bottom = fig.subplots(2, 1)
    fig.suptitle(club, fontsize=16, fontweight="bold")
    labels = [fmt_type(t.abo, t.rh) for t in report.types]
    x = range(len(labels))
    series = ((_("Members"), [t.members for t in report.types]),
              (_("Able to give today"), [t.eligible_today for t in report.types]),
              (_("Within 30 days"), [t.eligible_soon for t in report.types]))
    width = 0.27
    for i, (name, values) in enumerate(series):
        bars = top.bar([p + (i - 1) * width for p in x], values, width, label=name, color=COLOURS[i])
        top.bar_label(bars, labels=[str(v) if v else "" for v in values], fontsize=8)
    top.set_xticks(list(x), labels)
    top.set_title(_("Members by blood type"), pad=28)
    top.set_ylim(0, max(t.members for t in report.types) * 1.12 if report.types else 1)
    top.yaxis.get_major_locator().set_params(integer=True)
    # Above the plot, not over it: the tallest bar is often the last one.
    top.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    top.spines[["top", "right"]].set_visible(False)

    _stacked_months(bottom, report.months, [(component_name(c, _), counts) for c, counts in report.donations.items()],
                    _("Donations per month"), _("No donations recorded in these 12 months."))
    return _png(fig)


def hospital_chart(report: HospitalReport, hospital: str, gettext: Callable[[str], str]) -> bytes:
    """Requests per month by urgency over units received per month."""
    _ = gettext
    fig = _figure(HEIGHT_PX)
    top, bottom = fig.subplots(2, 1)
    fig.suptitle(hospital, fontsize=16, fontweight="bold")
    _stacked_months(top, report.months, [(_plain(urgency_name(u, _)), counts) for u, counts in report.by_urgency.items()],
                    _("Requests per month"), _("No requests in these 12 months."))
    _stacked_months(bottom, report.months, [(_("Units received"), report.units_by_month)],
                    _("Units received per month"), _("No units received in these 12 months."))
    return _png(fig)


def request_chart(times: RequestTimes, title: str, tz: tzinfo, gettext: Callable[[str], str]) -> bytes:
    """A request's timeline for the hospital's records: how many were asked, said yes, arrived and gave,
    hour by hour, against the units needed and the deadline (issue 16)."""
    _ = gettext

    def local(moment: datetime) -> datetime:
        # Naive local times: matplotlib's date axis then labels the hospital's clock, whatever the server's.
        return as_utc(moment).astimezone(tz).replace(tzinfo=None)

    start, deadline = local(times.created_at), local(times.deadline)
    moments = [local(at) for at, _asked in times.asks] + [local(t) for t in
                                                           (*times.said_available, *times.arrived, *times.donated)]
    end = max([deadline, *moments])
    fig = _figure(600)
    axes = fig.subplots()
    fig.suptitle(title, fontsize=14, fontweight="bold")
    asked_at, total = [start], [0]
    for at, asked in times.asks:
        asked_at.append(local(at))
        total.append(total[-1] + asked)
    series = [(_("Asked"), asked_at, total)]
    for name, stamps in ((_("Said available"), times.said_available), (_("Came"), times.arrived),
                         (_("Donated"), times.donated)):
        points = [local(t) for t in stamps]
        series.append((name, [start, *points], list(range(len(points) + 1))))
    for i, (name, xs, ys) in enumerate(series):
        axes.step([*xs, end], [*ys, ys[-1]], where="post", label=f"{name}: {ys[-1]}", color=COLOURS[i],
                  linewidth=2.5 if i == 3 else 1.5)
    axes.axhline(times.units, color="#333333", linestyle="--", linewidth=1)
    axes.annotate(_("units needed: {n}").format(n=times.units), (start, times.units), va="bottom", fontsize=9)
    axes.axvline(deadline, color=COLOURS[0], linestyle=":", linewidth=1.5)
    axes.annotate(_("deadline"), (deadline, 0), rotation=90, va="bottom", ha="right", fontsize=9)
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M\n%d/%m"))
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left")
    axes.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _stacked_months(axes, months, series, title: str, empty: str) -> None:
    labels = [f"{m:%m/%y}" for m in months]
    base = [0] * len(labels)
    for i, (name, counts) in enumerate(series):
        axes.bar(labels, counts, bottom=base, label=name, color=COLOURS[(i + 3) % len(COLOURS)])
        base = [b + c for b, c in zip(base, counts)]
    for position, total in enumerate(base):
        if total:
            axes.annotate(str(total), (position, total), ha="center", va="bottom", fontsize=8)
    axes.set_title(title)
    axes.set_ylim(0, max(base + [1]) * 1.15)
    axes.yaxis.get_major_locator().set_params(integer=True)
    if any(base):
        axes.legend(loc="upper left")
    else:
        axes.text(0.5, 0.5, empty, ha="center", va="center", transform=axes.transAxes, color="#555555")
    axes.spines[["top", "right"]].set_visible(False)


def _figure(height_px: int) -> Figure:
    fig = Figure(figsize=(WIDTH_PX / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _plain(label: str) -> str:
    # DejaVu Sans draws no emoji: a legend keeps the words of a label made for chat.
    return "".join(ch for ch in label if ord(ch) < 0x2600).strip()
