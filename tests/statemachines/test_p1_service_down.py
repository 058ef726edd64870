"""P1 "Service Completely Down" end-to-end: the ASL file on moto's interpreter, the real handlers, the
cluster simulator and a real PostgreSQL. Each test states the world and asserts the path taken, the exact
Kubernetes writes and the SNS messages sent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runbook.sandbox.runtime import Run, Sandbox
from runbook.sandbox.scenarios import load_scenario

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

EVENTS = Path(__file__).resolve().parents[2] / "events"
DEPLOYMENT = "/apis/apps/v1/namespaces/production/deployments/sales-service"
SCALE = 40.0  # simulated seconds per real second: rollouts take seconds, moto's own overhead stays small


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="module")
def sandbox():
    """One sandbox for the module; each test loads its scenario's world into it (a clean record each time)."""
    with Sandbox(load_scenario("healthy"), scale=SCALE) as box:
        yield box


@pytest.fixture
def run(sandbox):
    def run_scenario(scenario: str, payload: dict | None = None) -> tuple[Run, list[dict]]:
        sandbox.load(load_scenario(scenario))
        result = sandbox.run("p1-service-down", payload or event("alarm-sales-service-5xx.json"))
        writes = [{"verb": m["verb"], "path": m["path"]} for m in sandbox.kube.mutations]
        return result, writes

    return run_scenario


def statuses(result: Run) -> list[tuple[str, str]]:
    """(level, status word) of every message, in order."""
    out = []
    for message in result.messages:
        match = re.match(r"\[(\w+)(?: (L\d))?\]", message.subject)
        assert match, message.subject
        out.append((message.level, match.group(1)))
    return out


def test_bad_deploy_is_rolled_back_and_resolved(run):
    result, writes = run("bad-deploy")

    assert result.status == "SUCCEEDED"
    assert result.output["outcome"] == "RESOLVED"
    entered = result.states_entered
    assert "Roll back the deployment" in entered
    assert "Restart the deployment" not in entered and "Scale up the deployment" not in entered
    assert entered[-3:] == ["Announce the resolution", "Incident resolved", "Release the target's lock"]
    assert writes == [{"verb": "PATCH", "path": DEPLOYMENT}]
    change = result.output["change"]
    assert change["status"] == "CHANGED"
    assert change["details"]["before"]["revision"] == 2
    assert "v2.1.0" in json.dumps(change["details"]["after"])
    assert statuses(result) == [
        ("L1", "INVESTIGATING"),
        ("L1", "IDENTIFIED"),
        ("L1", "MONITORING"),
        ("L1", "RESOLVED"),
    ]
    resolved = result.messages[-1].body
    assert "Status: RESOLVED" in resolved and "Start Time: 2026-12-03T09:41:07Z" in resolved


def test_stuck_pods_are_restarted(run):
    result, writes = run("stuck-pods")

    assert result.output["outcome"] == "RESOLVED"
    assert "Restart the deployment" in result.states_entered
    assert "Roll back the deployment" not in result.states_entered
    assert writes == [{"verb": "PATCH", "path": DEPLOYMENT}]
    assert result.output["change"]["details"]["action"] == "restart"


def test_capacity_shortage_is_scaled_up_within_the_maximum(run):
    result, writes = run("capacity")

    assert result.output["outcome"] == "RESOLVED"
    assert "Scale up the deployment" in result.states_entered
    assert writes == [{"verb": "PATCH", "path": DEPLOYMENT + "/scale"}]
    change = result.output["change"]["details"]
    assert change["before"]["replicas"] == 3
    assert 3 < change["after"]["replicas"] <= 10


def test_database_down_changes_nothing_and_escalates(run):
    result, writes = run("database-down")

    assert result.output["outcome"] == "ESCALATED"
    assert writes == []
    # each topic keeps its order; across topics there is none (SNS fans out to separate queues)
    assert statuses(result) == [("L1", "INVESTIGATING"), ("L1", "INVESTIGATING"), ("L2", "ESCALATION")]
    page = result.messages[-1]
    assert "critical dependency down: sales-db" in page.subject
    assert "Options tried: none" in page.body


