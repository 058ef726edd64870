"""Step: ANALYZE VERBOSE, its output summarized (maintenance)."""

from __future__ import annotations

from typing import Any

from functions.adapters.postgres_maintenance import MaintenanceSql
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_maintenance import run_analyze


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbAnalyze", event)
    if skipped := step.skipped():
        return skipped

    return step.on_connection(
        lambda conn: run_analyze(MaintenanceSql(conn), dry_run=step.dry_run, pace=step.pace)
    )
