"""The shared function construct: every step runs the same way (Python on arm64, JSON logs, X-Ray, Powertools)
with its own role that holds only what its catalog entry asks for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.catalog import Step
from infra.nag import acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_13  # keep in step with infra.bundling.PYTHON_VERSION
POWERTOOLS_SERVICE = "runbook-autopilot"
METRICS_NAMESPACE = "RunbookAutopilot"


class StepLambda(Construct):
    """One step of the catalog as a Lambda function with its own least-privilege role and log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        step: Step,
        code: lambda_.Code,
        statements: Sequence[iam.PolicyStatement] = (),
        environment: Mapping[str, str] | None = None,
        vpc: ec2.IVpc | None = None,
        subnets: Sequence[ec2.ISubnet] = (),
        security_groups: Sequence[ec2.ISecurityGroup] = (),
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        star_reasons: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.step = step
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runbook step {step.name}: {step.description}"[:1000],
        )
        # Written out instead of AWSLambdaBasicExecutionRole, whose logs:* statements cover every log group.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        for statement in statements:
            self.role.add_to_policy(statement)
        in_vpc = vpc is not None
        if in_vpc:
            # Lambda manages the function's network interfaces with the function's role. CreateNetworkInterface
            # and the Describe call accept no resource narrower than *; Lambda's own managed policy
            # (AWSLambdaVPCAccessExecutionRole) grants the same on *.
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=["*"],
                )
            )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=step.handler,
            code=code,
            role=self.role,
            description=step.description[:256],
            timeout=cdk.Duration.seconds(step.timeout_seconds),
            memory_size=step.memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=self.log_group,
            environment={
                "POWERTOOLS_SERVICE_NAME": POWERTOOLS_SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "RUNBOOK_STEP": step.name,
                **(environment or {}),
            },
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)) if in_vpc else None,
            security_groups=list(security_groups) if in_vpc else None,
            allow_public_subnet=False,
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"Pinned to {RUNTIME.name}: the runtime the asset's wheels are fetched for (infra.bundling) and the "
            "steps are tested against; moving to a newer one is a deliberate change of both.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) accept only the * resource"
            + ("; so do the Lambda ENI actions a function in a VPC needs" if in_vpc else "")
            + "".join(f"; {reason}" for reason in star_reasons)
            + ". Every other statement of this role names its resources.",
        )
