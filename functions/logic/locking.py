"""Taking and releasing the one-run-per-target lock. Dry runs change nothing, the lock table included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from functions.core.envelope import Envelope
from functions.core.errors import InvalidInput
from functions.core.results import Status, StepResult

MAX_TTL_SECONDS = 24 * 3600


def lock_key(envelope: Envelope) -> str:
    if envelope.target is None:
        raise InvalidInput("the envelope names no target to lock")
    t = envelope.target
    return f"{t.cluster}/{t.namespace}/{t.deployment}"


def _owner(state: dict[str, Any]) -> str:
    owner = state.get("execution")
    if not isinstance(owner, str) or not owner:
        raise InvalidInput("execution is missing: the ASL passes $$.Execution.Id to the lock steps")
    return owner


def acquire_lock(
    state: dict[str, Any], envelope: Envelope, acquire: Callable[..., dict[str, Any]], now: float
) -> StepResult:
    key, owner = lock_key(envelope), _owner(state)
    ttl = state.get("ttl_seconds", 3600)
    if not isinstance(ttl, int) or not 60 <= ttl <= MAX_TTL_SECONDS:
        raise InvalidInput(f"ttl_seconds must be an integer between 60 and {MAX_TTL_SECONDS}")
    if envelope.options.dry_run:
        return StepResult(
            status=Status.SKIPPED, summary=f"dry run: {key} not locked", details={"target": key}
        )
    note = f"{envelope.runbook} {envelope.incident.id if envelope.incident else ''} ({envelope.reason})"
    held = acquire(key, owner, now=now, ttl_seconds=ttl, note=note)
    until = datetime.fromtimestamp(held["expires_at"], tz=UTC).strftime("%H:%M UTC")
    return StepResult(
        status=Status.CHANGED, summary=f"locked {key} until {until} (or until this run ends)", details=held
    )


def release_lock(
    state: dict[str, Any], envelope: Envelope, release: Callable[[str, str], bool]
) -> StepResult:
    key, owner = lock_key(envelope), _owner(state)
    if envelope.options.dry_run:
        return StepResult(
            status=Status.SKIPPED, summary=f"dry run: {key} was not locked", details={"target": key}
        )
    if release(key, owner):
        return StepResult(status=Status.CHANGED, summary=f"released {key}", details={"target": key})
    return StepResult(
        status=Status.NOOP,
        summary=f"{key} was not held by this run (already released)",
        details={"target": key},
    )
