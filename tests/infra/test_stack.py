"""The synthesized template of the real app: functions, state machines, roles, topics, alarms, triggers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from functions.catalog import RUNBOOKS, STEPS
from functions.core.config import load_settings_file
from infra.escalation import LEVELS, topic_env_var
from infra.names import KUBERNETES_GROUP, output_key, state_machine_name
from infra.runbook_machine import placeholders_in
from infra.stack import deployed_runbooks
from infra.triggers import alarm_pattern
from tests.infra.synth import ROOT, STACK, Synth

SETTINGS = load_settings_file(ROOT / "config" / "autopilot.example.yaml")


@pytest.fixture(scope="module")
def template(app_synth: Synth) -> Template:
    return Template.from_json(app_synth.template)


def statements(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to a role."""
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def resources_of(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def definition_text(machine: dict[str, Any]) -> str:
    definition = machine["Properties"]["DefinitionString"]
    return definition if isinstance(definition, str) else "".join(definition["Fn::Join"][1])


# --- functions ---------------------------------------------------------------------------------------


def test_the_app_deploys_every_runbook_whose_asl_file_exists(app_synth: Synth) -> None:
    assert app_synth.info["runbooks"] == [runbook.name for runbook in deployed_runbooks()]
    assert "p1-service-down" in app_synth.info["runbooks"]


def test_one_function_per_step_with_the_shared_runtime_settings(app_synth: Synth) -> None:
    functions = app_synth.resources("AWS::Lambda::Function")
    steps = {s for name in app_synth.info["runbooks"] for s in RUNBOOKS[name].steps}
    assert set(app_synth.info["functions"]) == steps
    assert len(functions) == len(steps)
    for step, logical_id in app_synth.info["functions"].items():
        props = functions[logical_id]["Properties"]
        assert props["Handler"] == STEPS[step].handler
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert props["Timeout"] == STEPS[step].timeout_seconds
        assert props["MemorySize"] == STEPS[step].memory_mb
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "runbook-autopilot"
        assert props["Role"] == {"Fn::GetAtt": [app_synth.info["roles"][step], "Arn"]}


def test_every_function_runs_a_handler_that_exists(app_synth: Synth) -> None:
    import importlib.util

    for step in app_synth.info["functions"]:
        module, _, function = STEPS[step].handler.rpartition(".")
        assert importlib.util.find_spec(module) is not None, STEPS[step].handler
        assert function == "lambda_handler"


def test_every_function_has_its_own_role(app_synth: Synth) -> None:
    roles = list(app_synth.info["roles"].values())
    assert len(set(roles)) == len(roles)


def test_publishing_steps_get_the_topic_arns_and_nothing_else_does(app_synth: Synth) -> None:
    functions = app_synth.resources("AWS::Lambda::Function")
    for step, logical_id in app_synth.info["functions"].items():
        variables = functions[logical_id]["Properties"]["Environment"]["Variables"]
        expected = {topic_env_var(level) for level in LEVELS} if "sns:publish" in STEPS[step].aws else set()
        assert {name for name in variables if name.startswith("TOPIC_ARN_")} == expected, step
        for level in LEVELS if expected else ():
            assert variables[topic_env_var(level)] == {"Ref": app_synth.info["topics"][level]}


def test_functions_that_reach_rds_or_the_private_eks_endpoint_run_in_the_vpc(app_synth: Synth) -> None:
    functions = app_synth.resources("AWS::Lambda::Function")
    for step, logical_id in app_synth.info["functions"].items():
        vpc_config = functions[logical_id]["Properties"].get("VpcConfig")
        if STEPS[step].database or STEPS[step].kubernetes:
            assert vpc_config["SubnetIds"] == ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"], step
            assert len(vpc_config["SecurityGroupIds"]) == 1
        else:
            assert vpc_config is None, step


# --- roles -------------------------------------------------------------------------------------------

XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
ENI = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
# Actions whose API accepts no narrower resource than * (each justified in infra/).
STAR_OK = (
    XRAY
    | ENI
    | {
        "elasticloadbalancing:DescribeTargetHealth",
        "cloudwatch:GetMetricData",
        "cloudwatch:DescribeAlarms",
    }
)


def test_a_star_resource_only_for_apis_that_accept_nothing_narrower(app_synth: Synth) -> None:
    for step, role in app_synth.info["roles"].items():
        for statement in statements(app_synth, role):
            if "*" in resources_of(statement):
                assert set(actions_of(statement)) <= STAR_OK, (step, statement)


def test_each_role_holds_exactly_what_its_step_needs(app_synth: Synth) -> None:
    expected_by_need = {
        "elb:read": {"elasticloadbalancing:DescribeTargetHealth"},
        "eks:describe": {"eks:DescribeCluster"},
        "sns:publish": {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"},
        "secrets:read": {"secretsmanager:GetSecretValue"},
        "rds:read": {"rds:DescribeDBInstances", "rds:DescribeDBSnapshots"},
        "s3:write-reports": {"s3:PutObject"},
        "cloudwatch:read": {"cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"},
        "dynamodb:lock": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        },
    }
    for step, role in app_synth.info["roles"].items():
        actions = {a for s in statements(app_synth, role) for a in actions_of(s)}
        expected = {"logs:CreateLogStream", "logs:PutLogEvents"} | XRAY
        for need in STEPS[step].aws:
            expected |= expected_by_need[need]
        if STEPS[step].database or STEPS[step].kubernetes:
            expected |= ENI
        assert actions == expected, step


def test_scoped_statements_name_the_configured_resources(app_synth: Synth) -> None:
    def resources_for(step: str, action: str) -> list[Any]:
        return [
            r
            for s in statements(app_synth, app_synth.info["roles"][step])
            if action in actions_of(s)
            for r in resources_of(s)
        ]

    secret = SETTINGS.databases["sales-db"].secret_arn
    assert resources_for("CheckDependencies", "secretsmanager:GetSecretValue") == [secret]
    (cluster,) = resources_for("CheckPods", "eks:DescribeCluster")
    assert json.dumps(cluster).endswith(':cluster/prod-eks"]]}')
    topics = resources_for("Escalate", "sns:Publish")
    assert sorted(t["Ref"] for t in topics) == sorted(app_synth.info["topics"].values())
    (key,) = resources_for("Escalate", "kms:GenerateDataKey")
    assert key["Fn::GetAtt"][1] == "Arn"


# --- state machines ----------------------------------------------------------------------------------


def test_every_placeholder_of_every_asl_file_is_substituted_by_a_step_function(app_synth: Synth) -> None:
    machines = app_synth.resources("AWS::StepFunctions::StateMachine")
    for name, logical_id in app_synth.info["machines"].items():
        props = machines[logical_id]["Properties"]
        text = app_synth.info["asl_texts"][name]
        assert definition_text(machines[logical_id]) == text  # inline, unchanged
        substitutions = props["DefinitionSubstitutions"]
        assert set(substitutions) == placeholders_in(text), name
        for placeholder, value in substitutions.items():
            step = placeholder.removesuffix("FunctionArn")
            assert value == {"Fn::GetAtt": [app_synth.info["functions"][step], "Arn"]}, placeholder


def _lambda_tasks(definition: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = []
    for state in definition["States"].values():
        if state["Type"] == "Task" and "lambda" in state["Resource"]:
            tasks.append(state)
        for branch in state.get("Branches", []) + (
            [state["ItemProcessor"]] if "ItemProcessor" in state else []
        ):
            tasks += _lambda_tasks(branch)
    return tasks


def test_every_lambda_task_calls_a_function_the_stack_creates(app_synth: Synth) -> None:
    machines = app_synth.resources("AWS::StepFunctions::StateMachine")
    functions = app_synth.resources("AWS::Lambda::Function")
    for name, logical_id in app_synth.info["machines"].items():
        substitutions = machines[logical_id]["Properties"]["DefinitionSubstitutions"]
        tasks = _lambda_tasks(json.loads(app_synth.info["asl_texts"][name]))
        assert tasks, name
        for task in tasks:
            target = task.get("Parameters", {}).get("FunctionName", task["Resource"])
            (placeholder,) = placeholders_in(target)
            assert substitutions[placeholder]["Fn::GetAtt"][0] in functions


def test_state_machines_log_everything_with_execution_data_and_trace(
    template: Template, app_synth: Synth
) -> None:
    for name in app_synth.info["runbooks"]:
        template.has_resource_properties(
            "AWS::StepFunctions::StateMachine",
            {
                "StateMachineName": state_machine_name(STACK, name),
                "LoggingConfiguration": {
                    "Level": "ALL",
                    "IncludeExecutionData": True,
                    "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": Match.any_value()}}],
                },
                "TracingConfiguration": {"Enabled": True},
            },
        )


