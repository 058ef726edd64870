"""Step (P3): sessions waiting on locks and the sessions blocking them, with their queries."""

from __future__ import annotations

from typing import Any

from functions.adapters import postgres_diagnostics as pd
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_diagnostics import blocking_result


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbFindBlockingLocks", event)

    return step.on_connection(
        lambda conn: blocking_result(pd.blocking_locks(conn, step.now())),
        application_name="runbook-autopilot-diagnostics",
    )
