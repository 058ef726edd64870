"""Step: send an incident update in the runbook book's communication template on the L1 topic."""

from __future__ import annotations

from typing import Any

from functions.adapters.sns import publish
from functions.core.config import get_settings
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.p1_steps import publish_incident_update


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    return publish_incident_update(event, envelope_of(event), get_settings(), publish)
