"""Step: take the target's lock so one runbook at a time acts on it; a duplicate start raises TargetLocked."""

from __future__ import annotations

from typing import Any

from functions.adapters.locks import acquire
from functions.core.clock import now_epoch
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.locking import acquire_lock


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    return acquire_lock(event, envelope_of(event), acquire, now_epoch())
