"""Step: indexes never scanned (not unique, not primary keys), with sizes and the statistics' age."""

from __future__ import annotations

from typing import Any

from functions.adapters.postgres_maintenance import MaintenanceSql
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_maintenance import report_unused_indexes


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbReportUnusedIndexes", event)
    if skipped := step.skipped():
        return skipped

    return step.on_connection(lambda conn: report_unused_indexes(MaintenanceSql(conn), step.now(), step.pace))
