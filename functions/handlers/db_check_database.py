"""Step: database sizes, replication and load; FAILED (abort) when a replica is missing or behind or the
database is too busy for maintenance (pre-check)."""

from __future__ import annotations

from typing import Any

from functions.adapters import postgres_maintenance as pm
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_maintenance import evaluate_database_checks


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbCheckDatabase", event)

    def use(conn: Any) -> StepResult:
        return evaluate_database_checks(
            pm.database_sizes(conn),
            pm.replication(conn),
            pm.activity(conn, step.now()),
            step.db.expected_replicas,
            step.settings.maintenance,
        )

    return step.on_connection(use)
