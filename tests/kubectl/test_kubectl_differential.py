"""KubeOps against kubectl: two identical worlds on one frozen clock, kubectl acts on one, KubeOps on the twin,
and the resulting objects (and requests) must be the same."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from functions.core.clock import iso_now
from functions.core.errors import NoRolloutHistory, UnsafeToProceed
from tests.fixtures.kube import IMAGE, service_world

NS, NAME = "production", "sales-service"
BAD = {f"{IMAGE}:v2.1.1": {"fault": "crash_after", "seconds": 120}}
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")


def _shape(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what differs between two worlds by construction (uids, resource versions)."""
    clean = copy.deepcopy(obj)
    meta = clean["metadata"]
    for key in ("uid", "resourceVersion", "managedFields"):
        meta.pop(key, None)
    for ref in meta.get("ownerReferences") or []:
        ref.pop("uid", None)
    return clean


def _world_objects(sim, resource: str) -> list[dict[str, Any]]:
    return sorted((_shape(o) for o in sim.objects(resource, NS)), key=lambda o: o["metadata"]["name"])


def _requests(sim) -> list[tuple[str, str, str, Any]]:
    return [(m["verb"], m["path"], m["content_type"].split(";")[0], m["body"]) for m in sim.mutations]


@pytest.fixture
def twins(kube_sim, twin_sim, ops_for):
    """Load the same world into both simulators; returns (kubectl's sim, KubeOps' sim, KubeOps)."""

    def load(world: dict[str, Any]):
        kube_sim.load(copy.deepcopy(world))
        twin_sim.load(copy.deepcopy(world))
        return kube_sim, twin_sim, ops_for(twin_sim)

    return load


def test_undo_sends_kubectls_patch_and_leaves_the_same_world(twins, kubectl, sim_clock):
    # Given the same bad deploy twice
    ref, ours, ops = twins(service_world(images=BAD))
    # When kubectl rolls one back and KubeOps the other
    assert kubectl(ref, "rollout", "undo", f"deployment/{NAME}").returncode == 0
    ops.undo(NS, NAME, dry_run=False)
    # Then our request is kubectl's JSON patch (behind one resourceVersion test of our own)
    (kubectl_patch,) = _requests(ref)
    (our_patch,) = _requests(ours)
    assert our_patch[:3] == kubectl_patch[:3]
    assert our_patch[3][0]["op"] == "test"
    assert our_patch[3][1:] == kubectl_patch[3]
    # and the Deployments, ReplicaSets and (after the rollout) statuses are the same
    assert _world_objects(ours, "deployments") == _world_objects(ref, "deployments")
    sim_clock.advance(60)
    assert _world_objects(ours, "deployments") == _world_objects(ref, "deployments")
    assert _world_objects(ours, "replicasets") == _world_objects(ref, "replicasets")


def test_undo_to_a_revision_matches_kubectl(twins, kubectl, sim_clock):
    revisions = [
        {"image": f"{IMAGE}:v2.0.0", "age_minutes": 9000, "change_cause": "deploy v2.0.0"},
        {"image": f"{IMAGE}:v2.1.0", "age_minutes": 4320, "change_cause": "deploy v2.1.0"},
        {"image": f"{IMAGE}:v2.1.1", "age_minutes": 20},
    ]
    ref, ours, ops = twins(service_world(revisions=revisions))
    assert kubectl(ref, "rollout", "undo", f"deployment/{NAME}", "--to-revision=1").returncode == 0
    ops.undo(NS, NAME, to_revision=1, dry_run=False)
    sim_clock.advance(60)
    assert _world_objects(ours, "deployments") == _world_objects(ref, "deployments")
    assert _world_objects(ours, "replicasets") == _world_objects(ref, "replicasets")


def test_undo_to_the_running_template_is_skipped_by_both(twins, kubectl):
    ref, ours, ops = twins(service_world())
    result = kubectl(ref, "rollout", "undo", f"deployment/{NAME}", "--to-revision=2")
    assert result.stdout.strip() == (
        f"deployment.apps/{NAME} skipped rollback (current template already matches revision 2)"
    )
    assert ops.undo(NS, NAME, to_revision=2, dry_run=False).changed is False
    assert ref.mutations == ours.mutations == []


def test_undo_of_a_paused_deployment_is_refused_by_both(twins, kubectl):
    ref, ours, ops = twins(service_world(paused=True))
    result = kubectl(ref, "rollout", "undo", f"deployment/{NAME}")
    assert result.returncode == 1
    assert "you cannot rollback a paused deployment" in result.stderr
    with pytest.raises(UnsafeToProceed):
        ops.undo(NS, NAME, dry_run=False)
    assert ref.mutations == ours.mutations == []


def test_undo_without_history_is_refused_by_both_with_the_same_words(twins, kubectl):
    world = service_world(revisions=[{"image": f"{IMAGE}:v2.1.1", "age_minutes": 20}])
    world["replicasets"] = [
        {
            "namespace": NS,
            "owner": "sales-canary",
            "labels": {"app": NAME},
            "image": f"{IMAGE}:canary",
            "revision": 4,
        }
    ]
    ref, ours, ops = twins(world)
    result = kubectl(ref, "rollout", "undo", f"deployment/{NAME}")
    assert result.returncode == 1
    assert f'no rollout history found for deployment "{NAME}"' in result.stderr
    with pytest.raises(NoRolloutHistory, match=f'no rollout history found for deployment "{NAME}"'):
        ops.undo(NS, NAME, dry_run=False)
    assert ref.mutations == ours.mutations == []


