"""Step: probe the service's primary and backup health URLs (``curl -f``)."""

from __future__ import annotations

from typing import Any

from functions.adapters.http_probe import http_get
from functions.core.config import get_settings
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.p1_steps import check_health_endpoints


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    envelope = envelope_of(event)
    assert envelope.target is not None
    return check_health_endpoints(get_settings().service(envelope.target.service), http_get)
