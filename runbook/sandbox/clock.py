"""A scaled clock: simulated time runs ``scale`` times faster than the wall clock.

The sandbox installs it as the steps' clock (``functions.core.clock.set_clock``), uses it for moto's Wait
states and retry intervals, and the cluster simulator reads it, so all three agree on what time it is.
"""

from __future__ import annotations

import threading
import time


class ScaledClock:
    def __init__(self, scale: float = 60.0, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._real0 = time.monotonic()
        self._sim0 = time.time() if start is None else start
        self._lock = threading.Lock()
        self._offset = 0.0  # simulated seconds added by advance()

    def now(self) -> float:
        """Simulated epoch seconds."""
        with self._lock:
            return self._sim0 + (time.monotonic() - self._real0) * self.scale + self._offset

    def real_seconds(self, simulated_seconds: float) -> float:
        return max(0.0, simulated_seconds) / self.scale

    def sleep(self, simulated_seconds: float) -> None:
        time.sleep(self.real_seconds(simulated_seconds))

    def advance(self, simulated_seconds: float) -> None:
        """Jump forward (tests use it to reach a deadline without waiting)."""
        with self._lock:
            self._offset += simulated_seconds
