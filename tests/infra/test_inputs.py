"""Bad configuration, bad context and bad ASL stop the synth with a message naming what is wrong."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from functions.catalog import RUNBOOKS, Runbook
from functions.core.config import parse_settings
from functions.core.errors import ConfigurationError
from infra.runbook_machine import UnknownPlaceholder, substitutions_for
from tests.infra.synth import FIXTURES, ROOT

EXAMPLE = ROOT / "config" / "autopilot.example.yaml"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def build_with(context: dict, tmp_path: Path) -> None:
    import aws_cdk as cdk

    from infra.app import build

    build(cdk.App(context={"aws:cdk:bundling-stacks": [], **context}, outdir=str(tmp_path)), nag=False)


def test_the_app_refuses_an_invalid_configuration_naming_the_field(tmp_path: Path) -> None:
    """End to end, as `make synth -c config=...` runs it: exit 1 and the field's path on stderr."""
    bad = FIXTURES / "bad-namespace.yaml"
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "-c", f"config={bad}", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "synth failed:" in result.stderr
    assert "bad-namespace.yaml" in result.stderr
    assert "services.sales-service.namespace: " in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c["schedules"].update(db_maintenance="cron(0 2 * * SUN *)"), "schedules.db_maintenance"),
        (lambda c: c["schedules"].update(daily_health_check="rate(1 day"), "schedules.daily_health_check"),
        (lambda c: c["sla"].update(availability_percent=120), "sla.availability_percent"),
        (lambda c: c["escalation"]["contacts"].update(L2=["pager@example.test"]), "escalation.contacts"),
        (
            lambda c: c["services"]["sales-service"].update(cluster="Prod_EKS"),
            "services.sales-service.cluster",
        ),
        (
            lambda c: c["services"]["sales-service"].update(alarms=["x" * 300]),
            "services.sales-service.alarms.0",
        ),
        (
            lambda c: c["services"]["sales-service"].update(unknown_key=1),
            "services.sales-service.unknown_key",
        ),
    ],
)
def test_each_bad_field_is_named(change, field: str) -> None:
    config = example()
    change(config)
    with pytest.raises(ConfigurationError, match=re.escape(f"{field}: ")):
        parse_settings(config)


def test_a_load_balancer_arn_that_is_not_an_alb_is_named(tmp_path: Path) -> None:
    config = example()
    config["services"]["sales-service"]["load_balancer_arn"] = "arn:aws:elasticloadbalancing:us-east-1:1:lb"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigurationError, match=r"services\.sales-service\.load_balancer_arn: "):
        build_with({"config": str(path)}, tmp_path / "out")


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"vpcId": "vpc-0123456789abcdef0"}, "vpcPrivateSubnetIds"),
        (
            {"vpcId": "vpc-0123456789abcdef0", "vpcPrivateSubnetIds": "subnet-0aaaaaaaaaaaaaaa1"},
            "vpcAvailabilityZones",
        ),
        ({"vpcId": "my-vpc"}, "vpcId"),
        ({"logRetentionDays": "45"}, "logRetentionDays"),
        ({"eksEndpointPrivate": "maybe"}, "eksEndpointPrivate"),
        ({"config": "config/missing.yaml"}, "config"),
    ],
)
def test_bad_context_is_named(context: dict, key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=rf"context {key}: "):
        build_with(context, tmp_path)


def test_context_lists_may_be_json_or_comma_separated() -> None:
    import aws_cdk as cdk

    from infra.deploy_context import DeployContext

    app = cdk.App(
        context={
            "vpcId": "vpc-0123456789abcdef0",
            "vpcPrivateSubnetIds": "subnet-0aaaaaaaaaaaaaaa1, subnet-0bbbbbbbbbbbbbbb2",
            "vpcAvailabilityZones": '["us-east-1a", "us-east-1b"]',
        }
    )
    vpc = DeployContext.from_node(app.node).vpc
    assert vpc is not None
    assert vpc.subnet_ids == ("subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2")
    assert vpc.availability_zones == ("us-east-1a", "us-east-1b")


def test_an_unknown_asl_placeholder_fails_naming_file_placeholder_and_runbook() -> None:
    text = (FIXTURES / "statemachines" / "fixture_unknown_placeholder.asl.json").read_text()
    runbook = Runbook("fixture", "fixture_unknown_placeholder.asl.json", "Fixture", ("NormalizeInput",), 5)
    with pytest.raises(UnknownPlaceholder) as caught:
        substitutions_for(runbook, text, {}, {}, source="statemachines/fixture_unknown_placeholder.asl.json")
    message = str(caught.value)
    assert "statemachines/fixture_unknown_placeholder.asl.json" in message
    assert "${NotAStepFunctionArn}" in message
    assert "'fixture'" in message


def test_an_extra_placeholder_must_be_declared_by_the_runbook() -> None:
    from infra.runbook_machine import ExtraPlaceholder

    text = '{"x": "${TopicArnL2}"}'
    undeclared = Runbook("fixture", "f.asl.json", "Fixture", (), 5)
    with pytest.raises(UnknownPlaceholder):
        substitutions_for(undeclared, text, {}, {"TopicArnL2": ExtraPlaceholder("arn")}, source="f")
    declared = Runbook("fixture", "f.asl.json", "Fixture", (), 5, extra_placeholders=("TopicArnL2",))
    substitutions, called, _ = substitutions_for(
        declared, text, {}, {"TopicArnL2": ExtraPlaceholder("arn")}, source="f"
    )
    assert (substitutions, called) == ({"TopicArnL2": "arn"}, [])


def test_the_example_configuration_is_valid_and_maps_the_sample_alarms() -> None:
    settings = parse_settings(example())
    assert settings.service_for_alarm("sales-service-5xx") == "sales-service"
    assert (
        settings.service_for_alarm(settings.sla_alarm_names("sales-service")["availability"])
        == "sales-service"
    )
    assert "p1-service-down" in RUNBOOKS


def test_the_documented_start_inputs_are_accepted_by_the_first_step() -> None:
    """docs/deploy.md's `aws stepfunctions start-execution --input` and events/manual-sales-service.json."""
    import json

    from functions.logic.intake import normalize

    settings = parse_settings(example())
    docs = (ROOT / "docs" / "deploy.md").read_text()
    (documented,) = re.findall(r"--input '(\{.*?\})'", docs)
    for request in (
        json.loads(documented),
        json.loads((ROOT / "events" / "manual-sales-service.json").read_text()),
    ):
        envelope = normalize(
            request, settings, runbook="p1-service-down", severity="P1", now_iso="2026-12-03T09:00:00Z"
        )
        assert envelope.action == "run"
        assert envelope.target is not None and envelope.target.service == "sales-service"


def test_an_asl_file_without_a_run_timeout_within_the_budget_is_refused() -> None:
    from infra.runbook_machine import DefinitionError, check_definition

    runbook = Runbook("fixture", "f.asl.json", "Fixture", (), 5)
    check_definition(runbook, '{"TimeoutSeconds": 300, "StartAt": "a", "States": {}}', source="f")
    for text in ('{"StartAt": "a"}', '{"TimeoutSeconds": 301}', "{not json"):
        with pytest.raises(DefinitionError, match=r"^f: "):
            check_definition(runbook, text, source="f")
