"""Distances and the coarse grid the dispatcher searches by.

A fixed 0.1° grid (≈ 11 km north–south in Vietnam) lets a query fetch the
donors of the few cells around a hospital through an ordinary B-tree index,
on SQLite and PostgreSQL alike, instead of scoring every donor in the country.
"""

from __future__ import annotations

import math
from typing import Any

CELL_DEG = 0.1
_COLS = 3600  # cells per row: 360° / CELL_DEG
EARTH_RADIUS_KM = 6371.0088


# A roster file leaves the bot and is passed around (e-mail, Zalo groups): a home to about 100 m
# (3 decimals: 111 m north–south, ≈ 105 m east–west in Vietnam) is all a lead needs to see who
# lives near which hospital, and names no house.
EXPORT_DECIMALS = 3
_EXPORT_HALF_STEP = 0.5 * 10 ** -EXPORT_DECIMALS + 1e-9


def for_export(lat: float | None, lon: float | None) -> tuple[float | None, float | None]:
    """A home's coordinates as a roster file shows them: rounded to about 100 m."""
    if lat is None or lon is None:
        return None, None
    return round(lat, EXPORT_DECIMALS), round(lon, EXPORT_DECIMALS)


def same_as_exported(lat: float, lon: float, stored_lat: float | None, stored_lon: float | None) -> bool:
    """True when (lat, lon) is within an export's rounding of the stored point: a file that went out
    and came back moves nobody, while any real correction (more than ~50 m) still does."""
    if stored_lat is None or stored_lon is None:
        return False
    return abs(lat - stored_lat) <= _EXPORT_HALF_STEP and abs(lon - stored_lon) <= _EXPORT_HALF_STEP


def geo_cell(lat: float | None, lon: float | None) -> int | None:
    if lat is None or lon is None:
        return None
    row = math.floor((lat + 90.0) / CELL_DEG)
    col = math.floor((lon + 180.0) / CELL_DEG) % _COLS
    return row * _COLS + col


def placed(lat: float | None, lon: float | None, *, approx: bool) -> dict[str, Any]:
    """A donor's location columns, her grid cell among them. Every writer of a donor's location
    (registration, /add, import, the seeds) sets them together through this, so the cell the
    dispatcher searches by cannot fall behind the coordinates (tests/test_layers.py holds it)."""
    return {"lat": lat, "lon": lon, "location_approx": approx, "geo_cell": geo_cell(lat, lon)}


def cells_within(lat: float, lon: float, radius_km: float) -> list[int]:
    """Every cell that may hold a point within ``radius_km`` of (lat, lon)."""
    dlat = radius_km / 111.2
    coslat = max(math.cos(math.radians(lat)), 0.01)
    dlon = radius_km / (111.32 * coslat)
    r0 = math.floor((max(lat - dlat, -90.0) + 90.0) / CELL_DEG)
    r1 = math.floor((min(lat + dlat, 90.0) + 90.0) / CELL_DEG)
    c0 = math.floor((lon - dlon + 180.0) / CELL_DEG)
    c1 = math.floor((lon + dlon + 180.0) / CELL_DEG)
    return [r * _COLS + (c % _COLS) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
