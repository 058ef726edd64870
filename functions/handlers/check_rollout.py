"""Step: poll the rollout once (``kubectl rollout status --watch=false``) against the option's time budget."""

from __future__ import annotations

from typing import Any

from functions.adapters.kubernetes import kube_for_cluster
from functions.core.config import get_settings
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.p1_steps import check_rollout


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    envelope = envelope_of(event)
    assert envelope.target is not None
    kube = kube_for_cluster(envelope.target.cluster)
    return check_rollout(event, envelope, get_settings(), kube)
