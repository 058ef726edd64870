"""P1 "Service Completely Down": the decisions, as pure functions of the findings.

Options follow the runbook book: A restart, B scale up, C roll back. Each is tried at most once; when none
is left, or the incident has been open longer than the escalation deadline, the answer is to escalate.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from functions.core.config import Service
from functions.core.results import Status, StepResult

Action = Literal["RESTART", "SCALE_UP", "ROLLBACK", "ESCALATE", "NONE"]
OPTION_LETTER = {"RESTART": "A", "SCALE_UP": "B", "ROLLBACK": "C"}
# The runbook book's time budgets for each option's rollout wait, in seconds.
ROLLOUT_BUDGET = {"RESTART": 300, "SCALE_UP": 180, "ROLLBACK": 300}
BAD_WAITING = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "RunContainerError",
}
OVERLOADED_UTILIZATION = 0.9  # average CPU use of requests at which ready pods count as too few


class Plan(BaseModel):
    action: Action
    reason: str
    remaining: list[Action] = Field(default_factory=list)
    tried: list[Action] = Field(default_factory=list)
    scale_to: int | None = None
    budget_seconds: int = 0
    escalation_reason: str | None = None

    def result(self) -> StepResult:
        # a decision changes nothing: OK when the runbook can act (or need not), DEGRADED when it must escalate
        status = Status.DEGRADED if self.action == "ESCALATE" else Status.OK
        label = (
            self.action
            if self.action not in OPTION_LETTER
            else f"option {OPTION_LETTER[self.action]}: {self.action}"
        )
        return StepResult(
            status=status, summary=f"{label}: {self.reason}", details=self.model_dump(mode="json")
        )


def _finding(findings: dict[str, Any], name: str) -> StepResult | None:
    raw = findings.get(name)
    return StepResult.model_validate(raw) if isinstance(raw, dict) and "status" in raw else None


def pods_failing(pods: StepResult) -> bool:
    details = pods.details
    return bool(details.get("ready", 0) < details.get("desired", 0) or details.get("waiting_reasons"))


def failing_revision_is_recent(history: StepResult, pods: StepResult, service: Service) -> tuple[bool, str]:
    """The current revision is new, it is the one whose pods fail, and a previous revision exists."""
    current = history.details.get("current") or {}
    previous = history.details.get("previous")
    if not previous:
        return False, "there is no previous revision"
    age = current.get("age_minutes")
    if age is None:
        return False, "the age of the latest change is unknown"
    if age > service.recent_change_minutes:
        return (
            False,
            f"the latest change is {age:.0f} min old (recent means under {service.recent_change_minutes})",
        )
    failing_hashes = {p.get("hash") for p in pods.details.get("pods", []) if not p.get("ready")}
    if current.get("hash") not in failing_hashes:
        return False, "the failing pods do not belong to the latest revision"
    return True, (
        f"revision {current.get('revision')} ({', '.join(current.get('images', []))}) rolled out "
        f"{age:.0f} min ago and its pods fail; revision {previous.get('revision')} "
        f"({', '.join(previous.get('images', []))}) ran before it"
    )


def scale_target(
    pods: StepResult, resources: StepResult | None, service: Service, *, for_load: bool
) -> int | None:
    """Replicas for option B, capped by max_replicas; None when no more replicas are allowed.

    For load: the HPA formula on CPU use (ceil(replicas * use / target)). Otherwise (new pods to replace
    failing ones): double, as the runbook book's example does (3 -> 6).
    """
    desired = int(pods.details.get("desired", 0)) or 1
    wanted = desired * 2
    if for_load and resources is not None and resources.status == Status.OK:
        use = float(resources.details.get("avg_cpu_utilization", 0.0))
        if use > 0:
            wanted = max(desired + 1, math.ceil(desired * use / service.target_cpu_utilization))
    capped = min(wanted, service.max_replicas)
    return capped if capped > desired else None


def decide(findings: dict[str, Any], service: Service) -> Plan:
    """The first decision after the investigation."""
    deps = _finding(findings, "dependencies")
    pods = _finding(findings, "pods")
    history = _finding(findings, "history")
    resources = _finding(findings, "resources")
    health = _finding(findings, "health")
    targets = _finding(findings, "targets")

    if deps is not None and deps.details.get("critical_down"):
        down = ", ".join(deps.details["critical_down"])
        return Plan(
            action="ESCALATE",
            reason=f"dependency down: {down}; the deployment is left alone",
            escalation_reason=f"critical dependency down: {down}",
        )
    if pods is None or pods.status in (Status.UNAVAILABLE, Status.SKIPPED):
        why = pods.summary if pods else "no pod finding"
        return Plan(
            action="ESCALATE",
            reason=f"the pods could not be inspected ({why})",
            escalation_reason=f"investigation incomplete: {why}",
        )

    failing = pods_failing(pods)
    overloaded = (
        not failing
        and resources is not None
        and resources.status == Status.OK
        and float(resources.details.get("avg_cpu_utilization", 0.0)) >= OVERLOADED_UTILIZATION
    )
    service_ok = all(f is None or f.status in (Status.OK, Status.SKIPPED) for f in (health, targets))
    scale_to = scale_target(pods, resources, service, for_load=overloaded)

    options: list[Action]
    if failing:
        recent, why = failing_revision_is_recent(history, pods, service) if history else (False, "no history")
        reasons = ", ".join(f"{k} x{v}" for k, v in pods.details.get("waiting_reasons", {}).items())
        state = f"{pods.details.get('ready', 0)}/{pods.details.get('desired', 0)} pods ready" + (
            f" ({reasons})" if reasons else ""
        )
        if recent:
            options, reason = ["ROLLBACK", "RESTART"], f"{state}; {why}"
        else:
            options, reason = ["RESTART", "SCALE_UP"], f"{state}; infrastructure healthy, {why}"
    elif overloaded:
        use = float(resources.details["avg_cpu_utilization"]) if resources else 0.0
        options = ["SCALE_UP", "RESTART"]
        reason = f"all {pods.details.get('ready')} pods ready but CPU at {use:.0%} of requests: too few for the load"
    elif service_ok:
        return Plan(
            action="NONE",
            reason="every check passes: health endpoints answer, targets healthy, all pods ready",
        )
    else:
        options = ["RESTART"]
        reason = "pods are ready but the service does not answer; a restart is the safe first step"

    if scale_to is None:
        options = [o for o in options if o != "SCALE_UP"]
    if not options:
        return Plan(
            action="ESCALATE",
            reason=f"{reason}; no option applies (at max replicas)",
            escalation_reason="no runbook option applies",
        )
    first, *rest = options
    return Plan(
        action=first, reason=reason, remaining=rest, scale_to=scale_to, budget_seconds=ROLLOUT_BUDGET[first]
    )


def next_option(
    plan: Plan, *, why_previous_failed: str, elapsed_minutes: float, deadline_minutes: int
) -> Plan:
    """After an option did not restore the service: the next untried option, or escalate."""
    tried = [*plan.tried, plan.action] if plan.action in OPTION_LETTER else list(plan.tried)
    if elapsed_minutes >= deadline_minutes:
        return Plan(
            action="ESCALATE",
            tried=tried,
            reason=f"{why_previous_failed}; unresolved after {elapsed_minutes:.0f} min (limit {deadline_minutes})",
            escalation_reason=f"unresolved after {elapsed_minutes:.0f} minutes",
        )
    remaining = [o for o in plan.remaining if o not in tried]
    if not remaining:
        names = ", ".join(f"{OPTION_LETTER[t]} {t}" for t in tried)
        return Plan(
            action="ESCALATE",
            tried=tried,
            reason=f"{why_previous_failed}; every option tried ({names})",
            escalation_reason=f"every runbook option failed ({names})",
        )
    first, *rest = remaining
    return Plan(
        action=first,
        tried=tried,
        remaining=rest,
        scale_to=plan.scale_to,
        budget_seconds=ROLLOUT_BUDGET[first],
        reason=f"{why_previous_failed}; trying option {OPTION_LETTER[first]}",
    )


def rollout_verdict(state: str, message: str, *, elapsed_seconds: float, budget_seconds: int) -> StepResult:
    """One poll of the rollout: DONE → OK, a progress deadline → FAILED at once, out of budget → FAILED."""
    details = {"state": state, "elapsed_seconds": round(elapsed_seconds), "budget_seconds": budget_seconds}
    if state == "DONE":
        return StepResult(
            status=Status.OK,
            summary=f"rollout complete after {elapsed_seconds:.0f}s: {message}",
            details=details,
        )
    if state == "FAILED":
        return StepResult(status=Status.FAILED, summary=f"rollout failed: {message}", details=details)
    if elapsed_seconds >= budget_seconds:
        return StepResult(
            status=Status.FAILED,
            summary=f"rollout not done within {budget_seconds}s: {message}",
            details=details,
        )
    return StepResult(
        status=Status.WAITING,
        summary=f"waiting ({elapsed_seconds:.0f}/{budget_seconds}s): {message}",
        details=details,
    )


def verdict(health: dict[str, Any], targets: list[dict[str, Any]] | None, pods: dict[str, Any]) -> StepResult:
    """Recovered when the health URL answers, every target is healthy and every pod is ready."""
    problems = []
    if not health.get("ok"):
        problems.append(f"health {health.get('url')} -> {health.get('status') or health.get('error')}")
    if targets is not None:
        unhealthy = [t for t in targets if t.get("state") != "healthy"]
        if unhealthy or not targets:
            problems.append(f"{len(targets) - len(unhealthy)}/{len(targets)} targets healthy")
    if pods.get("ready", 0) < pods.get("desired", 0) or pods.get("waiting_reasons"):
        problems.append(f"{pods.get('ready', 0)}/{pods.get('desired', 0)} pods ready")
    details = {
        "health": health,
        "targets_healthy": None if targets is None else sum(t.get("state") == "healthy" for t in targets),
        "targets_total": None if targets is None else len(targets),
        "pods_ready": pods.get("ready"),
        "pods_desired": pods.get("desired"),
    }
    if problems:
        return StepResult(
            status=Status.FAILED, summary="not recovered: " + "; ".join(problems), details=details
        )
    return StepResult(
        status=Status.OK,
        summary=f"recovered: health {health.get('status')}, {pods.get('ready')}/{pods.get('desired')} pods ready"
        + ("" if targets is None else f", {len(targets)}/{len(targets)} targets healthy"),
        details=details,
    )
