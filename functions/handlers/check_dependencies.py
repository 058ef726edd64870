"""Step: probe the service's dependencies (PostgreSQL, Redis, RabbitMQ, external HTTP)."""

from __future__ import annotations

from functools import partial
from typing import Any

from functions.adapters.dependencies import probe
from functions.core.config import get_settings
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.p1_steps import check_dependencies


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    envelope = envelope_of(event)
    assert envelope.target is not None
    settings = get_settings()
    return check_dependencies(settings.service(envelope.target.service), partial(probe, settings=settings))
