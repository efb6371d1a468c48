"""bench/policy.py's picture (issue 13): the plotting function writes a PNG that decodes, and the
tables it prints can be drawn again (--plot-from)."""

from __future__ import annotations

from PIL import Image

from bench.policy import HEADER, plot, points_from_tables, row

POINTS = {
    "ours": {"critical": {"calls": 37.4, "enough": 0.998}, "urgent": {"calls": 15.0, "enough": 1.0}},
    "ours-before": {"critical": {"calls": 37.4, "enough": 0.998}, "urgent": {"calls": 22.9, "enough": 1.0}},
    "broadcast": {"critical": {"calls": 374.5, "enough": 0.998}, "rh-neg": {"calls": 38.6, "enough": 0.688}},
}


def test_the_picture_is_a_png_that_decodes(tmp_path):
    path = tmp_path / "policy.png"
    assert plot(POINTS, path)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 500 and im.size[1] > 300
        im.load()  # decodes every pixel, not only the header
        lo, hi = im.convert("L").getextrema()
        assert hi - lo > 100  # something is drawn on it, not a blank page


def test_a_printed_table_gives_back_its_points(tmp_path):
    stats = {"n": 5, "enough": 0.8, "first_med": 40, "first_p90": 60, "enough_med": 50, "enough_p90": float("inf"),
             "calls": 12.5, "per_unit": 6.0, "not_needed": 0.4, "quiet": 1.0}
    table = tmp_path / "t.txt"
    table.write_text("\n".join([HEADER, row("ours", "urgent", stats)]), encoding="utf-8")
    assert points_from_tables([str(table)]) == {"ours": {"urgent": {"enough": 0.8, "calls": 12.5}}}
