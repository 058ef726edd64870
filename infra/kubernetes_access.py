"""EKS access entries: each step role that talks to Kubernetes joins one Kubernetes group on each cluster.

The group's permissions are the RBAC manifest in deploy/kubernetes/rbac.yaml (apply it once per cluster).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.names import KUBERNETES_GROUP, pascal


class EksAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        clusters: Sequence[str],
        roles: Mapping[str, iam.IRole],
        group: str = KUBERNETES_GROUP,
    ) -> None:
        super().__init__(scope, construct_id)
        self.entries: list[eks.CfnAccessEntry] = []
        for cluster in clusters:
            for step, role in roles.items():
                self.entries.append(
                    eks.CfnAccessEntry(
                        self,
                        f"{pascal(cluster)}{step}",
                        cluster_name=cluster,
                        principal_arn=role.role_arn,
                        type="STANDARD",
                        kubernetes_groups=[group],
                    )
                )
