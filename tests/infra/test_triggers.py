"""Schedules, alarm routes to a second runbook and extra placeholders, on a fixture catalog."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from functions.core.config import load_settings_file
from infra.names import state_machine_name
from infra.triggers import alarm_pattern, schedule_input
from tests.infra.synth import ROOT, STACK, Synth

SETTINGS = load_settings_file(ROOT / "config" / "autopilot.example.yaml")


def test_weekly_maintenance_runs_sunday_0200_utc(fixture_synth: Synth) -> None:
    machine = fixture_synth.info["machines"]["fixture-db-maintenance"]
    Template.from_json(fixture_synth.template).has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "cron(0 2 ? * SUN *)",
            "ScheduleExpressionTimezone": "Etc/UTC",
            "State": "ENABLED",
            "Target": Match.object_like({"Arn": {"Ref": machine}}),
        },
    )


def test_daily_health_check_runs_0900_utc_with_the_documented_input(fixture_synth: Synth) -> None:
    schedules = fixture_synth.resources("AWS::Scheduler::Schedule").values()
    (daily,) = [
        s["Properties"] for s in schedules if s["Properties"]["ScheduleExpression"] == "cron(0 9 * * ? *)"
    ]
    assert daily["ScheduleExpressionTimezone"] == "Etc/UTC"
    assert daily["Target"]["Arn"] == {"Ref": fixture_synth.info["machines"]["fixture-daily-health-check"]}
    started_with = json.loads(daily["Target"]["Input"])
    assert started_with == schedule_input("daily_health_check", "fixture-daily-health-check")
    assert started_with["detail-type"] == "Scheduled Event"
    assert started_with["time"] == "<aws.scheduler.scheduled-time>"


def test_the_maintenance_start_step_accepts_what_the_schedule_sends() -> None:
    from datetime import UTC, datetime

    from functions.logic.db_maintenance import normalize_start

    due = "2026-12-06T02:00:00Z"
    event = json.loads(
        json.dumps(schedule_input("db_maintenance", "db-maintenance")).replace(
            "<aws.scheduler.scheduled-time>", due
        )
    )
    state = normalize_start(event, SETTINGS, datetime(2026, 12, 6, 2, 0, 5, tzinfo=UTC))
    assert state["envelope"]["trigger"]["kind"] == "schedule"
    assert state["window"]["started_at"].startswith("2026-12-06T02:00:00")


def test_the_real_app_schedules_only_runbooks_it_deploys(app_synth: Synth) -> None:
    from functions.catalog import RUNBOOKS

    scheduled = [
        name
        for name in app_synth.info["runbooks"]
        if any(t.startswith("schedule:") for t in RUNBOOKS[name].triggers)
    ]
    assert len(app_synth.resources("AWS::Scheduler::Schedule")) == sum(
        1 for name in scheduled for t in RUNBOOKS[name].triggers if t.startswith("schedule:")
    )


def test_the_error_rate_alarm_starts_p2_once_p2_is_deployed(fixture_synth: Synth) -> None:
    rules = fixture_synth.resources("AWS::Events::Rule").values()
    p2 = fixture_synth.info["machines"]["p2-high-error-rate"]
    for service in SETTINGS.services:
        name = SETTINGS.sla_alarm_names(service)["error-rate"]
        (rule,) = [r["Properties"] for r in rules if r["Properties"]["EventPattern"] == alarm_pattern([name])]
        assert rule["Targets"][0]["Arn"] == {"Ref": p2}
        alarm = next(
            a["Properties"]
            for a in fixture_synth.resources("AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("AlarmName") == name
        )
        assert "AlarmActions" not in alarm


def test_an_extra_placeholder_is_substituted_and_granted(fixture_synth: Synth) -> None:
    machines = fixture_synth.resources("AWS::StepFunctions::StateMachine")
    machine = machines[fixture_synth.info["machines"]["fixture-db-maintenance"]]["Properties"]
    l2 = fixture_synth.info["topics"]["L2"]
    assert machine["DefinitionSubstitutions"]["TopicArnL2"] == {"Ref": l2}
    assert machine["StateMachineName"] == state_machine_name(STACK, "fixture-db-maintenance")
    role = machine["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in fixture_synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    publish = [s for s in statements if s["Action"] == "sns:Publish"]
    assert [s["Resource"] for s in publish] == [{"Ref": l2}]


def test_without_a_vpc_no_function_is_placed_and_synth_warns(fixture_synth: Synth) -> None:
    for function in fixture_synth.resources("AWS::Lambda::Function").values():
        assert "VpcConfig" not in function["Properties"]
    metadata = json.loads((fixture_synth.out / f"{STACK}.metadata.json").read_text())
    warnings = [e["data"] for entries in metadata.values() for e in entries if e["type"] == "aws:cdk:warning"]
    assert any("No vpcId in context" in str(w) for w in warnings)


def test_a_lock_step_gets_the_lock_table_and_only_item_rights_on_it(fixture_synth: Synth) -> None:
    (table_id,) = fixture_synth.resources("AWS::DynamoDB::Table")
    table = fixture_synth.template["Resources"][table_id]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "target", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    function = fixture_synth.resources("AWS::Lambda::Function")[
        fixture_synth.info["functions"]["FixtureTakeLock"]
    ]
    assert function["Properties"]["Environment"]["Variables"]["LOCK_TABLE"] == {"Ref": table_id}
    role = fixture_synth.info["roles"]["FixtureTakeLock"]
    statements = [
        s
        for p in fixture_synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if str(s["Action"]).count("dynamodb:")
    ]
    assert statements == [
        {
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
        }
    ]
    normalize = fixture_synth.resources("AWS::Lambda::Function")[
        fixture_synth.info["functions"]["NormalizeInput"]
    ]
    assert "LOCK_TABLE" not in normalize["Properties"]["Environment"]["Variables"]