def test_a_machine_role_invokes_exactly_the_functions_its_asl_calls(app_synth: Synth) -> None:
    machines = app_synth.resources("AWS::StepFunctions::StateMachine")
    for name, logical_id in app_synth.info["machines"].items():
        role = machines[logical_id]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        invoked = [
            r
            for s in statements(app_synth, role)
            if "lambda:InvokeFunction" in actions_of(s)
            for r in resources_of(s)
        ]
        called = set(placeholders_in(app_synth.info["asl_texts"][name]))
        assert sorted(r["Fn::GetAtt"][0] for r in invoked) == sorted(
            app_synth.info["functions"][p.removesuffix("FunctionArn")] for p in called
        )


def test_the_stack_outputs_each_machine_arn_for_the_cli(app_synth: Synth) -> None:
    outputs = app_synth.template["Outputs"]
    for name, logical_id in app_synth.info["machines"].items():
        assert outputs[output_key(name)]["Value"] == {"Ref": logical_id}


def test_a_failed_timed_out_or_aborted_run_alarms_l2(app_synth: Synth) -> None:
    alarms = app_synth.resources("AWS::CloudWatch::Alarm")
    for name, logical_id in app_synth.info["machines"].items():
        (alarm,) = [
            a for a in alarms.values() if a["Properties"].get("AlarmName", "").endswith(f"{name}-run-failed")
        ]
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": app_synth.info["topics"]["L2"]}]
        metrics = {m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m}
        assert metrics == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
        for m in props["Metrics"]:
            if "MetricStat" in m:
                assert m["MetricStat"]["Metric"]["Dimensions"] == [
                    {"Name": "StateMachineArn", "Value": {"Ref": logical_id}}
                ]
        assert props["Threshold"] == 1
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


