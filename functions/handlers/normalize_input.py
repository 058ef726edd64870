"""Step: turn an alarm event or a request into the run envelope (the first state of every alarm runbook)."""

from __future__ import annotations

import os
from typing import Any

from functions.core.clock import iso_now
from functions.core.config import get_settings
from functions.core.observability import step_handler
from functions.core.results import Status, StepResult
from functions.logic.intake import normalize

RUNBOOK_SEVERITY = {"p1-service-down": "P1", "p2-high-error-rate": "P2", "p3-high-latency": "P3"}


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    runbook = os.environ.get("RUNBOOK_NAME") or str(event.get("runbook_name", "p1-service-down"))
    raw = event.get("input", event)  # the ASL passes {"input": $, "runbook_name": ...}
    envelope = normalize(
        raw, get_settings(), runbook=runbook, severity=RUNBOOK_SEVERITY.get(runbook, "P1"), now_iso=iso_now()
    )
    status = Status.OK if envelope.action == "run" else Status.SKIPPED
    return StepResult(status=status, summary=envelope.reason, details=envelope.to_state())
