"""From a cluster name to Kubernetes calls: moto's EKS DescribeCluster pointed at the simulator."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from functions.adapters import kubernetes as kube_adapter
from functions.core.clients import reset_clients
from runbook.sandbox.kube_sim import point_cluster_at
from tests.fixtures.kube import service_world


@pytest.fixture
def eks_cluster(kube_sim):
    with mock_aws():
        reset_clients()
        kube_adapter.reset()
        eks = boto3.client("eks", region_name="us-east-1")
        eks.create_cluster(
            name="prod-eks",
            roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        )
        point_cluster_at("prod-eks", kube_sim.url)
        yield eks
        kube_adapter.reset()
        reset_clients()


def test_describe_cluster_reports_the_simulator_as_the_endpoint(eks_cluster, kube_sim):
    assert eks_cluster.describe_cluster(name="prod-eks")["cluster"]["endpoint"] == kube_sim.url


def test_kube_for_cluster_reaches_the_simulator_with_an_eks_token(eks_cluster, kube_sim):
    # Given a world in the simulator that requires EKS tokens
    kube_sim.load(service_world())
    # When
    ops = kube_adapter.kube_for_cluster("prod-eks")
    # Then it works, and the client is cached per cluster
    assert ops.rollout_status("production", "sales-service").state == "DONE"
    assert kube_adapter.kube_for_cluster("prod-eks") is ops


def test_pointing_an_unknown_cluster_is_an_error(eks_cluster, kube_sim):
    with pytest.raises(KeyError, match="no EKS cluster 'nope'"):
        point_cluster_at("nope", kube_sim.url)