def test_unfixable_tries_each_option_once_then_escalates(run):
    result, writes = run("unfixable")

    assert result.output["outcome"] == "ESCALATED"
    entered = result.states_entered
    assert entered.count("Roll back the deployment") == 1
    assert entered.count("Restart the deployment") == 1
    assert writes == [{"verb": "PATCH", "path": DEPLOYMENT}, {"verb": "PATCH", "path": DEPLOYMENT}]
    assert statuses(result)[-2:] == [("L1", "INVESTIGATING"), ("L2", "ESCALATION")]
    assert "Options tried: ROLLBACK, RESTART" in result.messages[-1].body
    handover = result.messages[-2].body  # the incident channel hears who owns the incident now
    assert "- Escalated to L2:" in handover and "Next Update: from L2, who now leads the incident" in handover


def test_healthy_service_gets_a_report_and_no_change(run):
    result, writes = run("healthy")

    assert result.output["outcome"] == "NO_ACTION"
    assert writes == []
    assert statuses(result) == [("L1", "INVESTIGATING"), ("L1", "MONITORING")]
    final = result.messages[-1].body
    assert "Every check passes" in final
    assert "User Impact: None observed now: every check passes." in final
    assert "Next Update: none planned: this run has ended" in final


def test_dry_run_investigates_for_real_and_changes_and_sends_nothing(run):
    result, writes = run(
        "bad-deploy", event("alarm-sales-service-5xx.json") | {"autopilot": {"dry_run": True}}
    )

    assert result.output["outcome"] == "DRY_RUN"
    assert writes == []
    assert result.messages == []
    assert result.output["change"]["status"] == "DRY_RUN"
    assert result.output["findings"]["pods"]["details"]["waiting_reasons"] == {"CrashLoopBackOff": 3}


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("alarm-sales-service-5xx-ok.json", "went to OK"),
        ("alarm-sales-service-5xx-realarm.json", "re-notification"),
    ],
)
def test_alarm_states_that_need_no_action_end_quietly(run, name, why):
    result, writes = run("healthy", event(name))

    assert result.status == "SUCCEEDED"
    assert result.states_entered[-1] == "No action for this alarm state"
    assert why in result.output["intake"]["summary"]
    assert writes == [] and result.messages == []


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (
            {"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "detail": {}},
            "InvalidInput",
        ),
        ({"service": "sales-service; kubectl delete ns production"}, "InvalidInput"),
        ({"service": "sales'); DROP TABLE sales;--"}, "InvalidInput"),
        ({"service": "billing-service"}, "UnknownService"),
    ],
)
def test_bad_input_ends_in_a_named_error_with_nothing_changed(run, payload, error):
    result, writes = run("bad-deploy", payload)

    assert result.status == "FAILED"
    assert result.error == error
    assert writes == [] and result.messages == []


def test_composite_alarm_runs_the_runbook(run):
    result, _ = run("healthy", event("alarm-sales-service-down-composite.json"))

    assert result.output["outcome"] == "NO_ACTION"
    assert result.output["envelope"]["trigger"]["source"] == "sales-service-down"


def test_a_second_alarm_while_a_run_is_active_is_deduplicated(sandbox):
    """The composite alarm fires seconds after the metric alarm it watches: one run acts, the other ends."""
    from functions.adapters import locks

    sandbox.load(load_scenario("bad-deploy"))
    first = sandbox.start("p1-service-down", event("alarm-sales-service-5xx.json"), name="first")
    events = sandbox.watch(first)
    for item in events:  # wait until the first run holds the lock
        if item.get("stateExitedEventDetails", {}).get("name") == "Take the target's lock":
            break
    second = sandbox.run("p1-service-down", event("alarm-sales-service-down-composite.json"))
    list(events)  # let the first run finish
    writes = [(m["verb"], m["path"]) for m in sandbox.kube.mutations]

    assert second.status == "SUCCEEDED"
    assert second.output["outcome"] == "DEDUPLICATED"
    assert "locked by" in second.output["duplicate"]["Cause"]
    assert writes == [("PATCH", DEPLOYMENT)]  # one rollback, not two
    assert locks.holder("prod-eks/production/sales-service") is None  # released at the end of the first run


def test_dry_run_takes_no_lock(run):
    from functions.adapters import locks

    result, _ = run("healthy", event("alarm-sales-service-5xx.json") | {"autopilot": {"dry_run": True}})

    assert result.output["lock"]["status"] == "SKIPPED"
    assert locks.holder("prod-eks/production/sales-service") is None
