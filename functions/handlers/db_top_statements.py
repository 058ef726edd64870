"""Step (P3): the statements with the highest mean time, from pg_stat_statements."""

from __future__ import annotations

from typing import Any

from functions.adapters import postgres_diagnostics as pd
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_diagnostics import TOP_STATEMENTS, top_statements_result


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbTopStatements", event)

    return step.on_connection(
        lambda conn: top_statements_result(pd.top_statements(conn, TOP_STATEMENTS), step.db.dbname),
        application_name="runbook-autopilot-diagnostics",
    )
