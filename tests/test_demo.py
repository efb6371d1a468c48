"""The README's first command: the demo runs the real bot on the simulator and tells the truth about it."""

import io
import subprocess
import sys

from redreserve.demo import run_demo


async def test_the_demo_plays_both_requests_without_breaking_telegram_limits_and_tells_the_truth(tmp_path):
    out = io.StringIO()
    status = await run_demo(speed=600, seed_value=7, out=out, workdir=tmp_path, real_timeout=50)
    text = out.getvalue()
    assert "#1 wave 1" in text and "O− exact" in text.replace("O- exact", "O− exact")
    assert "Telegram limit violations: 0" in text
    # Both requests were covered at some point; donors then came and gave, or were let go.
    rows = [line.split() for line in text.splitlines()
            if line.startswith("#") and "×" in line.split()[1] and "fell short" not in line]
    assert len(rows) == 2 and all(r[2] in ("covered", "fulfilled", "exhausted", "expired") for r in rows), text
    assert "taps “I've arrived”" in text and "nurse records:" in text and " ml" in text
    # The boards and the after-action reports are printed (the staff speak Vietnamese).
    assert text.count("📊 Báo cáo yêu cầu #") == 2 and "Phễu" in text, text
    # Success is blood in the bag before the deadline (issue 9); a request short of it is named, with why.
    # Donors answer at the field's rates, so either can happen; what may not happen is a success that
    # hides a short request, or a short request without its reason.
    # The summary's minutes are the reports' minutes (one function computes both, issue 9).
    reports = {chunk.split(":")[0]: chunk.split("📊")[0]
               for chunk in text.split("📊 Báo cáo yêu cầu #")[1:]}
    for r in rows:  # "#1", "O-×1", state, asked, available, target, in time, to 1st donation, to cover
        report = reports[r[0].lstrip("#")]
        assert r[7] == "–" or f"lần hiến đầu tiên {r[7]} phút" in report, (r, report)
        assert r[8] == "–" or f"đủ người {r[8]} phút" in report, (r, report)
    in_time = [r[6].split("/") for r in rows]  # "#1", "O-×1", state, asked, available, target, in time
    short = [line for line in text.splitlines() if " fell short: " in line]
    assert len(short) == sum(int(done) < int(units) for done, units in in_time), text
    assert all(" — " in line and "said available" in line for line in short), text
    if short:
        assert status == 1 and "did NOT get every request enough units donated before its deadline" in text
    else:
        assert status == 0 and "Demo succeeded: every request has enough units donated before its deadline." in text


async def test_a_request_short_of_its_units_is_named_with_the_reason_and_the_demo_fails(tmp_path):
    out = io.StringIO()
    # Stopped after a few real seconds: nobody has given yet, so both requests are short.
    status = await run_demo(speed=60, seed_value=7, out=out, workdir=tmp_path, real_timeout=3)
    text = out.getvalue()
    assert status == 1, text
    assert "#1 O-×1 fell short: 0 of 1 unit(s) donated before its deadline" in text, text
    assert "the demo's time ran out before the deadline" in text
    assert "did NOT get every request enough units donated before its deadline" in text


def test_bad_demo_flags_exit_2():
    result = subprocess.run([sys.executable, "-m", "redreserve.cli", "demo", "--speed", "-1"],
                            capture_output=True, text=True, timeout=300)  # a hang guard, not a timing
    assert result.returncode == 2 and "--speed" in result.stderr
    result = subprocess.run([sys.executable, "-m", "redreserve.cli", "demo", "--bogus"],
                            capture_output=True, text=True, timeout=300)  # a hang guard, not a timing
    assert result.returncode == 2
