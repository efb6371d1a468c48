"""The README's first command: the demo runs the real bot on the simulator and covers both requests."""

import io
import subprocess
import sys

from redreserve.demo import run_demo


async def test_the_demo_covers_both_requests_without_breaking_telegram_limits(tmp_path):
    out = io.StringIO()
    status = await run_demo(speed=600, seed_value=7, out=out, workdir=tmp_path, real_timeout=50)
    text = out.getvalue()
    assert status == 0, text
    assert "#1 wave 1" in text and "O− exact" in text.replace("O- exact", "O− exact")
    assert "Telegram limit violations: 0" in text
    # Both requests were covered at some point; donors then came and gave, or were let go.
    rows = [line.split() for line in text.splitlines() if line.startswith("#") and "×" in line.split()[1]]
    assert len(rows) == 2 and all(r[2] in ("covered", "fulfilled", "exhausted", "expired") for r in rows), text
    assert "taps “I've arrived”" in text and "nurse records:" in text and " ml" in text
    # The boards and the after-action reports are printed (the staff speak Vietnamese).
    assert text.count("📊 Báo cáo yêu cầu #") == 2 and "Phễu" in text, text


def test_bad_demo_flags_exit_2():
    result = subprocess.run([sys.executable, "-m", "redreserve.cli", "demo", "--speed", "-1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--speed" in result.stderr
    result = subprocess.run([sys.executable, "-m", "redreserve.cli", "demo", "--bogus"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
