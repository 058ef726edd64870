"""One runbook as a state machine: its ASL file inline, every ``${Placeholder}`` substituted, invokes granted
for exactly the functions the file calls, logging (ALL, with execution data) and X-Ray on, and an alarm to
L2 when a run fails, times out or is aborted."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.catalog import STEPS, Runbook
from functions.core.errors import ConfigurationError
from infra.nag import acknowledge

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class UnknownPlaceholder(ConfigurationError):
    """An ASL file names a placeholder the app cannot fill."""


class DefinitionError(ConfigurationError):
    """An ASL file the app cannot deploy as it is."""


def check_definition(runbook: Runbook, text: str, *, source: str) -> None:
    """The file is JSON and bounds the whole run by the runbook's time budget (a top-level TimeoutSeconds:
    CDK's ``timeout`` cannot reach into an inline definition)."""
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as error:
        raise DefinitionError(f"{source}: not JSON ({error})") from None
    budget = runbook.timeout_minutes * 60
    timeout = definition.get("TimeoutSeconds") if isinstance(definition, dict) else None
    if not isinstance(timeout, int) or not 0 < timeout <= budget:
        raise DefinitionError(
            f"{source}: top-level TimeoutSeconds is {timeout!r}; runbook {runbook.name!r} needs one of at most "
            f"{budget} (timeout_minutes={runbook.timeout_minutes} in functions/catalog.py)"
        )


@dataclass(frozen=True)
class ExtraPlaceholder:
    """A non-function placeholder a runbook may use (``Runbook.extra_placeholders``) and what it needs."""

    value: str
    statements: tuple[iam.PolicyStatement, ...] = field(default=())


def placeholders_in(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def substitutions_for(
    runbook: Runbook,
    text: str,
    functions: Mapping[str, lambda_.IFunction],
    extras: Mapping[str, ExtraPlaceholder],
    *,
    source: str,
) -> tuple[dict[str, str], list[lambda_.IFunction], list[iam.PolicyStatement]]:
    """Substitutions for every placeholder in ``text``, the functions it calls and the extra statements."""
    by_placeholder = {STEPS[name].placeholder: name for name in runbook.steps}
    substitutions: dict[str, str] = {}
    called: list[lambda_.IFunction] = []
    statements: list[iam.PolicyStatement] = []
    for placeholder in sorted(placeholders_in(text)):
        if placeholder in by_placeholder:
            function = functions[by_placeholder[placeholder]]
            substitutions[placeholder] = function.function_arn
            called.append(function)
        elif placeholder in runbook.extra_placeholders and placeholder in extras:
            substitutions[placeholder] = extras[placeholder].value
            statements += extras[placeholder].statements
        else:
            step_names = ", ".join(sorted(by_placeholder))
            raise UnknownPlaceholder(
                f"{source}: ${{{placeholder}}} is neither a step of runbook {runbook.name!r} "
                f"(its steps' placeholders: {step_names}) nor one of its extra_placeholders the app knows "
                f"({', '.join(sorted(set(runbook.extra_placeholders) & set(extras))) or 'none'}); "
                "add the step to the runbook in functions/catalog.py, or the value to infra/stack.py"
            )
    return substitutions, called, statements


class RunbookStateMachine(Construct):
    """A runbook's state machine from ``statemachines/<asl_file>``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runbook: Runbook,
        asl_path: Path,
        functions: Mapping[str, lambda_.IFunction],
        state_machine_name: str,
        failure_topic: sns.ITopic,
        extras: Mapping[str, ExtraPlaceholder] | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        self.runbook = runbook
        text = asl_path.read_text(encoding="utf-8")
        source = f"statemachines/{asl_path.name}"
        check_definition(runbook, text, source=source)
        substitutions, called, statements = substitutions_for(
            runbook, text, functions, extras or {}, source=source
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=f"Runbook {runbook.name}: invokes its steps"[:1000],
        )
        if called:
            # Exactly the unqualified ARNs the ASL calls; no versions or aliases are used.
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"],
                    resources=[function.function_arn for function in called],
                )
            )
        for statement in statements:
            self.role.add_to_policy(statement)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # Step Functions vended logs need the /aws/vendedlogs/ prefix to keep the resource policy small.
            log_group_name=f"/aws/vendedlogs/states/{state_machine_name}",
            retention=log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            definition_body=sfn.DefinitionBody.from_string(text),
            definition_substitutions=substitutions,
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )
        self.definition_text = text
        self.substitutions = substitutions
        self.failure_alarm = self._failure_alarm(state_machine_name, failure_topic)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:CreateLogDelivery and its siblings) and X-Ray "
            "(PutTraceSegments, GetSamplingRules) accept only the * resource; invokes name each function.",
        )

    def _failure_alarm(self, state_machine_name: str, topic: sns.ITopic) -> cloudwatch.Alarm:
        def metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/States",
                metric_name=name,
                dimensions_map={"StateMachineArn": self.state_machine.state_machine_arn},
                statistic="Sum",
                period=cdk.Duration.minutes(1),
            )

        alarm = cloudwatch.Alarm(
            self,
            "RunFailedAlarm",
            alarm_name=f"{state_machine_name}-run-failed",
            alarm_description=f"A run of {self.runbook.name} failed, timed out or was aborted: page L2",
            metric=cloudwatch.MathExpression(
                expression="FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)",
                using_metrics={
                    "failed": metric("ExecutionsFailed"),
                    "timedOut": metric("ExecutionsTimedOut"),
                    "aborted": metric("ExecutionsAborted"),
                },
                period=cdk.Duration.minutes(1),
                label="failed + timed out + aborted runs",
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(topic))
        return alarm
