"""Names the stack gives its resources and the CLI uses to find them. No aws_cdk import here."""

from __future__ import annotations

DEFAULT_STACK_NAME = "RunbookAutopilot"
# The Kubernetes group the EKS access entries map every step role to; deploy/kubernetes/rbac.yaml binds it.
KUBERNETES_GROUP = "runbook-autopilot-steps"
OUTPUT_PREFIX = "StateMachineArn"


def pascal(name: str) -> str:
    """``p1-service-down`` -> ``P1ServiceDown``."""
    return "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").split("-") if part)


def state_machine_name(stack_name: str, runbook: str) -> str:
    return f"{stack_name}-{runbook}"


def output_key(runbook: str) -> str:
    """The stack output holding the state machine ARN of ``runbook``."""
    return f"{OUTPUT_PREFIX}{pascal(runbook)}"
