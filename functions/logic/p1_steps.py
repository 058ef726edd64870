"""The P1 steps: each reads through an adapter passed in, and decides through the pure functions.

Handlers pass the real adapters; tests may pass others. No boto3, Kubernetes or SQL here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from functions.core.clock import iso_now, now_epoch, parse_iso, seconds_since, to_iso
from functions.core.config import Service, Settings
from functions.core.envelope import Envelope
from functions.core.errors import InvalidInput, UnsafeToProceed
from functions.core.results import Status, StepResult
from functions.logic import findings, p1
from functions.logic.incident import UpdateStatus, escalation_page, finding_lines, incident_update


class Kube(Protocol):
    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]: ...
    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[Any]: ...
    def rollout_history(self, namespace: str, name: str) -> list[Any]: ...
    def restart(self, namespace: str, name: str, *, at: str, dry_run: bool) -> Any: ...
    def scale(self, namespace: str, name: str, replicas: int, *, dry_run: bool) -> Any: ...
    def undo(
        self,
        namespace: str,
        name: str,
        *,
        to_revision: int = 0,
        dry_run: bool,
        from_revision: int | None = None,
    ) -> Any: ...
    def rollout_status(self, namespace: str, name: str) -> Any: ...
    def pod_metrics(self, namespace: str, selector: dict[str, str]) -> list[Any] | None: ...


Publisher = Callable[..., dict[str, Any]]


def _target(envelope: Envelope) -> Any:
    if envelope.target is None:
        raise InvalidInput("the envelope names no target")
    return envelope.target


def check_health_endpoints(service: Service, probe: Callable[[str], dict[str, Any]]) -> StepResult:
    urls = {"primary": service.health.primary} | (
        {"backup": service.health.backup} if service.health.backup else {}
    )
    return findings.summarize_endpoints({name: probe(url) for name, url in urls.items()})


def check_target_health(service: Service, read: Callable[[str], list[dict[str, Any]]]) -> StepResult:
    if not service.target_group_arn:
        return StepResult(status=Status.SKIPPED, summary="no target group configured", details={})
    return findings.summarize_targets(read(service.target_group_arn))


def _desired_and_paused(deployment: dict[str, Any]) -> tuple[int, bool]:
    spec = deployment.get("spec", {})
    replicas = spec.get("replicas")
    return (1 if replicas is None else int(replicas)), bool(spec.get("paused"))


def check_pods(envelope: Envelope, settings: Settings, kube: Kube) -> StepResult:
    target = _target(envelope)
    deployment = kube.get_deployment(target.namespace, target.deployment)
    desired, paused = _desired_and_paused(deployment)
    pods = kube.list_pods(target.namespace, settings.selector(target.service))
    return findings.summarize_pods(pods, desired=desired, paused=paused)


def check_rollout_history(envelope: Envelope, kube: Kube) -> StepResult:
    target = _target(envelope)
    return findings.summarize_history(
        kube.rollout_history(target.namespace, target.deployment), now_epoch=now_epoch()
    )


def check_resource_usage(envelope: Envelope, settings: Settings, kube: Kube) -> StepResult:
    target = _target(envelope)
    return findings.summarize_usage(kube.pod_metrics(target.namespace, settings.selector(target.service)))


def check_dependencies(service: Service, probes: Callable[[Any], dict[str, Any]]) -> StepResult:
    results = []
    for dependency in service.dependencies:
        outcome = probes(dependency)
        results.append(
            {
                "name": dependency.name,
                "kind": dependency.kind,
                "critical": dependency.critical,
                "ok": outcome["ok"],
                "latency_ms": outcome.get("latency_ms"),
                "error": outcome.get("error"),
            }
        )
    return findings.summarize_dependencies(results)


def decide_action(
    state: dict[str, Any], service: Service, settings: Settings, envelope: Envelope
) -> StepResult:
    """First call: decide from the findings. Later calls (``$.plan`` present): the next option or escalate."""
    plan_state = state.get("plan")
    if not plan_state:
        return p1.decide(state.get("findings", {}), service).result()
    plan = p1.Plan.model_validate(plan_state["details"])
    why = _why_failed(state)
    assert envelope.incident is not None
    elapsed = seconds_since(envelope.incident.started_at) / 60
    return p1.next_option(
        plan,
        why_previous_failed=why,
        elapsed_minutes=elapsed,
        deadline_minutes=settings.escalation.service_down["L1"],
    ).result()


def _why_failed(state: dict[str, Any]) -> str:
    for key in ("verification", "rollout", "change"):
        item = state.get(key)
        if isinstance(item, dict) and item.get("status") in ("FAILED", "DEGRADED"):
            return f"{key}: {item.get('summary')}"
    return "the previous option did not restore the service"


def _guard(envelope: Envelope, settings: Settings) -> Any:
    target = _target(envelope)
    if target.namespace not in settings.allowed_namespaces:
        raise UnsafeToProceed(f"namespace {target.namespace} is not in allowed_namespaces")
    return target


def _change_result(change: Any, started_at: str, budget: int) -> StepResult:
    status = Status.DRY_RUN if change.dry_run else Status.CHANGED if change.changed else Status.NOOP
    details = change.model_dump(mode="json") | {"started_at": started_at, "budget_seconds": budget}
    return StepResult(status=status, summary=change.summary, details=details)


def _plan(state: dict[str, Any]) -> p1.Plan:
    plan = state.get("plan")
    if not isinstance(plan, dict) or "details" not in plan:
        raise InvalidInput("no plan in the state: DecideAction runs before an action")
    return p1.Plan.model_validate(plan["details"])


def _attempt_key(state: dict[str, Any]) -> str:
    """A value that stays the same when Step Functions retries this state: the time the state was entered."""
    entered = state.get("entered_at")
    if not isinstance(entered, str) or not entered:
        raise InvalidInput("entered_at is missing: the ASL passes $$.State.EnteredTime to mutating steps")
    return to_iso(parse_iso(entered))


def restart_deployment(
    state: dict[str, Any], envelope: Envelope, settings: Settings, kube: Kube
) -> StepResult:
    target = _guard(envelope, settings)
    started = iso_now()
    # restartedAt is kubectl's annotation and the idempotency key: a retry finds it set and changes nothing
    change = kube.restart(
        target.namespace, target.deployment, at=_attempt_key(state), dry_run=envelope.options.dry_run
    )
    return _change_result(change, started, _plan(state).budget_seconds or p1.ROLLOUT_BUDGET["RESTART"])


def scale_deployment(state: dict[str, Any], envelope: Envelope, settings: Settings, kube: Kube) -> StepResult:
    target = _guard(envelope, settings)
    plan = _plan(state)
    service = settings.service(target.service)
    if plan.scale_to is None:
        raise UnsafeToProceed("the plan has no replica count to scale to")
    if plan.scale_to > service.max_replicas:
        raise UnsafeToProceed(
            f"{plan.scale_to} replicas is above the configured maximum {service.max_replicas}"
        )
    started = iso_now()
    # scaling to an absolute count is idempotent by itself: a retry finds the replicas already there
    change = kube.scale(target.namespace, target.deployment, plan.scale_to, dry_run=envelope.options.dry_run)
    return _change_result(change, started, plan.budget_seconds or p1.ROLLOUT_BUDGET["SCALE_UP"])


def rollback_deployment(
    state: dict[str, Any], envelope: Envelope, settings: Settings, kube: Kube
) -> StepResult:
    target = _guard(envelope, settings)
    started = iso_now()
    # the revision the investigation saw: a retry after a successful undo must not roll back once more
    history = state.get("findings", {}).get("history", {}).get("details", {})
    current = (history.get("current") or {}).get("revision")
    change = kube.undo(
        target.namespace,
        target.deployment,
        dry_run=envelope.options.dry_run,
        from_revision=int(current) if current is not None else None,
    )
    return _change_result(change, started, _plan(state).budget_seconds or p1.ROLLOUT_BUDGET["ROLLBACK"])


def check_rollout(state: dict[str, Any], envelope: Envelope, settings: Settings, kube: Kube) -> StepResult:
    """One poll of the rollout, against the option's budget and the incident's escalation limit."""
    target = _target(envelope)
    change = state.get("change", {}).get("details", {})
    if "started_at" not in change:
        raise InvalidInput("no change in the state: the rollout check follows an action")
    status = kube.rollout_status(target.namespace, target.deployment)
    verdict = p1.rollout_verdict(
        status.state,
        status.message,
        elapsed_seconds=seconds_since(change["started_at"]),
        budget_seconds=int(change.get("budget_seconds", 300)),
    )
    limit = settings.escalation.service_down["L1"]
    assert envelope.incident is not None
    if verdict.status == Status.WAITING and seconds_since(envelope.incident.started_at) >= limit * 60:
        verdict = StepResult(
            status=Status.FAILED,
            summary=f"the incident reached its {limit}-minute escalation limit while {status.message}",
            details=verdict.details,
        )
    verdict.details["rollout"] = status.model_dump(mode="json")
    return verdict


def verify_recovery(
    envelope: Envelope,
    settings: Settings,
    kube: Kube,
    probe: Callable[[str], dict[str, Any]],
    read_targets: Callable[[str], list[dict[str, Any]]],
) -> StepResult:
    target = _target(envelope)
    service = settings.service(target.service)
    health = probe(service.health.primary)
    targets = read_targets(service.target_group_arn) if service.target_group_arn else None
    pods = check_pods(envelope, settings, kube)
    return p1.verdict(health, targets, pods.details)


def _update_lines(state: dict[str, Any], status: UpdateStatus) -> list[str]:
    envelope_reason = state.get("envelope", {}).get("reason", "")
    lines: list[str] = []
    if status == "INVESTIGATING":
        lines = [
            f"Trigger: {envelope_reason}",
            "Checking health endpoints, load balancer targets, pods, rollout history, resource use and dependencies",
        ]
    elif status == "IDENTIFIED":
        lines = [
            *finding_lines(state.get("findings", {})),
            f"Action: {state.get('plan', {}).get('summary', '')}",
        ]
    elif status == "MONITORING":
        for key, label in (
            ("plan", "Decision"),
            ("change", "Change made"),
            ("rollout", "Rollout"),
            ("verification", "Verification"),
        ):
            item = state.get(key)
            if isinstance(item, dict) and item.get("summary"):
                lines.append(f"{label}: {item['summary']}")
    elif status == "RESOLVED":
        for key, label in (("change", "Change made"), ("verification", "Verification")):
            item = state.get(key)
            if isinstance(item, dict) and item.get("summary"):
                lines.append(f"{label}: {item['summary']}")
        if not lines:
            lines = finding_lines(state.get("findings", {}))
    return lines or ["No details yet"]


def publish_incident_update(
    state: dict[str, Any], envelope: Envelope, settings: Settings, publish: Publisher
) -> StepResult:
    update = state.get("update")
    if not isinstance(update, dict) or update.get("status") not in (
        "INVESTIGATING",
        "IDENTIFIED",
        "MONITORING",
        "RESOLVED",
    ):
        raise InvalidInput("update.status must be INVESTIGATING, IDENTIFIED, MONITORING or RESOLVED")
    status: UpdateStatus = update["status"]
    target = _target(envelope)
    service = settings.service(target.service)
    lines = [str(update["note"])] if update.get("note") else []
    final = bool(update.get("final"))  # this run sends no further update after this one
    subject, body = incident_update(
        envelope,
        status=status,
        lines=lines + _update_lines(state, status),
        now_iso=iso_now(),
        deadline_minutes=settings.escalation.service_down["L1"],
        update_interval_minutes=settings.escalation.update_interval_minutes,
        user_impact=str(update.get("impact") or service.user_impact),
        commander=settings.escalation.incident_commander,
        next_update="none planned: this run has ended; a new alarm starts a new run" if final else None,
    )
    sent = publish("L1", subject, body, dry_run=envelope.options.dry_run)
    verb = "would publish" if envelope.options.dry_run else "published"
    return StepResult(
        status=Status.DRY_RUN if envelope.options.dry_run else Status.OK,
        summary=f"{verb} {status} update to L1: {subject}",
        details={"subject": subject, "level": "L1", "sent": sent},
    )


ESCALATION_LEVELS = ("L1", "L2", "L3", "management")


def escalate(
    state: dict[str, Any], envelope: Envelope, settings: Settings, publish: Publisher, level: str = "L2"
) -> StepResult:
    """Page ``level`` with the findings and what was tried, then tell the incident channel (L1) who owns it now."""
    if level not in ESCALATION_LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(ESCALATION_LEVELS)}")
    plan = state.get("plan", {}).get("details", {}) if isinstance(state.get("plan"), dict) else {}
    error = state.get("error")
    if isinstance(error, dict) and error.get("Error"):
        reason = f"the runbook failed at a step: {error.get('Error')}: {str(error.get('Cause', ''))[:300]}"
    else:
        reason = (
            plan.get("escalation_reason")
            or plan.get("reason")
            or "the runbook could not resolve the incident"
        )
    lines = finding_lines(state.get("findings", {}))
    for key, label in (("change", "Last change"), ("rollout", "Rollout"), ("verification", "Verification")):
        item = state.get(key)
        if isinstance(item, dict) and item.get("summary"):
            lines.append(f"{label}: {item['summary']}")
    tried = list(plan.get("tried", []))
    subject, body = escalation_page(
        envelope,
        level=level,
        reason=reason,
        findings=lines or ["none recorded"],
        tried=tried,
        now_iso=iso_now(),
    )
    dry_run = envelope.options.dry_run
    sent = publish(level, subject, body, dry_run=dry_run)
    service = settings.service(_target(envelope).service)
    update_subject, update_body = incident_update(
        envelope,
        status="INVESTIGATING",
        lines=[
            f"Escalated to {level}: {reason}",
            f"The runbook has stopped acting; {level} owns the incident now"
            + (f" (options tried: {', '.join(tried)})" if tried else " (no change was made)"),
        ],
        now_iso=iso_now(),
        deadline_minutes=settings.escalation.service_down["L1"],
        update_interval_minutes=settings.escalation.update_interval_minutes,
        user_impact=service.user_impact,
        commander=settings.escalation.incident_commander,
        next_update=f"from {level}, who now leads the incident",
    )
    update = publish("L1", update_subject, update_body, dry_run=dry_run)
    verb = "would page" if dry_run else "paged"
    return StepResult(
        status=Status.DRY_RUN if dry_run else Status.OK,
        summary=f"{verb} {level} and told L1: {reason}",
        details={"subject": subject, "level": level, "reason": reason, "sent": sent, "l1_update": update},
    )
