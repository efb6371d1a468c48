"""One ``redreserve run`` in a process of its own, for failover proofs and benches (issue 14).

Each instance gets a config file, its log in a file (read while it runs: which instance leads),
and can be stopped (SIGTERM) or killed (SIGKILL) — a kill is what an instance cannot clean up
after: its leader lock goes with its connection, its claimed outbox rows wait out their lease.
Used by tests/test_failover.py and bench/instances.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LEADS = "is the leader"
FOLLOWS = "follows (another instance leads)"


@dataclass
class InstanceProcess:
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    async def wait_log(self, needle: str, timeout: float = 30.0) -> float:
        """Wait until the log has ``needle``; the monotonic time it was seen (to within 20 ms)."""
        until = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.returncode is not None:
                raise AssertionError(f"instance {self.name} exited {self.proc.returncode}:\n{self.text()}")
            if time.monotonic() > until:
                raise AssertionError(f"instance {self.name}: no {needle!r} within {timeout} s:\n{self.text()}")
            await asyncio.sleep(0.02)
        return time.monotonic()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    async def stop(self, timeout: float = 30.0) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode if self.proc.returncode is not None else -1


async def start_instance(workdir: Path, name: str, *, api_base: str, token: str, db_url: str,
                         rate: float = 30.0, lease_s: float = 2.0, retry_s: float = 0.5) -> InstanceProcess:
    """``redreserve run`` with a config of its own: the shared budget, a short lease and leader retry."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"{name}.toml"
    config.write_text(
        f'[telegram]\ntoken = "{token}"\napi_base = "{api_base}"\n'
        f'[database]\nurl = "{db_url}"\n'
        f'[cluster]\ninstance_id = "{name}"\nbudget = "shared"\nlease_s = {lease_s}\nleader_retry_s = {retry_s}\n'
        f'[dispatch.send]\nglobal_per_second = {rate}\nper_chat_per_second = 1\ngroup_per_minute = 20\n',
        encoding="utf-8")
    log = workdir / f"{name}.log"
    script = Path(sys.executable).with_name("redreserve")
    env = {k: v for k, v in os.environ.items() if k != "BOT_TOKEN" and not k.startswith("REDRESERVE_")}
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(str(script), "run", "--config", str(config), cwd=workdir,
                                                    env=env, stdout=out, stderr=out)
    return InstanceProcess(name, proc, log)
