"""A Kubernetes API simulator for the sandbox and the tests.

``KubeSimulator`` serves the real API paths and JSON on loopback (the official Python client and kubectl 1.32
work unchanged), runs a Deployment/ReplicaSet controller on the given clock, and accepts only EKS bearer
tokens (``k8s-aws-v1.`` + a presigned STS GetCallerIdentity URL) unless ``require_token=False``.

World schema (``KubeSimulator.load``; a scenario file's ``kubernetes:`` section)::

    namespaces: [production]            # optional; namespaces of deployments are created anyway
    metrics_api: true                   # false: metrics.k8s.io answers 404 (no metrics server)
    images:                             # fault profile per container image; unlisted images are healthy
      registry.example.com/sales:v2.1.1: {fault: crash_after, seconds: 120}
      registry.example.com/sales:v2.2.0: crashloop          # short form
      # faults: healthy | crashloop | imagepull | slow_start (seconds: until ready) |
      #         crash_after (seconds: ready from start until then, then CrashLoopBackOff)
    deployments:
      - name: sales-service
        namespace: production
        selector: {app: sales-service}  # spec.selector.matchLabels (default: labels, else {app: name})
        labels: {app: sales-service, tier: api}   # Deployment and pod template labels (+ selector)
        replicas: 3
        container: sales-service        # container name (default: the deployment name)
        port: 8080                      # optional containerPort
        resources: {requests: {cpu: 250m, memory: 256Mi}, limits: {cpu: "1", memory: 512Mi}}
        progress_deadline_seconds: 600
        paused: false
        strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}  # optional
        revisions:                      # oldest first; numbered 1..n unless a revision says `revision: N`
          - {image: registry.example.com/sales:v2.1.0, age_minutes: 4320, change_cause: deploy v2.1.0}
          - {image: registry.example.com/sales:v2.1.1, age_minutes: 20}
          # a revision may also set env: {KEY: value} and restarted_at: <ISO> (the restart annotation)
        current: 2                      # the revision running now (default: the last one)
        stuck_pods: 0                   # this many of the current pods are deadlocked (a restart cures them)
        load: {rps: 300, pod_capacity_rps: 150}   # health is 503 when rps > ready pods * capacity
        service: true                   # also create a ClusterIP Service (default true)
    replicasets:                        # extra ReplicaSets, e.g. another Deployment's with overlapping labels
      - name: sales-service-canary-7d9f8c6b5d
        namespace: production
        owner: sales-service-canary     # a Deployment (created with 0 replicas when absent); omit: an orphan
        labels: {app: sales-service}
        image: registry.example.com/sales:v9.9.9-canary
        replicas: 0
        revision: 7
    network_policies: []                # raw networking.k8s.io/v1 NetworkPolicy objects

Loading settles the world as of now: the current revision's ReplicaSet runs ``replicas`` pods created
``age_minutes`` ago (so a ``crash_after`` image older than its ``seconds`` is crash-looping already), older
ReplicaSets are scaled to 0, and the Deployment's Progressing condition says NewReplicaSetAvailable (or, for
an image that never becomes ready, ReplicaSetUpdated / ProgressDeadlineExceeded once the deadline passed).
"""

from __future__ import annotations

from typing import Any

from runbook.sandbox.kube_sim.cluster import Fault
from runbook.sandbox.kube_sim.server import KubeSimulator, check_token
from runbook.sandbox.kube_sim.world import WorldError

__all__ = ["Fault", "KubeSimulator", "WorldError", "check_token", "point_cluster_at"]


def point_cluster_at(
    cluster_name: str,
    url: str,
    *,
    ca_data: str | None = None,
    account_id: str | None = None,
    region: str | None = None,
) -> None:
    """Make moto's EKS cluster ``cluster_name`` report ``url`` as its endpoint (call inside ``mock_aws``).

    ``ca_data``: for an https simulator (``KubeSimulator(tls=True)``), its ``ca_data``. The cluster must
    exist (``eks.create_cluster``). Defaults: moto's current account (``MOTO_ACCOUNT_ID``), the client region.
    """
    import os

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.eks.models import eks_backends

    from functions.core.clients import region as default_region

    account = account_id or os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
    backend: Any = eks_backends[account][region or default_region()]
    try:
        cluster = backend.clusters[cluster_name]
    except KeyError:
        raise KeyError(f"moto has no EKS cluster {cluster_name!r}; create it first") from None
    cluster.endpoint = url
    if ca_data is not None:
        cluster.certificate_authority = {"data": ca_data}
