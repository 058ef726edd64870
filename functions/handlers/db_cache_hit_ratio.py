"""Step (P3): the buffer cache hit ratio of every database."""

from __future__ import annotations

from typing import Any

from functions.adapters import postgres_diagnostics as pd
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_diagnostics import cache_hit_result


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbCacheHitRatio", event)

    return step.on_connection(
        lambda conn: cache_hit_result(pd.cache_hits(conn)), application_name="runbook-autopilot-diagnostics"
    )
