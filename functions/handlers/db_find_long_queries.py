"""Step (P2): queries running over the limit (30 s); with ``terminate_long_queries`` (opt-in) the policy
decides which may be ended."""

from __future__ import annotations

from functools import partial
from typing import Any

from functions.adapters import postgres_diagnostics as pd
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_diagnostics import LONG_QUERY_SECONDS, long_queries_result


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbFindLongQueries", event)
    seconds = float(event.get("long_query_seconds") or LONG_QUERY_SECONDS)
    terminate = event.get("terminate_long_queries") is True

    def use(conn: Any) -> StepResult:
        return long_queries_result(
            pd.long_queries(conn, step.now(), seconds),
            step.settings.maintenance,
            seconds=seconds,
            terminate=terminate,
            dry_run=step.dry_run,
            terminate_one=partial(pd.terminate_if_same_query, conn),
        )

    return step.on_connection(use, application_name="runbook-autopilot-diagnostics")
