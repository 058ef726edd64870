"""The envelope every runbook run carries: target, trigger, incident and options.

The first step of each state machine builds it from whatever started the run (an alarm event, a schedule,
a person) and every later step reads it from ``$.envelope``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Target(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str
    namespace: str
    cluster: str
    deployment: str
    environment: str


class Trigger(BaseModel):
    kind: Literal["alarm", "schedule", "manual"]
    source: str  # alarm name, schedule rule, or who started it
    alarm_state: str | None = None
    previous_state: str | None = None
    reason: str | None = None
    event_id: str | None = None


class Incident(BaseModel):
    id: str
    severity: Literal["P1", "P2", "P3", "P4", "NONE"]
    started_at: str  # ISO 8601 UTC


class Options(BaseModel):
    dry_run: bool = False


class Envelope(BaseModel):
    """The normalized start of a run."""

    action: Literal["run", "ignore"]
    reason: str
    runbook: str
    target: Target | None = None
    trigger: Trigger
    incident: Incident | None = None
    options: Options = Field(default_factory=Options)

    def to_state(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def envelope_of(event: dict[str, Any]) -> Envelope:
    """Read the envelope a step was given (``$.envelope``)."""
    from functions.core.errors import InvalidInput

    raw = event.get("envelope")
    if not isinstance(raw, dict):
        raise InvalidInput("the step input has no envelope: start the runbook through its first step")
    return Envelope.model_validate(raw)
