"""IAM statements for the logical AWS needs of the catalog (``Step.aws``), scoped to the configured resources."""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from functions.catalog import AwsNeed, Step
from functions.core.config import Settings


@dataclass
class Grantables:
    """What the stack built that steps may be granted on."""

    settings: Settings
    stack: cdk.Stack
    topics: dict[str, sns.ITopic] = field(default_factory=dict)  # level -> topic
    topic_key: kms.IKey | None = None
    reports_bucket: s3.IBucket | None = None


# The reason for each statement that needs a * resource: the API has no resource-level permission.
STAR_RESOURCE_REASONS: dict[str, str] = {
    "elb:read": "elasticloadbalancing:DescribeTargetHealth does not support resource-level permissions",
    "cloudwatch:read": "cloudwatch:GetMetricData does not support resource-level permissions, and the health "
    "check's DescribeAlarms reads every alarm of the account",
}


def statements_for(step: Step, grantables: Grantables) -> list[iam.PolicyStatement]:
    statements: list[iam.PolicyStatement] = []
    for need in step.aws:
        statements += _need(need, grantables)
    return statements


def star_reasons(step: Step) -> list[str]:
    return [STAR_RESOURCE_REASONS[need] for need in step.aws if need in STAR_RESOURCE_REASONS]


def _arn(stack: cdk.Stack, service: str, resource: str, name: str, sep: cdk.ArnFormat) -> str:
    return stack.format_arn(service=service, resource=resource, resource_name=name, arn_format=sep)


def _need(need: AwsNeed, g: Grantables) -> list[iam.PolicyStatement]:
    settings, stack = g.settings, g.stack
    if need == "elb:read":
        return [iam.PolicyStatement(actions=["elasticloadbalancing:DescribeTargetHealth"], resources=["*"])]
    if need == "eks:describe":
        clusters = sorted({service.cluster for service in settings.services.values()})
        slash = cdk.ArnFormat.SLASH_RESOURCE_NAME
        return [
            iam.PolicyStatement(
                actions=["eks:DescribeCluster"],
                resources=[_arn(stack, "eks", "cluster", name, slash) for name in clusters],
            )
        ]
    if need == "sns:publish":
        if not g.topics or g.topic_key is None:
            raise ValueError("sns:publish needs the escalation topics, built before the steps")
        return [
            iam.PolicyStatement(actions=["sns:Publish"], resources=[t.topic_arn for t in g.topics.values()]),
            # The topics are encrypted: publishing needs a data key from the topic key.
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[g.topic_key.key_arn]
            ),
        ]
    if need == "secrets:read":
        secrets = sorted({db.secret_arn for db in settings.databases.values() if db.secret_arn})
        if not secrets:
            return []
        return [iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=secrets)]
    if need == "rds:read":
        ids = sorted({db.rds_instance_id for db in settings.databases.values() if db.rds_instance_id})
        if not ids:
            return []
        colon = cdk.ArnFormat.COLON_RESOURCE_NAME
        return [
            iam.PolicyStatement(
                actions=["rds:DescribeDBInstances", "rds:DescribeDBSnapshots"],
                resources=[_arn(stack, "rds", "db", name, colon) for name in ids],
            )
        ]
    if need == "s3:write-reports":
        if g.reports_bucket is None:
            raise ValueError("s3:write-reports needs the reports bucket, built before the steps")
        return [
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[g.reports_bucket.arn_for_objects("reports/*")]
            )
        ]
    if need == "cloudwatch:read":
        return [
            iam.PolicyStatement(
                actions=["cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"], resources=["*"]
            )
        ]
    raise ValueError(f"unknown AWS need {need!r}: add its statements to infra/permissions.py")
