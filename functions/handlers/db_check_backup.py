"""Step: the newest backup of the database's RDS instance is recent enough (pre-check)."""

from __future__ import annotations

from typing import Any

from functions.adapters import rds
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step, timed
from functions.logic.db_maintenance import evaluate_backup


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbCheckBackup", event)
    instance = step.db.rds_instance_id
    return timed(
        lambda: evaluate_backup(
            rds.latest_backup(instance) if instance else None,
            step.settings.maintenance.backup_max_age_hours,
            step.now(),
        )
    )
