"""`runbook start|status|list|history` against Step Functions in moto; the stack's outputs through a Stubber.

moto's CloudFormation needs extras this environment does not install, so describe_stacks is stubbed with the
real response and error shapes; Step Functions is moto's, running the definitions for real.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from functions.core import clients
from functions.core.config import load_settings_file
from functions.logic.intake import normalize
from infra.names import output_key, state_machine_name
from runbook import commands_aws
from runbook.cli import main

ROOT = Path(__file__).resolve().parents[2]

STACK = "RunbookAutopilot"
REGION = "us-east-1"
ECHO = json.dumps(
    {
        "StartAt": "Echo the input",
        "States": {"Echo the input": {"Type": "Pass", "ResultPath": "$.echoed", "Result": "ok", "End": True}},
    }
)
FAILING = json.dumps(
    {
        "StartAt": "Give up",
        "States": {"Give up": {"Type": "Fail", "Error": "RolloutStuck", "Cause": "no progress"}},
    }
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto Step Functions with the P1 and maintenance machines, and a stubbed CloudFormation."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        clients.reset_clients()
        sfn = boto3.client("stepfunctions", region_name=REGION)
        role = "arn:aws:iam::123456789012:role/states"
        machines = {
            "p1-service-down": sfn.create_state_machine(
                name=state_machine_name(STACK, "p1-service-down"), definition=ECHO, roleArn=role
            )["stateMachineArn"],
            "db-maintenance": sfn.create_state_machine(
                name=state_machine_name(STACK, "db-maintenance"), definition=FAILING, roleArn=role
            )["stateMachineArn"],
        }
        sfn.create_state_machine(name="SomethingElse-p1-service-down", definition=ECHO, roleArn=role)
        cfn = boto3.client("cloudformation", region_name=REGION)
        stubber = Stubber(cfn)
        real_client = clients.client

        def client(service: str, region_name: str | None = None) -> Any:
            return cfn if service == "cloudformation" else real_client(service, region_name)

        monkeypatch.setattr(commands_aws, "client", client)
        with stubber:
            yield {"sfn": sfn, "machines": machines, "cfn": stubber}
        clients.reset_clients()


def stack_outputs(stubber: Stubber, machines: dict[str, str], times: int = 1) -> None:
    outputs = [{"OutputKey": output_key(name), "OutputValue": arn} for name, arn in machines.items()]
    outputs.append(
        {"OutputKey": "EscalationTopicL1Arn", "OutputValue": "arn:aws:sns:us-east-1:123456789012:t"}
    )
    for _ in range(times):
        stubber.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": STACK,
                        "CreationTime": "2026-12-03T00:00:00Z",
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": outputs,
                    }
                ]
            },
            {"StackName": STACK},
        )


def no_stack(stubber: Stubber, times: int = 1) -> None:
    for _ in range(times):
        stubber.add_client_error(
            "describe_stacks",
            "ValidationError",
            f"Stack with id {STACK} does not exist",
            400,
            {"StackName": STACK},
        )


def finished(sfn: Any, arn: str) -> None:
    """moto runs an execution in a thread: wait (bounded) until it has left RUNNING."""
    deadline = time.monotonic() + 20
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{arn} still running"
        time.sleep(0.05)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--region", REGION])
    out, err = capsys.readouterr()
    return code, out, err


def test_start_finds_the_machine_in_the_stack_outputs_and_sends_the_documented_request(aws, capsys) -> None:
    stack_outputs(aws["cfn"], aws["machines"])
    code, out, _ = run(
        capsys,
        "start",
        "p1-service-down",
        "--service",
        "sales-service",
        "--reason",
        "checkout fails",
        "--json",
    )
    assert code == 0
    started = json.loads(out)
    assert started["executionArn"].startswith(
        aws["machines"]["p1-service-down"].replace(":stateMachine:", ":execution:")
    )
    described = aws["sfn"].describe_execution(executionArn=started["executionArn"])
    sent = json.loads(described["input"])
    assert sent["service"] == "sales-service"
    assert sent["dry_run"] is False
    assert sent["reason"] == "checkout fails"
    assert set(sent) == {"service", "dry_run", "requested_by", "reason"}


def test_the_documented_request_is_what_the_first_step_accepts() -> None:
    settings = load_settings_file(ROOT / "config" / "autopilot.example.yaml")
    request = commands_aws.start_input(
        "p1-service-down", service="sales-service", dry_run=True, reason="drill", requested_by="alice"
    )
    envelope = normalize(
        request, settings, runbook="p1-service-down", severity="P1", now_iso="2026-12-03T09:00:00Z"
    )
    assert envelope.action == "run"
    assert envelope.target is not None and envelope.target.service == "sales-service"
    assert envelope.options.dry_run is True


def test_start_with_an_alarm_event_and_dry_run_marks_the_event(aws, capsys, tmp_path) -> None:
    stack_outputs(aws["cfn"], aws["machines"])
    event = ROOT / "events" / "alarm-sales-service-5xx.json"
    code, out, _ = run(capsys, "start", "p1-service-down", "--input", str(event), "--dry-run", "--json")
    assert code == 0
    sent = json.loads(aws["sfn"].describe_execution(executionArn=json.loads(out)["executionArn"])["input"])
    assert sent["detail-type"] == "CloudWatch Alarm State Change"
    assert sent["autopilot"] == {"dry_run": True}


def test_start_of_maintenance_needs_no_service(aws, capsys) -> None:
    stack_outputs(aws["cfn"], aws["machines"])
    code, out, _ = run(capsys, "start", "db-maintenance", "--dry-run", "--requested-by", "bob", "--json")
    assert code == 0
    assert json.loads(out)["input"] == {"dry_run": True, "requested_by": "bob"}


def test_a_runbook_started_by_alarms_needs_a_service(aws, capsys) -> None:
    code, _, err = run(capsys, "start", "p1-service-down")
    assert code == 2
    assert "give --service NAME" in err


def test_without_the_stack_machines_are_found_by_name(aws, capsys) -> None:
    no_stack(aws["cfn"], times=2)
    code, out, _ = run(capsys, "start", "p1-service-down", "--service", "sales-service", "--name", "drill-1")
    assert code == 0
    assert "drill-1" in out
    arn = aws["machines"]["p1-service-down"].replace(":stateMachine:", ":execution:") + ":drill-1"
    finished(aws["sfn"], arn)
    code, out, _ = run(capsys, "status", "drill-1", "--runbook", "p1-service-down", "--json")
    assert code == 0
    status = json.loads(out)
    assert status["status"] == "SUCCEEDED"
    assert status["runbook"] == "p1-service-down"
    assert status["executionArn"].startswith(
        aws["machines"]["p1-service-down"].replace(":stateMachine:", ":execution:")
    )
    assert status["output"]["echoed"] == "ok"


def test_status_of_a_failed_run_shows_its_error(aws, capsys) -> None:
    started = aws["sfn"].start_execution(
        stateMachineArn=aws["machines"]["db-maintenance"], name="weekly-1", input="{}"
    )
    finished(aws["sfn"], started["executionArn"])
    code, out, _ = run(capsys, "status", started["executionArn"])
    assert code == 0
    assert "FAILED" in out
    assert "RolloutStuck" in out


def test_status_by_name_searches_every_deployed_runbook(aws, capsys) -> None:
    aws["sfn"].start_execution(stateMachineArn=aws["machines"]["db-maintenance"], name="weekly-2", input="{}")
    stack_outputs(aws["cfn"], aws["machines"])
    code, out, _ = run(capsys, "status", "weekly-2", "--json")
    assert code == 0
    assert json.loads(out)["runbook"] == "db-maintenance"


def test_an_unknown_execution_name_is_a_clear_error(aws, capsys) -> None:
    stack_outputs(aws["cfn"], aws["machines"])
    code, _, err = run(capsys, "status", "never-ran")
    assert code == 2
    assert "no execution named 'never-ran'" in err


def test_list_shows_each_deployed_runbook_and_its_executions(aws, capsys) -> None:
    aws["sfn"].start_execution(stateMachineArn=aws["machines"]["p1-service-down"], name="p1-a", input="{}")
    db_a = aws["sfn"].start_execution(
        stateMachineArn=aws["machines"]["db-maintenance"], name="db-a", input="{}"
    )
    finished(aws["sfn"], db_a["executionArn"])
    stack_outputs(aws["cfn"], aws["machines"], times=2)
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    listing = json.loads(out)
    assert set(listing) == {"p1-service-down", "db-maintenance"}
    assert [e["name"] for e in listing["p1-service-down"]["executions"]] == ["p1-a"]
    code, out, _ = run(capsys, "list", "db-maintenance", "--status", "FAILED")
    assert code == 0
    assert "db-maintenance" in out and "db-a" in out and "p1-service-down" not in out


def test_history_lists_the_states_an_execution_went_through(aws, capsys) -> None:
    started = aws["sfn"].start_execution(
        stateMachineArn=aws["machines"]["p1-service-down"], name="h-1", input="{}"
    )
    finished(aws["sfn"], started["executionArn"])
    code, out, _ = run(capsys, "history", started["executionArn"])
    assert code == 0
    assert "ExecutionStarted" in out
    assert "Echo the input" in out
    assert "ExecutionSucceeded" in out


def test_a_runbook_not_deployed_is_named(aws, capsys) -> None:
    only_p1 = {"p1-service-down": aws["machines"]["p1-service-down"]}
    stack_outputs(aws["cfn"], only_p1)
    code, _, err = run(capsys, "start", "db-maintenance")
    assert code == 2
    assert "db-maintenance is not deployed in stack RunbookAutopilot (deployed: p1-service-down)" in err
