"""Step: VACUUM (ANALYZE) of the configured tables, one statement each, in autocommit (maintenance)."""

from __future__ import annotations

from typing import Any

from functions.adapters.postgres_maintenance import MaintenanceSql
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_maintenance import split_names, vacuum_tables


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbVacuumTables", event)
    m = step.settings.maintenance
    split_names(m.tables)  # a bad name refuses the step before it connects
    if skipped := step.skipped():
        return skipped

    return step.on_connection(
        lambda conn: vacuum_tables(
            MaintenanceSql(conn),
            m.tables,
            dry_run=step.dry_run,
            pace=step.pace,
            lock_ms=m.lock_timeout_seconds * 1000,
        )
    )