# --- escalation --------------------------------------------------------------------------------------


def test_one_kms_encrypted_topic_per_level(template: Template, app_synth: Synth) -> None:
    topics = app_synth.resources("AWS::SNS::Topic")
    assert len(topics) == len(LEVELS)
    (key_id,) = app_synth.resources("AWS::KMS::Key")
    for topic in topics.values():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_cloudwatch_alarms_may_publish_to_every_topic_and_only_over_tls(app_synth: Synth) -> None:
    policies = list(app_synth.resources("AWS::SNS::TopicPolicy").values())
    for level, topic in app_synth.info["topics"].items():
        (policy,) = [p["Properties"] for p in policies if p["Properties"]["Topics"] == [{"Ref": topic}]]
        statements = policy["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Allow"
            and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
            and s["Action"] == "sns:Publish"
            and "aws:SourceAccount" in s["Condition"]["StringEquals"]
            for s in statements
        ), level
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_subscriptions_come_from_the_configured_contacts(app_synth: Synth) -> None:
    subscriptions = app_synth.resources("AWS::SNS::Subscription").values()
    got = sorted(
        (s["Properties"]["TopicArn"]["Ref"], s["Properties"]["Protocol"], s["Properties"]["Endpoint"])
        for s in subscriptions
    )
    expected = []
    for level, endpoints in SETTINGS.escalation.contacts.items():
        for endpoint in endpoints:
            protocol = "email" if endpoint.startswith("email:") else "https"
            expected.append((app_synth.info["topics"][level], protocol, endpoint.removeprefix("email:")))
    assert got == sorted(expected)


# --- alarms and triggers -----------------------------------------------------------------------------


def _alarm(app_synth: Synth, name: str) -> dict[str, Any]:
    (alarm,) = [
        a["Properties"]
        for a in app_synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == name
    ]
    return alarm


