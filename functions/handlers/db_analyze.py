"""Step: ANALYZE VERBOSE, its output summarized (maintenance)."""

from __future__ import annotations

from typing import Any

from functions.adapters import postgres
from functions.adapters.postgres_maintenance import MaintenanceSql
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step, timed
from functions.logic.db_maintenance import Pace, run_analyze


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbAnalyze", event)
    if skipped := step.skipped():
        return skipped

    def run() -> StepResult:
        with postgres.connection(step.db) as conn:
            return run_analyze(
                MaintenanceSql(conn), dry_run=step.dry_run, pace=Pace(step.name, step.window, step.now)
            )

    return timed(run)
