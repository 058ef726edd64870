"""IAM statements for the logical AWS needs of the catalog (``Step.aws``), scoped to the configured resources.

Where a need cannot name its resources exactly, the grant carries the cdk-nag finding it causes and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
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
    lock_table: dynamodb.ITable | None = None


@dataclass
class Grant:
    """A step's statements, why any of them needs * (``star_reasons``), and other wildcard findings."""

    statements: list[iam.PolicyStatement] = field(default_factory=list)
    star_reasons: list[str] = field(default_factory=list)
    wildcards: dict[str, str] = field(default_factory=dict)  # cdk-nag finding id -> reason


def publish_statements(topics: list[sns.ITopic], key: kms.IKey) -> list[iam.PolicyStatement]:
    """Publishing to the escalation topics; they are encrypted, so it needs a data key from their key too."""
    return [
        iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn for topic in topics]),
        iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]),
    ]


def grant_for(step: Step, grantables: Grantables) -> Grant:
    grant = Grant()
    for need in step.aws:
        _need(need, grantables, grant)
    return grant


def _need(need: AwsNeed, g: Grantables, grant: Grant) -> None:
    settings, stack = g.settings, g.stack
    add = grant.statements.append
    if need == "elb:read":
        add(iam.PolicyStatement(actions=["elasticloadbalancing:DescribeTargetHealth"], resources=["*"]))
        grant.star_reasons.append(
            "elasticloadbalancing:DescribeTargetHealth does not support resource-level permissions"
        )
    elif need == "eks:describe":
        clusters = sorted({service.cluster for service in settings.services.values()})
        arns = [
            stack.format_arn(
                service="eks",
                resource="cluster",
                resource_name=name,
                arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
            )
            for name in clusters
        ]
        add(iam.PolicyStatement(actions=["eks:DescribeCluster"], resources=arns))
    elif need == "sns:publish":
        if not g.topics or g.topic_key is None:
            raise ValueError("sns:publish needs the escalation topics, built before the steps")
        add(iam.PolicyStatement(actions=["sns:Publish"], resources=[t.topic_arn for t in g.topics.values()]))
        # The topics are encrypted: publishing needs a data key from the topic key.
        add(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[g.topic_key.key_arn]
            )
        )
    elif need == "secrets:read":
        secrets = sorted({db.secret_arn for db in settings.databases.values() if db.secret_arn})
        if secrets:
            add(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=secrets))
    elif need == "rds:read":
        ids = sorted({db.rds_instance_id for db in settings.databases.values() if db.rds_instance_id})
        if ids:
            colon = cdk.ArnFormat.COLON_RESOURCE_NAME
            dbs = [
                stack.format_arn(service="rds", resource="db", resource_name=i, arn_format=colon) for i in ids
            ]
            snapshots = stack.format_arn(
                service="rds", resource="snapshot", resource_name="*", arn_format=colon
            )
            add(iam.PolicyStatement(actions=["rds:DescribeDBInstances"], resources=dbs))
            add(iam.PolicyStatement(actions=["rds:DescribeDBSnapshots"], resources=[*dbs, snapshots]))
            finding = "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:snapshot:*]"
            grant.wildcards[finding] = (
                "rds:DescribeDBSnapshots is authorized on the snapshots it returns, whose names RDS makes each "
                "day (rds:<instance>-<date>); the call itself is filtered to the configured instance. Read-only."
            )
    elif need == "s3:write-reports":
        bucket = g.reports_bucket
        if bucket is None:
            raise ValueError("s3:write-reports needs the reports bucket, built before the steps")
        add(iam.PolicyStatement(actions=["s3:PutObject"], resources=[bucket.arn_for_objects("*")]))
        bucket_id = stack.get_logical_id(bucket.node.default_child)
        grant.wildcards[f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]"] = (
            "Each run writes a new report object (<runbook>/<time>.md) into the stack's own reports bucket: "
            "the key is not known before the run. s3:PutObject only, on that bucket only."
        )
    elif need == "cloudwatch:read":
        add(
            iam.PolicyStatement(
                actions=["cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"], resources=["*"]
            )
        )
        grant.star_reasons.append(
            "cloudwatch:GetMetricData does not support resource-level permissions, and the health check's "
            "DescribeAlarms reads every alarm of the account"
        )
    elif need == "dynamodb:lock":
        if g.lock_table is None:
            raise ValueError("dynamodb:lock needs the lock table, built before the steps")
        actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
        add(iam.PolicyStatement(actions=actions, resources=[g.lock_table.table_arn]))
    else:
        raise ValueError(f"unknown AWS need {need!r}: add its statements to infra/permissions.py")
