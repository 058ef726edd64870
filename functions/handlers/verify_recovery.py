"""Step: verify recovery: the health URL answers, every ELB target is healthy, every pod is ready."""

from __future__ import annotations

from typing import Any

from functions.adapters.elb import target_health
from functions.adapters.http_probe import http_get
from functions.adapters.kubernetes import kube_for_cluster
from functions.core.config import get_settings
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.p1_steps import verify_recovery


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    envelope = envelope_of(event)
    assert envelope.target is not None
    return verify_recovery(
        envelope, get_settings(), kube_for_cluster(envelope.target.cluster), http_get, target_health
    )
