"""Step: report sessions idle over an hour, terminate those idle over two (never our own, replication,
background processes or excluded roles and applications)."""

from __future__ import annotations

from typing import Any

from functions.adapters.postgres_maintenance import MaintenanceSql
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_maintenance import cleanup_connections


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbCleanupConnections", event)
    if skipped := step.skipped():
        return skipped

    return step.on_connection(
        lambda conn: cleanup_connections(
            MaintenanceSql(conn), step.settings.maintenance, dry_run=step.dry_run, now=step.now()
        )
    )
