"""Step: report sessions idle over an hour, terminate those idle over two (never our own, replication,
background processes or excluded roles and applications)."""

from __future__ import annotations

from typing import Any

from functions.adapters import postgres
from functions.adapters.postgres_maintenance import MaintenanceSql
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step, timed
from functions.logic.db_maintenance import cleanup_connections


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbCleanupConnections", event)
    if skipped := step.skipped():
        return skipped

    def run() -> StepResult:
        with postgres.connection(step.db) as conn:
            ops = MaintenanceSql(conn)
            ops.set_timeouts(step.statement_ms())
            return cleanup_connections(ops, step.settings.maintenance, dry_run=step.dry_run, now=step.now())

    return timed(run)
