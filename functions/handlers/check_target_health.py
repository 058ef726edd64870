"""Step: read ELB target health, state and reason per target."""

from __future__ import annotations

from typing import Any

from functions.adapters.elb import target_health
from functions.core.config import get_settings
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.p1_steps import check_target_health


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    envelope = envelope_of(event)
    assert envelope.target is not None
    return check_target_health(get_settings().service(envelope.target.service), target_health)
