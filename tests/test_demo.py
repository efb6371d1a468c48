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
    rows = [line.split() for line in text.splitlines() if line.startswith("#")and " covered " in f" {line} "]
    assert len(rows) == 2, text


def test_bad_demo_flags_exit_2():
    result = subprocess.run([sys.executable, "-m", "redreserve.cli", "demo", "--speed", "-1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--speed" in result.stderr
    result = subprocess.run([sys.executable, "-m", "redreserve.cli", "demo", "--bogus"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
