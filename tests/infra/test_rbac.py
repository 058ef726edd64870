"""The RBAC manifest: committed as generated, and covering every Kubernetes call the steps make."""

from __future__ import annotations

import re

import yaml

from functions.core.config import load_settings_file
from infra.names import KUBERNETES_GROUP
from infra.rbac import render
from tests.infra.synth import ROOT

RBAC = ROOT / "deploy" / "kubernetes" / "rbac.yaml"
SETTINGS = load_settings_file(ROOT / "config" / "autopilot.example.yaml")

# Kubernetes client method -> the (API group, resource, verb) the API server checks for it.
CALLS = {
    "read_namespaced_deployment": ("apps", "deployments", "get"),
    "list_namespaced_deployment": ("apps", "deployments", "list"),
    "patch_namespaced_deployment": ("apps", "deployments", "patch"),
    "read_namespaced_deployment_scale": ("apps", "deployments/scale", "get"),
    "patch_namespaced_deployment_scale": ("apps", "deployments/scale", "patch"),
    "replace_namespaced_deployment_scale": ("apps", "deployments/scale", "update"),
    "read_namespaced_replica_set": ("apps", "replicasets", "get"),
    "list_namespaced_replica_set": ("apps", "replicasets", "list"),
    "read_namespaced_pod": ("", "pods", "get"),
    "list_namespaced_pod": ("", "pods", "list"),
    "list_namespaced_event": ("", "events", "list"),
    "get_namespaced_custom_object": ("metrics.k8s.io", "pods", "get"),  # the metrics API is the only
    "list_namespaced_custom_object": ("metrics.k8s.io", "pods", "list"),  # custom object the steps read
}


def granted() -> set[tuple[str, str, str]]:
    documents = list(yaml.safe_load_all(RBAC.read_text()))
    (role,) = [d for d in documents if d["kind"] == "ClusterRole"]
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_committed_manifest_is_the_generated_one() -> None:
    assert RBAC.read_text() == render(SETTINGS), (
        "regenerate: python -m infra.rbac > deploy/kubernetes/rbac.yaml"
    )


def test_it_binds_the_access_entry_group_in_the_allowed_namespaces_only() -> None:
    documents = list(yaml.safe_load_all(RBAC.read_text()))
    bindings = [d for d in documents if d["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == sorted(SETTINGS.allowed_namespaces)
    for binding in bindings:
        assert binding["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": KUBERNETES_GROUP}
        ]
        assert binding["roleRef"]["kind"] == "ClusterRole"
    assert not [d for d in documents if d["kind"] == "ClusterRoleBinding"]  # never cluster-wide


def test_every_kubernetes_call_of_the_steps_is_granted() -> None:
    source = "\n".join(path.read_text() for path in (ROOT / "functions" / "adapters").glob("*.py"))
    calls = set(re.findall(r"self\.(?:apps|core|custom|networking)\.([a-z_]+)", source))
    assert calls, "no Kubernetes calls found: did the adapter move?"
    unknown = calls - set(CALLS)
    assert not unknown, f"add these calls to CALLS and their permission to infra/rbac.py: {sorted(unknown)}"
    assert {CALLS[call] for call in calls} <= granted()


def test_nothing_beyond_what_the_runbooks_use() -> None:
    assert granted() <= set(CALLS.values())
    assert not any(verb in {"delete", "create", "*"} for _, _, verb in granted())
