"""Step: turn the Sunday schedule event or a manual ``{"dry_run": bool}`` into the maintenance run's state."""

from __future__ import annotations

from typing import Any

from functions.core import clock
from functions.core.config import get_settings
from functions.core.observability import step_handler
from functions.core.results import Status, StepResult
from functions.logic.db_maintenance import normalize_start


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    state = normalize_start(event, get_settings(), clock.utcnow())
    window = state["window"]
    kind = state["envelope"]["trigger"]["kind"]
    dry = " (dry run)" if state["envelope"]["options"]["dry_run"] else ""
    return StepResult(
        status=Status.OK,
        summary=f"{kind} maintenance of {state['database']}{dry}, window {window['started_at']} .. {window['deadline']}",
        details=state,
    )
