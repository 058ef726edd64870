"""Step (P2): client connections against max_connections."""

from __future__ import annotations

from typing import Any

from functions.adapters import postgres_diagnostics as pd
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_diagnostics import connection_usage_result


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbConnectionUsage", event)

    return step.on_connection(
        lambda conn: connection_usage_result(pd.connection_usage(conn)),
        application_name="runbook-autopilot-diagnostics",
    )
