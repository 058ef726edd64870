"""Step: read the Deployment's revisions and the age of the latest change (``kubectl rollout history``)."""

from __future__ import annotations

from typing import Any

from functions.adapters.kubernetes import kube_for_cluster
from functions.core.envelope import envelope_of
from functions.core.observability import step_handler
from functions.core.results import StepResult
from functions.logic.p1_steps import check_rollout_history


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    envelope = envelope_of(event)
    assert envelope.target is not None
    kube = kube_for_cluster(envelope.target.cluster)
    return check_rollout_history(envelope, kube)
