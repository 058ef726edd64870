"""Step: page the next escalation level (L2 by default) with the findings and what was tried."""

from __future__ import annotations

from typing import Any

from functions.adapters.sns import publish
from functions.core.config import get_settings
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.p1_steps import escalate


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    level = str(event.get("level", "L2"))
    return escalate(event, envelope_of(event), get_settings(), publish, level=level)
