"""A scaled clock: simulated time runs ``scale`` times faster than the wall clock.

The sandbox installs it as the steps' clock (``functions.core.clock.set_clock``), uses it for moto's Wait
states and retry intervals, and the cluster simulator reads it, so all three agree on what time it is.
A clock made with ``running=False`` stands still until ``resume()``: the sandbox sets up its world on a
frozen clock, so however long set-up takes, the runbook starts the moment the scenario says it does.
"""

from __future__ import annotations

import threading
import time


class ScaledClock:
    def __init__(self, scale: float = 60.0, start: float | None = None, *, running: bool = True) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._lock = threading.Lock()
        self._sim0 = time.time() if start is None else start  # simulated time when last resumed
        self._real0: float | None = time.monotonic() if running else None

    def now(self) -> float:
        """Simulated epoch seconds."""
        with self._lock:
            if self._real0 is None:
                return self._sim0
            return self._sim0 + (time.monotonic() - self._real0) * self.scale

    def reset(self, start: float | None = None) -> None:
        """Stand still at ``start`` (default: now) until ``resume()``."""
        with self._lock:
            self._sim0 = time.time() if start is None else start
            self._real0 = None

    def pause(self) -> None:
        with self._lock:
            if self._real0 is not None:
                self._sim0 += (time.monotonic() - self._real0) * self.scale
                self._real0 = None

    def resume(self) -> None:
        with self._lock:
            if self._real0 is None:
                self._real0 = time.monotonic()

    def real_seconds(self, simulated_seconds: float) -> float:
        return max(0.0, simulated_seconds) / self.scale

    def sleep(self, simulated_seconds: float) -> None:
        time.sleep(self.real_seconds(simulated_seconds))

    def advance(self, simulated_seconds: float) -> None:
        """Jump forward (tests use it to reach a deadline without waiting)."""
        with self._lock:
            self._sim0 += simulated_seconds
