"""The one result contract every step returns.

The state machines branch on ``status``; people read ``summary``; later steps read ``details``.
Details are plain JSON (ISO strings, no ``datetime``) and small enough for the 256 KiB state limit.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator

MAX_DETAILS_BYTES = 64 * 1024  # a quarter of the state limit: several steps' details share one state


class Status(StrEnum):
    OK = "OK"  # checked, healthy
    CHANGED = "CHANGED"  # a change was made
    NOOP = "NOOP"  # the goal was already reached; nothing to do
    DRY_RUN = "DRY_RUN"  # would have changed something; changed nothing
    DEGRADED = "DEGRADED"  # checked, something is wrong
    WAITING = "WAITING"  # a slow operation is still going
    FAILED = "FAILED"  # checked or tried, and it failed
    UNAVAILABLE = "UNAVAILABLE"  # the data could not be read (for example no metrics API)
    SKIPPED = "SKIPPED"  # not run, on purpose (say why in the summary)


class StepResult(BaseModel):
    """What a step reports: a status to branch on, one human line, structured details."""

    status: Status
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("details")
    @classmethod
    def _details_fit_in_state(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, default=str))
        if size > MAX_DETAILS_BYTES:
            raise ValueError(f"step details are {size} bytes; keep them under {MAX_DETAILS_BYTES}")
        return value

    def to_state(self) -> dict[str, Any]:
        """The JSON-safe form returned to Step Functions."""
        return self.model_dump(mode="json")
