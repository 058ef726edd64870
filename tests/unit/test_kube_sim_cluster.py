"""The simulated cluster's rules, without HTTP: hashes, surge arithmetic, crash loops, the world loader."""

from __future__ import annotations

import pytest

from runbook.sandbox.kube_sim import WorldError
from runbook.sandbox.kube_sim.cluster import (
    Cluster,
    _crashloop,
    default_template,
    resolve_int_or_percent,
    template_hash,
)
from runbook.sandbox.kube_sim.server import parse_field_selector, parse_label_selector
from runbook.sandbox.kube_sim.world import load_world
from tests.fixtures.kube import IMAGE, ManualClock, service_world

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "web:1"}]},
}


def test_the_template_hash_is_stable_and_ignores_the_hash_label():
    labelled = default_template(TEMPLATE)
    labelled["metadata"]["labels"]["pod-template-hash"] = "anything"
    assert template_hash(default_template(TEMPLATE)) == template_hash(labelled)
    assert len(template_hash(TEMPLATE)) == 10
    other = {**TEMPLATE, "spec": {"containers": [{"name": "web", "image": "web:2"}]}}
    assert template_hash(other) != template_hash(TEMPLATE)


def test_defaulting_is_idempotent():
    once = default_template(TEMPLATE)
    assert default_template(once) == once
    assert once["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    latest = default_template({"spec": {"containers": [{"name": "x", "image": "x"}]}})
    assert latest["spec"]["containers"][0]["imagePullPolicy"] == "Always"


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [
        ("25%", 3, True, 1),
        ("25%", 3, False, 0),
        ("25%", 10, True, 3),
        ("25%", 10, False, 2),
        (2, 10, True, 2),
    ],
)
def test_max_surge_rounds_up_and_max_unavailable_rounds_down(value, total, up, expected):
    assert resolve_int_or_percent(value, total, round_up=up) == expected


def test_crash_loop_back_off_doubles_to_five_minutes():
    # restarts come 10, 20, 40, 80, 160, 300, 300 s after each 2 s run
    assert _crashloop(0)[0:2] == (0, False)
    assert _crashloop(10.5)[0:2] == (1, True)
    assert _crashloop(13)[0:2] == (1, False)
    assert _crashloop(12 + 20 + 1)[0] == 2
    assert _crashloop(3600)[0] == 15


def test_label_and_field_selectors():
    labels = parse_label_selector("app=web,tier in (api, edge),!canary,env!=dev")
    assert labels({"app": "web", "tier": "api"}) is True
    assert labels({"app": "web", "tier": "api", "canary": "yes"}) is False
    assert labels({"app": "web", "tier": "db"}) is False
    assert labels({"app": "web", "tier": "edge", "env": "dev"}) is False
    fields = parse_field_selector("metadata.name=web,involvedObject.kind!=Pod")
    assert fields({"metadata": {"name": "web"}, "involvedObject": {"kind": "Deployment"}}) is True
    assert fields({"metadata": {"name": "web"}, "involvedObject": {"kind": "Pod"}}) is False


def test_a_world_with_two_identical_revisions_is_refused():
    same = [{"image": f"{IMAGE}:v1", "age_minutes": 100}, {"image": f"{IMAGE}:v1", "age_minutes": 10}]
    with pytest.raises(WorldError, match="same pod template"):
        load_world(Cluster(ManualClock().now), service_world(revisions=same), 0)


def test_a_world_with_an_unknown_fault_is_refused():
    with pytest.raises(WorldError, match="fault must be one of"):
        load_world(Cluster(ManualClock().now), service_world(images={"x": "explode"}), 0)


def test_a_settled_world_has_its_old_replicasets_at_zero_and_pods_from_the_deploy_time():
    clock = ManualClock(start=1_000_000.0)
    cluster = Cluster(clock.now)
    load_world(cluster, service_world(), clock.now())
    replicas = sorted(
        (rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], rs["spec"]["replicas"])
        for rs in cluster.items("replicasets")
    )
    assert replicas == [("1", 0), ("2", 3)]
    starts = {rt.start for rt in cluster.pod_rt.values()}
    assert starts == {1_000_000.0 - 20 * 60}
    assert [s["metadata"]["name"] for s in cluster.items("services")] == ["sales-service"]
