"""The time source of every step.

On AWS it is the wall clock. The sandbox installs a scaled clock (``set_clock``) so that waits of minutes take
seconds and the cluster simulator, the state machine and the steps all agree on what time it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], float] = time.time


def set_clock(now: Callable[[], float]) -> None:
    """Replace the time source (epoch seconds). Used by the sandbox; tests may pin it."""
    global _now  # noqa: PLW0603 - one process-wide clock is the point
    _now = now


def reset_clock() -> None:
    set_clock(time.time)


def now_epoch() -> float:
    return _now()


def utcnow() -> datetime:
    return datetime.fromtimestamp(_now(), tz=UTC)


def iso_now() -> str:
    return to_iso(utcnow())


def to_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, second precision: the one timestamp format in state payloads."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def seconds_since(text: str) -> float:
    return now_epoch() - parse_iso(text).timestamp()
