"""The P1 decisions from findings: which option first, which next, when to escalate."""

from __future__ import annotations

import pytest

from functions.core.config import Service
from functions.logic import p1

SERVICE = Service(
    namespace="production", cluster="prod-eks", health={"primary": "http://x/health"}, max_replicas=10
)


def finding(status, summary="", **details):
    return {"status": status, "summary": summary, "details": details}


def pods(ready, desired, waiting=None, hashes=("new",)):
    listed = [{"name": f"p{i}", "ready": i < ready, "hash": hashes[i % len(hashes)]} for i in range(desired)]
    return finding(
        "OK" if ready == desired and not waiting else "FAILED",
        desired=desired,
        ready=ready,
        waiting_reasons=waiting or {},
        pods=listed,
    )


def history(age_minutes, previous=True):
    current = {"revision": 2, "images": ["app:v2"], "age_minutes": age_minutes, "hash": "new"}
    prev = {"revision": 1, "images": ["app:v1"], "age_minutes": 4000, "hash": "old"} if previous else None
    return finding("OK", current=current, previous=prev)


def findings(**over):
    base = {
        "health": finding("FAILED"),
        "targets": finding("FAILED"),
        "pods": pods(3, 3),
        "history": history(4000),
        "resources": finding("OK", avg_cpu_utilization=0.3),
        "dependencies": finding("OK", critical_down=[]),
    }
    return base | over


def test_a_recent_revision_whose_pods_crash_is_rolled_back_first():
    plan = p1.decide(findings(pods=pods(0, 3, {"CrashLoopBackOff": 3}), history=history(20)), SERVICE)

    assert plan.action == "ROLLBACK"
    assert plan.remaining == ["RESTART"]
    assert plan.budget_seconds == 300
    assert "revision 2 (app:v2) rolled out 20 min ago" in plan.reason


def test_failing_pods_with_an_old_revision_are_restarted_first():
    plan = p1.decide(findings(pods=pods(0, 3)), SERVICE)

    assert plan.action == "RESTART"
    assert plan.remaining == ["SCALE_UP"]
    assert plan.scale_to == 6


def test_failing_pods_of_an_older_revision_do_not_trigger_a_rollback():
    recent = history(10)
    plan = p1.decide(findings(pods=pods(0, 3, hashes=("old",)), history=recent), SERVICE)

    assert plan.action == "RESTART"
    assert "do not belong to the latest revision" in plan.reason


def test_no_previous_revision_means_no_rollback():
    plan = p1.decide(
        findings(pods=pods(0, 3, {"ImagePullBackOff": 3}), history=history(5, previous=False)), SERVICE
    )

    assert plan.action == "RESTART"


def test_a_critical_dependency_down_escalates_and_leaves_the_deployment_alone():
    deps = finding("FAILED", critical_down=["sales-db"])

    plan = p1.decide(findings(pods=pods(0, 3), history=history(10), dependencies=deps), SERVICE)

    assert plan.action == "ESCALATE"
    assert plan.remaining == []
    assert plan.escalation_reason == "critical dependency down: sales-db"


def test_ready_but_saturated_pods_are_scaled_up_by_the_hpa_formula():
    plan = p1.decide(findings(resources=finding("OK", avg_cpu_utilization=1.0)), SERVICE)

    assert plan.action == "SCALE_UP"
    assert plan.scale_to == 5  # ceil(3 * 1.0 / 0.7)
    assert plan.remaining == ["RESTART"]
    assert plan.budget_seconds == 180


def test_scale_up_is_capped_by_max_replicas_and_dropped_at_the_cap():
    small = SERVICE.model_copy(update={"max_replicas": 4})
    assert p1.decide(findings(resources=finding("OK", avg_cpu_utilization=1.0)), small).scale_to == 4

    at_cap = SERVICE.model_copy(update={"max_replicas": 3})
    plan = p1.decide(findings(resources=finding("OK", avg_cpu_utilization=1.0)), at_cap)
    assert plan.action == "RESTART"
    assert "SCALE_UP" not in plan.remaining


def test_every_check_passing_means_no_action():
    plan = p1.decide(findings(health=finding("OK"), targets=finding("OK")), SERVICE)

    assert plan.action == "NONE"


def test_unreadable_pods_escalate():
    plan = p1.decide(findings(pods=finding("UNAVAILABLE", "check failed: DeploymentNotFound")), SERVICE)

    assert plan.action == "ESCALATE"
    assert "DeploymentNotFound" in plan.reason


def test_the_next_option_is_tried_once_then_the_runbook_escalates():
    first = p1.Plan(action="ROLLBACK", reason="r", remaining=["RESTART"], budget_seconds=300)

    second = p1.next_option(
        first, why_previous_failed="verification failed", elapsed_minutes=6, deadline_minutes=15
    )
    assert (second.action, second.tried, second.remaining) == ("RESTART", ["ROLLBACK"], [])

    third = p1.next_option(
        second, why_previous_failed="verification failed", elapsed_minutes=12, deadline_minutes=15
    )
    assert third.action == "ESCALATE"
    assert third.tried == ["ROLLBACK", "RESTART"]
    assert third.escalation_reason == "every runbook option failed (C ROLLBACK, A RESTART)"


def test_the_escalation_deadline_wins_over_remaining_options():
    plan = p1.Plan(action="RESTART", reason="r", remaining=["SCALE_UP"], scale_to=6)

    nxt = p1.next_option(
        plan, why_previous_failed="rollout failed", elapsed_minutes=15.2, deadline_minutes=15
    )

    assert nxt.action == "ESCALATE"
    assert nxt.escalation_reason == "unresolved after 15 minutes"


@pytest.mark.parametrize(
    ("state", "elapsed", "expected"),
    [("DONE", 30, "OK"), ("WAITING", 30, "WAITING"), ("WAITING", 300, "FAILED"), ("FAILED", 5, "FAILED")],
)
def test_rollout_verdict(state, elapsed, expected):
    verdict = p1.rollout_verdict(state, "msg", elapsed_seconds=elapsed, budget_seconds=300)

    assert verdict.status == expected


def test_verification_needs_health_targets_and_pods():
    good_health = {"ok": True, "status": 200, "url": "u"}
    healthy = [{"state": "healthy"}] * 3
    ready = {"ready": 3, "desired": 3, "waiting_reasons": {}}

    assert p1.verdict(good_health, healthy, ready).status == "OK"
    assert p1.verdict(good_health, None, ready).status == "OK"
    assert p1.verdict({"ok": False, "status": 503, "url": "u"}, healthy, ready).status == "FAILED"
    assert p1.verdict(good_health, [*healthy[:2], {"state": "unhealthy"}], ready).status == "FAILED"
    assert p1.verdict(good_health, [], ready).status == "FAILED"
    assert (
        p1.verdict(good_health, healthy, {"ready": 2, "desired": 3}).summary
        == "not recovered: 2/3 pods ready"
    )
