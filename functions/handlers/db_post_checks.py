"""Step: after maintenance, version(), pg_is_in_recovery(), size, and the health of the applications using
the database (post-check; never skipped by the window)."""

from __future__ import annotations

from typing import Any

from functions.adapters import postgres_maintenance as pm
from functions.adapters.http_probe import http_get
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_maintenance import evaluate_post_checks


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbPostChecks", event)
    urls = sorted(
        {
            service.health.primary
            for service in step.settings.services.values()
            if any(dep.kind == "postgres" and dep.database == step.key for dep in service.dependencies)
        }
    )

    return step.on_connection(
        lambda conn: evaluate_post_checks(pm.server_facts(conn), [http_get(u) for u in urls])
    )