def test_sla_alarms_per_service_with_the_runbook_books_thresholds(app_synth: Synth) -> None:
    for service in SETTINGS.services:
        names = SETTINGS.sla_alarm_names(service)
        availability = _alarm(app_synth, names["availability"])
        assert (availability["Threshold"], availability["ComparisonOperator"]) == (99.9, "LessThanThreshold")
        used = {m["Id"]: m["MetricStat"] for m in availability["Metrics"] if "MetricStat" in m}
        assert used["healthy"]["Metric"]["MetricName"] == "HealthyHostCount"
        assert used["healthy"]["Stat"] == "Minimum"
        assert used["t5xx"]["Metric"]["MetricName"] == "HTTPCode_Target_5XX_Count"
        error_rate = _alarm(app_synth, names["error-rate"])
        assert (error_rate["Threshold"], error_rate["ComparisonOperator"]) == (5, "GreaterThanThreshold")
        latency = _alarm(app_synth, names["latency"])
        assert (latency["Threshold"], latency["ExtendedStatistic"]) == (1, "p95")
        objective = _alarm(app_synth, names["latency-objective"])
        assert (objective["Threshold"], objective["ExtendedStatistic"]) == (0.5, "p95")
        tg = str(SETTINGS.services[service].target_group_arn).split(":")[-1]
        assert {"Name": "TargetGroup", "Value": tg} in latency["Dimensions"]


def test_sla_alarms_without_a_deployed_runbook_notify_their_topic(app_synth: Synth) -> None:
    topics = app_synth.info["topics"]
    for service in SETTINGS.services:
        names = SETTINGS.sla_alarm_names(service)
        # P1 is deployed: its alarm starts it through EventBridge and pages nobody directly.
        assert "AlarmActions" not in _alarm(app_synth, names["availability"])
        assert _alarm(app_synth, names["latency-objective"])["AlarmActions"] == [{"Ref": topics["L1"]}]
        for kind in ("error-rate", "latency"):  # until P2 / P3 are deployed
            if "p2-high-error-rate" not in app_synth.info["runbooks"] or kind == "latency":
                assert _alarm(app_synth, names[kind])["AlarmActions"] == [{"Ref": topics["L2"]}], kind


def test_each_services_alarms_going_to_alarm_start_p1_with_the_event(app_synth: Synth) -> None:
    rules = app_synth.resources("AWS::Events::Rule")
    p1 = app_synth.info["machines"]["p1-service-down"]
    for service, config in SETTINGS.services.items():
        expected = alarm_pattern([*config.alarms, SETTINGS.sla_alarm_names(service)["availability"]])
        (rule,) = [r["Properties"] for r in rules.values() if r["Properties"]["EventPattern"] == expected]
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Ref": p1}
        assert "Input" not in target and "InputPath" not in target and "InputTransformer" not in target
        assert rule["State"] == "ENABLED"


def test_the_sample_alarm_events_match_the_p1_rule_and_an_ok_event_does_not(app_synth: Synth) -> None:
    from moto.events.models import EventPattern

    (pattern,) = [
        r["Properties"]["EventPattern"]
        for r in app_synth.resources("AWS::Events::Rule").values()
        if "sales-service-5xx" in r["Properties"]["EventPattern"]["detail"]["alarmName"]
    ]
    matcher = EventPattern.load(json.dumps(pattern))
    events = ROOT / "events"
    assert matcher.matches_event(json.loads((events / "alarm-sales-service-5xx.json").read_text()))
    assert matcher.matches_event(json.loads((events / "alarm-sales-service-down-composite.json").read_text()))
    assert not matcher.matches_event(json.loads((events / "alarm-sales-service-5xx-ok.json").read_text()))


# --- Kubernetes access -------------------------------------------------------------------------------


def test_kubernetes_steps_map_to_the_rbac_group_on_each_cluster(app_synth: Synth) -> None:
    entries = app_synth.resources("AWS::EKS::AccessEntry").values()
    got = sorted(
        (e["Properties"]["ClusterName"], e["Properties"]["PrincipalArn"]["Fn::GetAtt"][0]) for e in entries
    )
    clusters = sorted({s.cluster for s in SETTINGS.services.values()})
    kube_steps = [s for s in app_synth.info["roles"] if STEPS[s].kubernetes]
    assert got == sorted((c, app_synth.info["roles"][s]) for c in clusters for s in kube_steps)
    for entry in entries:
        assert entry["Properties"]["KubernetesGroups"] == [KUBERNETES_GROUP]
        assert entry["Properties"]["Type"] == "STANDARD"
