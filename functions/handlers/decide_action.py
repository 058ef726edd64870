"""Step: choose restart, scale up, roll back or escalate from the findings; after a failed option, the next one."""

from __future__ import annotations

from typing import Any

from functions.core.config import get_settings
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.p1_steps import decide_action


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    envelope = envelope_of(event)
    assert envelope.target is not None
    settings = get_settings()
    return decide_action(event, settings.service(envelope.target.service), settings, envelope)
