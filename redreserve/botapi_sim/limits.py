"""Flood limits, modelled on what Telegram documents for bots.

Telegram's FAQ asks bots to stay under ~1 message per second per chat, 20 per
minute per group and ~30 per second overall, and answers 429 with a
``retry_after`` when they do not. Mass notifications (a blood-donor call-out to
hundreds of members) hit exactly these limits, so the simulator can enforce
them: off by default, switched on per test with ``set_limits``.

Windows are exact sliding windows over a monotonic clock (no token buckets or
fixed per-second slots) so that a test can reason precisely about which send is
the first one over the limit. Only accepted sends/edits occupy a window;
rejected ones do not, as a client retrying after ``retry_after`` must succeed.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

_SECOND = 1.0
_MINUTE = 60.0


@dataclass(frozen=True)
class RateLimits:
    """Limits in force; ``None`` disables one. ``retry_after=None`` computes the real wait."""

    global_per_second: int | None = None
    per_chat_per_second: int | None = None
    group_per_minute: int | None = None
    retry_after: int | None = None

    @property
    def enabled(self) -> bool:
        return any(
            limit is not None
            for limit in (self.global_per_second, self.per_chat_per_second, self.group_per_minute)
        )


class RateLimiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.limits = RateLimits()
        self._global: deque[float] = deque()
        self._per_chat: defaultdict[int | str, deque[float]] = defaultdict(deque)
        self._per_group: defaultdict[int | str, deque[float]] = defaultdict(deque)

    def reset(self) -> None:
        self._global.clear()
        self._per_chat.clear()
        self._per_group.clear()

    def check(self, chat_id: int | str, is_group: bool) -> int | None:
        """Seconds the client must wait before this send is allowed, or None if allowed now."""
        if not self.limits.enabled:
            return None
        now = self.clock()
        waits = [
            self._wait(self._global, self.limits.global_per_second, _SECOND, now),
            self._wait(self._per_chat[chat_id], self.limits.per_chat_per_second, _SECOND, now),
        ]
        if is_group:
            waits.append(
                self._wait(self._per_group[chat_id], self.limits.group_per_minute, _MINUTE, now)
            )
        wait = max(waits)
        if wait <= 0:
            return None
        if self.limits.retry_after is not None:
            return self.limits.retry_after
        return max(1, math.ceil(wait))

    def record(self, chat_id: int | str, is_group: bool) -> None:
        now = self.clock()
        self._global.append(now)
        self._per_chat[chat_id].append(now)
        if is_group:
            self._per_group[chat_id].append(now)
        # Keep memory bounded when limits are off: nothing older than the
        # longest window can ever matter.
        _expire(self._global, now - _MINUTE)
        _expire(self._per_chat[chat_id], now - _MINUTE)

    @staticmethod
    def _wait(window: deque[float], limit: int | None, span: float, now: float) -> float:
        if limit is None:
            return 0.0
        _expire(window, now - span)
        if len(window) < limit:
            return 0.0
        # The send becomes possible once enough old entries leave the window.
        return window[len(window) - limit] + span - now


def _expire(window: deque[float], horizon: float) -> None:
    while window and window[0] <= horizon:
        window.popleft()
