"""The simulator's HTTP API as a client sees it: Status errors, auth, patches, tables, health, discovery."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from functions.adapters.eks_auth import get_token
from runbook.sandbox.kube_sim import KubeSimulator
from tests.fixtures.kube import IMAGE, ManualClock, service_world

NS, NAME = "production", "sales-service"
DEPLOY = f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}"


def _request(
    sim,
    path: str,
    *,
    method: str = "GET",
    body: Any = None,
    content_type: str = "application/json",
    token: str | None = "fresh",
    accept: str = "application/json",
) -> tuple[int, Any]:
    headers = {"Accept": accept}
    if token == "fresh":
        token = get_token("test-cluster").value
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = content_type
    request = urllib.request.Request(sim.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            code = response.status
    except urllib.error.HTTPError as error:
        raw, code = error.read(), error.code
    try:
        return code, json.loads(raw)
    except ValueError:
        return code, raw.decode()


@pytest.fixture
def world(kube_sim):
    kube_sim.load(service_world())
    return kube_sim


def test_a_request_without_a_token_gets_a_401_status(world):
    code, body = _request(world, DEPLOY, token=None)
    assert code == 401
    assert (body["kind"], body["status"], body["reason"], body["code"]) == (
        "Status",
        "Failure",
        "Unauthorized",
        401,
    )


def test_a_token_that_is_not_an_eks_token_gets_401(world):
    assert _request(world, DEPLOY, token="k8s-aws-v1.aGVsbG8")[0] == 401
    assert _request(world, DEPLOY, token="some-static-token")[0] == 401


def test_a_missing_deployment_is_a_not_found_status(world):
    code, body = _request(world, f"/apis/apps/v1/namespaces/{NS}/deployments/nope")
    assert code == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"},
        "code": 404,
    }


def test_a_put_with_a_stale_resource_version_is_a_conflict(world):
    _, deployment = _request(world, DEPLOY)
    stale = json.loads(json.dumps(deployment))
    _request(
        world,
        DEPLOY,
        method="PATCH",
        body={"spec": {"replicas": 4}},
        content_type="application/merge-patch+json",
    )
    stale["spec"]["replicas"] = 5
    code, body = _request(world, DEPLOY, method="PUT", body=stale)
    assert (code, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]
    assert _request(world, DEPLOY)[1]["spec"]["replicas"] == 4


def test_changing_the_selector_is_invalid(world):
    code, body = _request(
        world,
        DEPLOY,
        method="PATCH",
        body={"spec": {"selector": {"matchLabels": {"app": "other"}}}},
        content_type="application/merge-patch+json",
    )
    assert (code, body["reason"]) == (422, "Invalid")
    assert "field is immutable" in body["message"]


def test_a_failed_json_patch_test_changes_nothing(world):
    code, _ = _request(
        world,
        DEPLOY,
        method="PATCH",
        body=[
            {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
            {"op": "replace", "path": "/spec/replicas", "value": 9},
        ],
        content_type="application/json-patch+json",
    )
    assert code == 422
    assert _request(world, DEPLOY)[1]["spec"]["replicas"] == 3


def test_a_server_side_dry_run_changes_nothing_and_is_recorded_as_such(world):
    code, body = _request(
        world,
        DEPLOY + "?dryRun=All",
        method="PATCH",
        body={"spec": {"replicas": 7}},
        content_type="application/merge-patch+json",
    )
    assert (code, body["spec"]["replicas"]) == (200, 7)
    assert _request(world, DEPLOY)[1]["spec"]["replicas"] == 3
    assert [(m["verb"], m.get("dry_run"), m["code"]) for m in world.mutations] == [("PATCH", True, 200)]


def test_get_deployments_as_a_table_has_kubectls_columns(world):
    code, table = _request(
        world,
        f"/apis/apps/v1/namespaces/{NS}/deployments",
        accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    assert code == 200
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
    ]
    assert table["rows"][0]["cells"][:4] == [NAME, "3/3", 3, 3]


def test_label_selectors_support_set_based_terms(world):
    base = f"/api/v1/namespaces/{NS}/pods?labelSelector="
    assert len(_request(world, base + "app%20in%20(sales-service,other)")[1]["items"]) == 3
    assert len(_request(world, base + "app!=sales-service")[1]["items"]) == 0
    assert len(_request(world, base + "!app")[1]["items"]) == 0
    assert len(_request(world, base + "app,pod-template-hash")[1]["items"]) == 3


def test_network_policies_can_be_created_read_and_deleted(world):
    path = f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies"
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "isolate-sales"},
        "spec": {"podSelector": {"matchLabels": {"app": NAME}}, "policyTypes": ["Ingress", "Egress"]},
    }
    assert _request(world, path, method="POST", body=policy)[0] == 201
    code, body = _request(world, path, method="POST", body=policy)
    assert (code, body["reason"]) == (409, "AlreadyExists")
    assert _request(world, f"{path}/isolate-sales")[1]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert _request(world, f"{path}/isolate-sales", method="DELETE")[0] == 200
    assert _request(world, f"{path}/isolate-sales")[0] == 404


def test_the_health_endpoint_needs_no_token_and_explains_a_503(kube_sim):
    kube_sim.load(service_world(images={f"{IMAGE}:v2.1.1": "crashloop"}))
    code, body = _request(kube_sim, f"/sandbox/health/{NS}/{NAME}/actuator/health", token=None)
    assert (code, body["status"], body["reason"]) == (503, "unavailable", "no ready pods")


def test_events_show_scaling_and_kubelet_back_offs():
    # Given crash-looping pods in back-off, on a clock that only moves when told
    clock = ManualClock()
    with KubeSimulator(clock.now, require_token=False) as sim:
        sim.load(service_world(images={f"{IMAGE}:v2.1.1": "crashloop"}))
        clock.advance(250)  # well inside a 300 s back-off of the 20-minute-old pods
        # When the deployment is scaled down
        _request(
            sim,
            DEPLOY + "/scale",
            method="PATCH",
            body={"spec": {"replicas": 2}},
            content_type="application/merge-patch+json",
            token=None,
        )
        clock.advance(2)
        events = _request(sim, f"/api/v1/namespaces/{NS}/events", token=None)[1]["items"]
    # Then the controller's scaling event and the kubelet's back-off warnings are listed
    reasons = sorted({(e["involvedObject"]["kind"], e["reason"], e["type"]) for e in events})
    assert reasons == [("Deployment", "ScalingReplicaSet", "Normal"), ("Pod", "BackOff", "Warning")]
    assert sum(1 for e in events if e["reason"] == "BackOff") == 2


def test_discovery_is_served_and_openapi_is_not(world):
    assert _request(world, "/version")[1]["gitVersion"].startswith("v1.32")
    groups = [g["name"] for g in _request(world, "/apis")[1]["groups"]]
    assert groups == ["apps", "networking.k8s.io", "metrics.k8s.io"]
    resources = {r["name"]: r for r in _request(world, "/apis/apps/v1")[1]["resources"]}
    assert (resources["deployments/scale"]["group"], resources["deployments/scale"]["kind"]) == (
        "autoscaling",
        "Scale",
    )
    assert _request(world, "/openapi/v2")[0] == 404


def test_without_a_metrics_api_the_group_is_gone(kube_sim):
    world = service_world()
    world["metrics_api"] = False
    kube_sim.load(world)
    assert "metrics.k8s.io" not in [g["name"] for g in _request(kube_sim, "/apis")[1]["groups"]]
    assert _request(kube_sim, f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods")[0] == 404


def test_pod_logs_of_a_crashing_pod(kube_sim):
    kube_sim.load(service_world(images={f"{IMAGE}:v2.1.1": "crashloop"}))
    pod = _request(kube_sim, f"/api/v1/namespaces/{NS}/pods")[1]["items"][0]["metadata"]["name"]
    code, text = _request(kube_sim, f"/api/v1/namespaces/{NS}/pods/{pod}/log")
    assert code == 200
    assert "FATAL" in text


def test_a_watch_streams_added_then_modified_events(world):
    # Given a watch from the beginning, for one second
    request = urllib.request.Request(
        world.url + f"/api/v1/namespaces/{NS}/pods?watch=true&timeoutSeconds=1",
        headers={"Authorization": f"Bearer {get_token('test-cluster').value}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        first = json.loads(response.readline())
        # When the deployment is scaled while we watch
        _request(
            world,
            DEPLOY + "/scale",
            method="PATCH",
            body={"spec": {"replicas": 4}},
            content_type="application/merge-patch+json",
        )
        rest = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    # Then the existing pods came as ADDED and the new pod appeared
    assert (first["type"], first["object"]["kind"]) == ("ADDED", "Pod")
    added = [e for e in [first, *rest] if e["type"] == "ADDED"]
    assert len(added) == 4


def test_the_scale_subresource_answers_get_and_put(world):
    code, scale = _request(world, DEPLOY + "/scale")
    assert (code, scale["kind"], scale["apiVersion"], scale["spec"], scale["status"]) == (
        200,
        "Scale",
        "autoscaling/v1",
        {"replicas": 3},
        {"replicas": 3, "selector": "app=sales-service"},
    )
    scale["spec"]["replicas"] = 2
    assert _request(world, DEPLOY + "/scale", method="PUT", body=scale)[1]["spec"]["replicas"] == 2
    code, body = _request(world, DEPLOY + "/scale", method="PUT", body=scale)  # same resourceVersion again
    assert (code, body["reason"]) == (409, "Conflict")
