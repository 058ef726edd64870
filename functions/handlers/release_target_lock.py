"""Step: release the target's lock at the end of a run (every end path passes here)."""

from __future__ import annotations

from typing import Any

from functions.adapters.locks import release
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.locking import release_lock


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    return release_lock(event, envelope_of(event), release)
