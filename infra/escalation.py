"""The escalation topics, one per level, encrypted with one customer-managed key, subscribed from config."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from functions.core.config import Escalation

LEVELS = ("L1", "L2", "L3", "management")


def topic_env_var(level: str) -> str:
    """The environment variable a publishing step reads the topic ARN of ``level`` from."""
    return f"TOPIC_ARN_{level.upper()}"


class EscalationTopics(Construct):
    """L1, L2, L3 and management topics; CloudWatch alarms may publish to them through the key policy."""

    def __init__(self, scope: Construct, construct_id: str, *, escalation: Escalation) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the runbook escalation topics",
            enable_key_rotation=True,
        )
        # CloudWatch alarm actions publish to the encrypted topics as the cloudwatch service.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, * means this key
            )
        )
        self.topics: dict[str, sns.Topic] = {}
        for level in LEVELS:
            topic = sns.Topic(
                self,
                f"Topic{level.title()}",
                display_name=f"Runbook escalation {level}",
                master_key=self.key,
                enforce_ssl=True,
            )
            # enforce_ssl replaces SNS's default policy, so CloudWatch alarm actions need their own grant.
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
                )
            )
            for endpoint in escalation.contacts.get(level, []):  # type: ignore[call-overload]
                topic.add_subscription(_subscription(endpoint))
            self.topics[level] = topic

    def environment(self) -> dict[str, str]:
        return {topic_env_var(level): topic.topic_arn for level, topic in self.topics.items()}


def _subscription(endpoint: str) -> sns.ITopicSubscription:
    if endpoint.startswith("email:"):
        return subscriptions.EmailSubscription(endpoint.removeprefix("email:"))
    return subscriptions.UrlSubscription(endpoint, protocol=sns.SubscriptionProtocol.HTTPS)