def test_restart_sets_the_same_annotation_key_in_the_same_format(twins, kubectl, sim_clock):
    ref, ours, ops = twins(service_world())
    assert kubectl(ref, "rollout", "restart", f"deployment/{NAME}").returncode == 0
    ops.restart(NS, NAME, at=iso_now(), dry_run=False)
    # Then both requests are strategic merge patches of that one annotation
    assert (
        [r[2] for r in _requests(ref)]
        == [r[2] for r in _requests(ours)]
        == ["application/strategic-merge-patch+json"]
    )
    (ref_deploy,), (our_deploy,) = _world_objects(ref, "deployments"), _world_objects(ours, "deployments")
    ref_value = ref_deploy["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    our_value = our_deploy["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    assert RFC3339.match(ref_value) and RFC3339.match(our_value)
    # and apart from the timestamps the Deployments are the same, as is the rollout that follows
    our_deploy["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT] = ref_value
    assert our_deploy == ref_deploy
    sim_clock.advance(60)

    def rollout(sim):
        return [
            (rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], rs["spec"]["replicas"])
            for rs in sorted(
                sim.objects("replicasets", NS), key=lambda rs: rs["metadata"]["creationTimestamp"]
            )
        ]

    assert rollout(ours) == rollout(ref) == [("1", 0), ("2", 0), ("3", 3)]


def test_restart_of_a_paused_deployment_is_refused_by_both(twins, kubectl):
    ref, ours, ops = twins(service_world(paused=True))
    result = kubectl(ref, "rollout", "restart", f"deployment/{NAME}")
    assert result.returncode == 1
    assert "paused" in result.stderr
    with pytest.raises(UnsafeToProceed):
        ops.restart(NS, NAME, at=iso_now(), dry_run=False)
    assert ref.mutations == ours.mutations == []


def test_scale_sends_the_same_request_and_reaches_the_same_state(twins, kubectl, sim_clock):
    ref, ours, ops = twins(service_world())
    assert kubectl(ref, "scale", f"deployment/{NAME}", "--replicas=6").returncode == 0
    ops.scale(NS, NAME, 6, dry_run=False)
    assert _requests(ours) == _requests(ref)
    sim_clock.advance(30)
    assert _world_objects(ours, "deployments") == _world_objects(ref, "deployments")
    assert _world_objects(ours, "replicasets") == _world_objects(ref, "replicasets")


def _set_image(sim, ops, image: str) -> None:
    ops.apps.patch_namespaced_deployment(
        NAME,
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": NAME, "image": image}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )


SLOW = {f"{IMAGE}:v2.2.0": {"fault": "slow_start", "seconds": 30}}
# situation: world, image set afterwards, clock steps, expected verdict, words in the message
SITUATIONS = {
    "done": (service_world(), None, [], "DONE", "successfully rolled out"),
    "generation not observed": (
        service_world(),
        f"{IMAGE}:v2.2.0",
        [],
        "WAITING",
        "spec update to be observed",
    ),
    "partially updated": (
        service_world(images=SLOW),
        f"{IMAGE}:v2.2.0",
        [1],
        "WAITING",
        "1 out of 3 new replicas have been updated",
    ),
    "old replicas pending termination": (
        service_world(images=SLOW),
        f"{IMAGE}:v2.2.0",
        [1, 31, 30],
        "WAITING",
        "1 old replicas are pending termination",
    ),
    "pods died after the rollout": (
        service_world(images=BAD),
        None,
        [],
        "WAITING",
        "0 of 3 updated replicas are available",
    ),
    "progress deadline exceeded": (
        service_world(images={f"{IMAGE}:v2.1.1": "crashloop"}),
        None,
        [],
        "FAILED",
        "exceeded its progress deadline",
    ),
    "new pods crash-looping before the deadline": (
        service_world(images={f"{IMAGE}:v2.2.0": "crashloop"}),
        f"{IMAGE}:v2.2.0",
        [1, 100],
        "WAITING",
        "1 out of 3 new replicas have been updated",
    ),
}


@pytest.mark.parametrize("situation", SITUATIONS)
def test_rollout_status_gives_kubectls_verdict(situation, kube_sim, ops_for, kubectl, sim_clock):
    world, new_image, steps, verdict, words = SITUATIONS[situation]
    kube_sim.load(copy.deepcopy(world))
    ops = ops_for(kube_sim)
    if new_image:
        _set_image(kube_sim, ops, new_image)
    for step in steps:
        sim_clock.advance(step)
    # When both look at the same frozen moment
    result = kubectl(kube_sim, "rollout", "status", f"deployment/{NAME}", "--watch=false")
    status = ops.rollout_status(NS, NAME)
    # Then they agree on the verdict and the words
    assert (status.state, words in status.message) == (verdict, True)
    if status.state == "FAILED":
        assert result.returncode == 1
        assert result.stderr.strip() == f"error: {status.message}"
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == status.message
        assert ("successfully rolled out" in result.stdout) == (status.state == "DONE")
