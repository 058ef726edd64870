"""The one stack. It only composes constructs: escalation topics, one function per step, one state machine per
runbook whose ASL file exists, triggers, SLA alarms and EKS access. Adding a runbook: its ASL file and its
catalog entry (functions/catalog.py); alarm routes in infra/sla_alarms.py and schedules in the configuration.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.adapters.locks import LOCK_TABLE_ENV
from functions.catalog import RUNBOOKS, STEPS, Runbook, Step
from functions.core.config import Settings
from functions.core.errors import ConfigurationError
from infra.bundling import function_code
from infra.deploy_context import DeployContext
from infra.escalation import EscalationTopics
from infra.kubernetes_access import EksAccess
from infra.nag import acknowledge
from infra.names import output_key, pascal, state_machine_name
from infra.permissions import Grantables, grant_for, publish_statements
from infra.runbook_machine import ExtraPlaceholder, RunbookStateMachine
from infra.sla_alarms import SLA_ROUTES, ServiceSlaAlarms, alb_dimensions
from infra.step_lambda import StepLambda
from infra.triggers import AlarmTrigger, ScheduledStart

ROOT = Path(__file__).resolve().parents[1]
STATEMACHINES_DIR = ROOT / "statemachines"
# The runbook every configured service alarm (metric or composite) starts.
SERVICE_ALARMS_RUNBOOK = "p1-service-down"


def deployed_runbooks(statemachines_dir: Path = STATEMACHINES_DIR) -> list[Runbook]:
    """The catalog's runbooks whose ASL file exists; the others are not deployed yet."""
    return [runbook for runbook in RUNBOOKS.values() if (statemachines_dir / runbook.asl_file).is_file()]


class RunbookAutopilotStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        deploy: DeployContext,
        code: lambda_.Code | None = None,
        statemachines_dir: Path = STATEMACHINES_DIR,
        **kwargs: object,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=deploy.stack_name,
            description="Runbook Autopilot: operations runbooks as Step Functions state machines",
            **kwargs,
        )
        self.settings = settings
        retention = _retention(deploy.log_retention_days)
        self.runbooks = deployed_runbooks(statemachines_dir)
        steps = [STEPS[name] for name in dict.fromkeys(s for rb in self.runbooks for s in rb.steps)]

        self.escalation = EscalationTopics(self, "Escalation", escalation=settings.escalation)
        grantables = Grantables(
            settings=settings,
            stack=self,
            topics=dict(self.escalation.topics),
            topic_key=self.escalation.key,
            reports_bucket=self._reports_bucket() if _any_needs(steps, "s3:write-reports") else None,
            lock_table=self._lock_table() if _any_needs(steps, "dynamodb:lock") else None,
        )
        vpc, security_groups = self._network(deploy)
        code = code or function_code(settings)

        self.functions: dict[str, StepLambda] = {}
        for step in steps:
            environment: dict[str, str] = {}
            if "sns:publish" in step.aws:
                environment.update(self.escalation.environment())
            if grantables.reports_bucket is not None and "s3:write-reports" in step.aws:
                environment["REPORTS_BUCKET"] = grantables.reports_bucket.bucket_name
            if grantables.lock_table is not None and "dynamodb:lock" in step.aws:
                environment[LOCK_TABLE_ENV] = grantables.lock_table.table_name
            placed = vpc is not None and _needs_vpc(step, deploy)
            grant = grant_for(step, grantables)
            self.functions[step.name] = StepLambda(
                self,
                f"{step.name}Step",
                step=step,
                code=code,
                statements=grant.statements,
                star_reasons=grant.star_reasons,
                environment=environment,
                vpc=vpc if placed else None,
                subnets=vpc.private_subnets if placed and vpc else (),
                security_groups=security_groups if placed else (),
                log_retention=retention,
            )
            for finding, reason in grant.wildcards.items():
                acknowledge(self.functions[step.name].role, finding, reason)

        extras = self._extra_placeholders()
        self.machines: dict[str, RunbookStateMachine] = {}
        for runbook in self.runbooks:
            machine = RunbookStateMachine(
                self,
                f"{pascal(runbook.name)}Runbook",
                runbook=runbook,
                asl_path=statemachines_dir / runbook.asl_file,
                functions={name: self.functions[name].function for name in runbook.steps},
                state_machine_name=state_machine_name(deploy.stack_name, runbook.name),
                failure_topic=self.escalation.topics["L2"],
                extras=extras,
                log_retention=retention,
            )
            self.machines[runbook.name] = machine
            cdk.CfnOutput(
                self,
                output_key(runbook.name),
                value=machine.state_machine.state_machine_arn,
                description=f"runbook {runbook.name}: {runbook.description}",
            )
            self._schedules(runbook, machine)

        self._alarm_triggers()
        kubernetes_roles = {s.name: self.functions[s.name].role for s in steps if s.kubernetes}
        clusters = sorted({service.cluster for service in settings.services.values()})
        if kubernetes_roles:
            EksAccess(self, "EksAccess", clusters=clusters, roles=kubernetes_roles)
        for level, topic in self.escalation.topics.items():
            cdk.CfnOutput(self, f"EscalationTopic{pascal(level)}Arn", value=topic.topic_arn)

    # -- parts ------------------------------------------------------------------------------------------

    def _network(self, deploy: DeployContext) -> tuple[ec2.IVpc | None, list[ec2.ISecurityGroup]]:
        if deploy.vpc is None:
            cdk.Annotations.of(self).add_warning_v2(
                "runbook-autopilot:no-vpc",
                "No vpcId in context: every function runs outside a VPC, so RDS and a private EKS endpoint "
                "are out of reach. Set vpcId, vpcAvailabilityZones and vpcPrivateSubnetIds (docs/deploy.md).",
            )
            return None, []
        vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=deploy.vpc.vpc_id,
            availability_zones=list(deploy.vpc.availability_zones),
            private_subnet_ids=list(deploy.vpc.subnet_ids),
        )
        if deploy.vpc.security_group_ids:
            groups = [
                ec2.SecurityGroup.from_security_group_id(self, f"StepsSecurityGroup{i}", group_id)
                for i, group_id in enumerate(deploy.vpc.security_group_ids)
            ]
            return vpc, groups
        group = ec2.SecurityGroup(
            self,
            "StepsSecurityGroup",
            vpc=vpc,
            description="Runbook steps in the VPC: no inbound; outbound to RDS, EKS and AWS APIs",
            allow_all_outbound=True,
        )
        cdk.CfnOutput(
            self,
            "StepsSecurityGroupId",
            value=group.security_group_id,
            description="allow it inbound on the database's and the EKS API's security groups",
        )
        return vpc, [group]

    def _reports_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "Reports",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "Holds the runbooks' own reports, written only by the step roles; CloudTrail records its API use.",
        )
        return bucket

    def _lock_table(self) -> dynamodb.Table:
        """One active runbook per target (functions/adapters/locks.py): items expire through TTL."""
        table = dynamodb.Table(
            self,
            "TargetLocks",
            partition_key=dynamodb.Attribute(name="target", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        acknowledge(
            table,
            "AwsSolutions-DDB3",
            "Holds only short-lived lock items that expire with their run; there is nothing to restore, and a "
            "lost item frees a lock early at worst (the next run takes it again).",
        )
        cdk.CfnOutput(self, "LockTableName", value=table.table_name)
        return table

    def _extra_placeholders(self) -> dict[str, ExtraPlaceholder]:
        """Values a runbook may name in ``Runbook.extra_placeholders`` besides its steps' function ARNs."""
        extras: dict[str, ExtraPlaceholder] = {}
        for level, topic in self.escalation.topics.items():
            extras[f"TopicArn{pascal(level)}"] = ExtraPlaceholder(
                value=topic.topic_arn, statements=tuple(publish_statements([topic], self.escalation.key))
            )
        return extras

    def _schedules(self, runbook: Runbook, machine: RunbookStateMachine) -> None:
        for trigger in runbook.triggers:
            if trigger.startswith("schedule:"):
                key = trigger.removeprefix("schedule:")
                ScheduledStart(
                    self,
                    f"{pascal(key)}Schedule",
                    state_machine=machine.state_machine,
                    expression=getattr(self.settings.schedules, key),
                    schedule=key,
                    runbook=runbook.name,
                )

    def _alarm_triggers(self) -> None:
        """Per service: configured alarms start P1; SLA alarms start their runbook or notify a topic."""
        for service in self.settings.services:
            routed: dict[str, list[str]] = {}
            if "alarm" in getattr(RUNBOOKS.get(SERVICE_ALARMS_RUNBOOK), "triggers", ()):
                routed[SERVICE_ALARMS_RUNBOOK] = list(self.settings.services[service].alarms)
            dimensions = alb_dimensions(self.settings, service)
            if dimensions is not None:
                sla = ServiceSlaAlarms(
                    self,
                    f"{pascal(service)}Sla",
                    settings=self.settings,
                    service=service,
                    dimensions=dimensions,
                )
                sla_names = self.settings.sla_alarm_names(service)
                for kind, alarm in sla.alarms.items():
                    route = SLA_ROUTES[kind]
                    if route.runbook in self.machines and "alarm" in RUNBOOKS[route.runbook].triggers:
                        routed.setdefault(route.runbook, []).append(sla_names[kind])
                    else:
                        alarm.add_alarm_action(actions.SnsAction(self.escalation.topics[route.topic]))
            for runbook, names in routed.items():
                if names and runbook in self.machines:
                    AlarmTrigger(
                        self,
                        f"{pascal(service)}{pascal(runbook)}Trigger",
                        state_machine=self.machines[runbook].state_machine,
                        alarm_names=names,
                        description=f"{service}: alarm to ALARM starts {runbook}",
                    )


def _any_needs(steps: list[Step], need: str) -> bool:
    return any(need in step.aws for step in steps)


def _needs_vpc(step: Step, deploy: DeployContext) -> bool:
    return (
        step.database
        or (step.kubernetes and deploy.eks_endpoint_private)
        or (step.http_probes and deploy.health_urls_private)
    )


_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    if days not in _RETENTION:
        allowed = ", ".join(map(str, _RETENTION))
        raise ConfigurationError(f"context logRetentionDays: {days} is not one of {allowed}")
    return _RETENTION[days]
