"""KubeOps against the cluster simulator: the operations the runbooks use, with exact outcomes."""

from __future__ import annotations

import pytest

from functions.adapters.kubernetes import RESTARTED_AT
from functions.core.errors import DeploymentNotFound, NoRolloutHistory, TransientError, UnsafeToProceed
from tests.fixtures.kube import IMAGE, service_world, wait_until

NS, NAME, SELECTOR = "production", "sales-service", {"app": "sales-service"}
BAD = {f"{IMAGE}:v2.1.1": {"fault": "crash_after", "seconds": 120}}


def _done(kube_ops):
    return kube_ops.rollout_status(NS, NAME).state == "DONE"


def _patches(kube_sim):
    return [(m["verb"], m["path"].rsplit("/", 1)[-1], m["content_type"]) for m in kube_sim.mutations]


# ----- reads -----------------------------------------------------------------------------------------
def test_get_deployment_of_a_missing_deployment_raises_deployment_not_found(kube_sim, kube_ops):
    # Given a cluster without the deployment
    kube_sim.load(service_world())
    # When / Then
    with pytest.raises(DeploymentNotFound, match="production/nope"):
        kube_ops.get_deployment(NS, "nope")


def test_list_pods_reports_a_crash_looping_bad_deploy(kube_sim, kube_ops):
    # Given v2.1.1 deployed 20 minutes ago, which crashes 120 s after start
    kube_sim.load(service_world(images=BAD))
    # When
    pods = kube_ops.list_pods(NS, SELECTOR)
    # Then all three pods are Running but crash-looping, never ready, and have restarted
    assert len(pods) == 3
    for pod in pods:
        assert (pod.phase, pod.ready, pod.waiting_reasons) == ("Running", False, ["CrashLoopBackOff"])
        assert pod.restart_count >= 5
        assert pod.containers[0].image == f"{IMAGE}:v2.1.1"
        assert pod.containers[0].last_termination_reason == "Error"
        assert pod.containers[0].last_exit_code == 1
        assert pod.ip is not None and pod.ip.startswith("10.1.")
    assert len({pod.pod_template_hash for pod in pods}) == 1


def test_list_pods_reports_image_pull_failures(kube_sim, kube_ops):
    # Given the current image cannot be pulled
    kube_sim.load(service_world(images={f"{IMAGE}:v2.1.1": "imagepull"}))
    # When
    pods = kube_ops.list_pods(NS, SELECTOR)
    # Then
    assert {(p.phase, p.ready, tuple(p.waiting_reasons), p.restart_count) for p in pods} == {
        ("Pending", False, ("ImagePullBackOff",), 0)
    }


def test_rollout_history_lists_only_this_deployments_revisions_oldest_first(kube_sim, kube_ops):
    # Given another Deployment's ReplicaSet carries the same app label and a higher revision
    world = service_world()
    world["replicasets"] = [
        {
            "namespace": NS,
            "owner": "sales-service-canary",
            "labels": {"app": "sales-service"},
            "image": f"{IMAGE}:v9.9.9-canary",
            "revision": 7,
        }
    ]
    kube_sim.load(world)
    # When
    history = kube_ops.rollout_history(NS, NAME)
    # Then
    assert [(r.revision, r.images, r.replicas, r.change_cause) for r in history] == [
        (1, [f"{IMAGE}:v2.1.0"], 0, "deploy v2.1.0"),
        (2, [f"{IMAGE}:v2.1.1"], 3, "deploy v2.1.1"),
    ]
    assert all(r.replicaset == f"{NAME}-{r.pod_template_hash}" for r in history)
    assert history[1].ready_replicas == 3


# ----- rollback ---------------------------------------------------------------------------------------
def test_undo_rolls_back_to_the_previous_revision_like_kubectl(kube_sim, kube_ops):
    # Given the bad deploy
    kube_sim.load(service_world(images=BAD))
    old_rs = kube_ops.rollout_history(NS, NAME)[0].replicaset
    # When
    change = kube_ops.undo(NS, NAME, dry_run=False)
    # Then one JSON patch went out, and it says where we came from and went to
    assert _patches(kube_sim) == [("PATCH", NAME, "application/json-patch+json")]
    assert (change.changed, change.before, change.after) == (
        True,
        {"revision": 2, "images": [f"{IMAGE}:v2.1.1"]},
        {"revision": 1, "images": [f"{IMAGE}:v2.1.0"], "replicaset": old_rs},
    )
    deployment = kube_ops.get_deployment(NS, NAME)
    template = deployment["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == f"{IMAGE}:v2.1.0"
    assert "pod-template-hash" not in template["metadata"]["labels"]
    assert deployment["metadata"]["annotations"]["kubernetes.io/change-cause"] == "deploy v2.1.0"
    # and the controller reuses the old ReplicaSet as revision 3, and the service heals
    wait_until(lambda: _done(kube_ops))
    history = kube_ops.rollout_history(NS, NAME)
    assert [(r.revision, r.replicaset, r.replicas) for r in history][-1] == (3, old_rs, 3)
    assert all(p.ready for p in kube_ops.list_pods(NS, SELECTOR))
    assert kube_sim.service_health(NS, NAME)[0] == 200


def test_undo_to_a_given_revision(kube_sim, kube_ops):
    # Given three revisions
    revisions = [
        {"image": f"{IMAGE}:v2.0.0", "age_minutes": 9000},
        {"image": f"{IMAGE}:v2.1.0", "age_minutes": 4320},
        {"image": f"{IMAGE}:v2.1.1", "age_minutes": 20},
    ]
    kube_sim.load(service_world(revisions=revisions))
    # When
    change = kube_ops.undo(NS, NAME, to_revision=1, dry_run=False)
    # Then
    assert change.after["revision"] == 1
    assert kube_ops.get_deployment(NS, NAME)["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"{IMAGE}:v2.0.0"
    )


def test_undo_to_a_revision_that_does_not_exist_raises_no_rollout_history(kube_sim, kube_ops):
    kube_sim.load(service_world())
    with pytest.raises(NoRolloutHistory, match="revision 9"):
        kube_ops.undo(NS, NAME, to_revision=9, dry_run=False)
    assert kube_sim.mutations == []


def test_undo_without_a_previous_revision_raises_no_rollout_history(kube_sim, kube_ops):
    # Given only one revision, and another Deployment's ReplicaSet with overlapping labels
    world = service_world(revisions=[{"image": f"{IMAGE}:v2.1.1", "age_minutes": 20}])
    world["replicasets"] = [
        {
            "namespace": NS,
            "owner": "sales-canary",
            "labels": {"app": "sales-service"},
            "image": f"{IMAGE}:canary",
        }
    ]
    kube_sim.load(world)
    # When / Then: the other Deployment's ReplicaSet is not history of this one
    with pytest.raises(NoRolloutHistory, match='no rollout history found for deployment "sales-service"'):
        kube_ops.undo(NS, NAME, dry_run=False)
    assert kube_sim.mutations == []


def test_undo_ignores_replicasets_of_another_deployment_with_overlapping_labels(kube_sim, kube_ops):
    # Given another Deployment's ReplicaSet with the same labels and a newer revision number
    world = service_world(images=BAD)
    world["replicasets"] = [
        {
            "namespace": NS,
            "owner": "sales-canary",
            "labels": {"app": "sales-service"},
            "image": f"{IMAGE}:v9.9.9-canary",
            "revision": 5,
        }
    ]
    kube_sim.load(world)
    # When
    change = kube_ops.undo(NS, NAME, dry_run=False)
    # Then we go back to our own revision 1, not to the canary's template
    assert change.after["images"] == [f"{IMAGE}:v2.1.0"]


def test_undo_of_a_paused_deployment_is_refused_without_any_change(kube_sim, kube_ops):
    kube_sim.load(service_world(paused=True))
    with pytest.raises(UnsafeToProceed, match="paused"):
        kube_ops.undo(NS, NAME, dry_run=False)
    assert kube_sim.mutations == []


def test_undo_dry_run_reports_the_target_and_sends_no_mutation(kube_sim, kube_ops):
    kube_sim.load(service_world(images=BAD))
    change = kube_ops.undo(NS, NAME, dry_run=True)
    assert (change.dry_run, change.changed, change.after["revision"]) == (True, True, 1)
    assert change.summary.startswith("would roll back")
    assert kube_sim.mutations == []
    assert kube_ops.get_deployment(NS, NAME)["metadata"]["generation"] == 2


def test_undo_retried_after_success_does_not_roll_back_again(kube_sim, kube_ops):
    # Given a rollback from revision 2 that succeeded
    kube_sim.load(service_world(images=BAD))
    first = kube_ops.undo(NS, NAME, dry_run=False, from_revision=2)
    wait_until(lambda: _done(kube_ops))
    # When the step is retried with the same decision
    second = kube_ops.undo(NS, NAME, dry_run=False, from_revision=2)
    # Then it changes nothing (without the guard it would return to the bad revision)
    assert (first.changed, second.changed) == (True, False)
    assert len(kube_sim.mutations) == 1
    assert second.before == {"revision": 3, "images": [f"{IMAGE}:v2.1.0"]}


def test_undo_to_the_template_already_running_changes_nothing(kube_sim, kube_ops):
    kube_sim.load(service_world())
    change = kube_ops.undo(NS, NAME, to_revision=2, dry_run=False)
    assert (change.changed, change.after["revision"]) == (False, 2)
    assert kube_sim.mutations == []


# ----- restart ----------------------------------------------------------------------------------------
def test_restart_stamps_restarted_at_on_the_pod_template_and_cures_stuck_pods(kube_sim, kube_ops):
    # Given two of three pods deadlocked (running, not ready, no restarts)
    kube_sim.load(service_world(stuck_pods=2))
    assert sorted(p.ready for p in kube_ops.list_pods(NS, SELECTOR)) == [False, False, True]
    # When
    change = kube_ops.restart(NS, NAME, at="2026-12-03T17:00:00Z", dry_run=False)
    # Then the one strategic merge patch kubectl sends went out
    assert kube_sim.mutations[0]["body"] == {
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-12-03T17:00:00Z"}}}}
    }
    assert kube_sim.mutations[0]["content_type"] == "application/strategic-merge-patch+json"
    assert (change.before, change.after) == (
        {"restartedAt": None, "revision": 2},
        {"restartedAt": "2026-12-03T17:00:00Z"},
    )
    # and a new revision rolls out with all pods ready
    wait_until(lambda: _done(kube_ops))
    assert kube_ops.rollout_history(NS, NAME)[-1].revision == 3
    assert [p.ready for p in kube_ops.list_pods(NS, SELECTOR)] == [True, True, True]


def test_restart_retried_with_the_same_timestamp_changes_nothing(kube_sim, kube_ops):
    kube_sim.load(service_world())
    kube_ops.restart(NS, NAME, at="2026-12-03T17:00:00Z", dry_run=False)
    again = kube_ops.restart(NS, NAME, at="2026-12-03T17:00:00Z", dry_run=False)
    assert again.changed is False
    assert len(kube_sim.mutations) == 1


def test_restart_of_a_paused_deployment_is_refused(kube_sim, kube_ops):
    kube_sim.load(service_world(paused=True))
    with pytest.raises(UnsafeToProceed, match="paused"):
        kube_ops.restart(NS, NAME, at="2026-12-03T17:00:00Z", dry_run=False)
    assert kube_sim.mutations == []


def test_restart_dry_run_sends_no_mutation(kube_sim, kube_ops):
    kube_sim.load(service_world())
    change = kube_ops.restart(NS, NAME, at="2026-12-03T17:00:00Z", dry_run=True)
    assert (change.dry_run, change.changed) == (True, True)
    assert kube_sim.mutations == []


# ----- scale ------------------------------------------------------------------------------------------
def test_scale_up_cures_an_overload_and_is_idempotent(kube_sim, kube_ops):
    # Given 3 healthy pods of 150 rps each under 600 rps
    kube_sim.load(service_world(load={"rps": 600, "pod_capacity_rps": 150}))
    assert kube_sim.service_health(NS, NAME)[0] == 503
    assert kube_sim.service_health(NS, NAME)[1]["status"] == "overloaded"
    # When scaled to 5, twice
    first = kube_ops.scale(NS, NAME, 5, dry_run=False)
    second = kube_ops.scale(NS, NAME, 5, dry_run=False)
    # Then one merge patch on the scale subresource, no new revision, and the service is healthy again
    assert _patches(kube_sim) == [("PATCH", "scale", "application/merge-patch+json")]
    assert (first.changed, first.before, first.after) == (True, {"replicas": 3}, {"replicas": 5})
    assert second.changed is False
    wait_until(lambda: _done(kube_ops) and kube_ops.rollout_status(NS, NAME).ready == 5)
    assert [r.revision for r in kube_ops.rollout_history(NS, NAME)] == [1, 2]
    assert kube_sim.service_health(NS, NAME)[0] == 200


def test_scale_dry_run_sends_no_mutation(kube_sim, kube_ops):
    kube_sim.load(service_world())
    change = kube_ops.scale(NS, NAME, 6, dry_run=True)
    assert (change.changed, change.before, change.after) == (True, {"replicas": 3}, {"replicas": 6})
    assert kube_sim.mutations == []


def test_scale_of_a_missing_deployment_raises_deployment_not_found(kube_sim, kube_ops):
    kube_sim.load(service_world())
    with pytest.raises(DeploymentNotFound):
        kube_ops.scale(NS, "nope", 2, dry_run=False)


# ----- metrics ----------------------------------------------------------------------------------------
def test_pod_metrics_follow_the_load(kube_sim, kube_ops):
    # Given 300 rps over 3 ready pods of 150 rps capacity each (2/3 busy), 250m CPU request
    kube_sim.load(service_world(load={"rps": 300, "pod_capacity_rps": 150}))
    # When
    usage = kube_ops.pod_metrics(NS, SELECTOR)
    # Then
    assert usage is not None and len(usage) == 3
    for pod in usage:
        assert pod.cpu_millicores == pytest.approx(166.667, abs=0.01)
        assert (pod.cpu_request_millicores, pod.memory_limit_bytes) == (250.0, 512 * 2**20)
        assert 0 < pod.memory_bytes < 512 * 2**20


def test_pod_metrics_without_a_metrics_api_is_none(kube_sim, kube_ops):
    world = service_world()
    world["metrics_api"] = False
    kube_sim.load(world)
    assert kube_ops.pod_metrics(NS, SELECTOR) is None


# ----- failures ---------------------------------------------------------------------------------------
def test_an_unreachable_api_server_is_a_transient_error(kube_sim, kube_ops):
    kube_sim.load(service_world())
    kube_sim.stop()
    with pytest.raises(TransientError):
        kube_ops.rollout_status(NS, NAME)


@pytest.mark.parametrize("code", [429, 500, 503])
def test_throttling_and_server_faults_are_transient_errors(kube_sim, kube_ops, code):
    kube_sim.load(service_world())
    kube_sim.inject_failure(code, verb="GET", path_contains="/deployments/")
    with pytest.raises(TransientError, match=f"Kubernetes API {code}"):
        kube_ops.rollout_status(NS, NAME)
    assert kube_ops.rollout_status(NS, NAME).state == "DONE"  # the next call goes through


def test_a_conflicting_rollback_is_re_read_and_retried(kube_sim, kube_ops):
    # Given the first rollback PATCH meets a conflict
    kube_sim.load(service_world(images=BAD))
    kube_sim.inject_failure(409, verb="PATCH")
    # When
    change = kube_ops.undo(NS, NAME, dry_run=False)
    # Then it was sent again and went through once
    assert [m["code"] for m in kube_sim.mutations] == [409, 200]
    assert change.after["revision"] == 1


def test_a_rollback_whose_deployment_changed_underneath_is_recomputed(kube_sim, kube_ops):
    # Given someone scales the Deployment between our read and our patch (the resourceVersion test fails)
    kube_sim.load(service_world(images=BAD))
    real_deployment = kube_ops._deployment
    calls = []

    def racing_read(namespace, name):
        deployment = real_deployment(namespace, name)
        if not calls:
            kube_ops.scale(NS, NAME, 4, dry_run=False)
        calls.append(deployment["metadata"]["resourceVersion"])
        return deployment

    kube_ops._deployment = racing_read
    # When
    change = kube_ops.undo(NS, NAME, dry_run=False)
    # Then the stale patch was refused, the state re-read, and the rollback applied to the new state
    assert [m["code"] for m in kube_sim.mutations] == [200, 422, 200]
    assert len(calls) == 2 and calls[0] != calls[1]
    assert change.changed is True
    assert kube_ops.get_deployment(NS, NAME)["spec"]["replicas"] == 4


def test_a_forbidden_request_is_not_retried_but_named(kube_sim, kube_ops):
    from functions.adapters.kubernetes import KubeApiError

    kube_sim.load(service_world())
    kube_sim.inject_failure(403, verb="PATCH")
    with pytest.raises(KubeApiError, match="403"):
        kube_ops.scale(NS, NAME, 4, dry_run=False)


def test_pod_metrics_with_the_metrics_server_down_is_none(kube_sim, kube_ops):
    kube_sim.load(service_world())
    kube_sim.inject_failure(503, path_contains="/metrics.k8s.io/")
    assert kube_ops.pod_metrics(NS, SELECTOR) is None


def test_a_conflict_on_scale_or_restart_is_re_read_and_retried(kube_sim, kube_ops):
    kube_sim.load(service_world())
    kube_sim.inject_failure(409, verb="PATCH")
    assert kube_ops.scale(NS, NAME, 4, dry_run=False).changed is True
    kube_sim.inject_failure(409, verb="PATCH")
    assert kube_ops.restart(NS, NAME, at="2026-12-03T17:00:00Z", dry_run=False).changed is True
    assert [m["code"] for m in kube_sim.mutations] == [409, 200, 409, 200]


def test_endless_conflicts_end_as_a_transient_error(kube_sim, kube_ops):
    kube_sim.load(service_world())
    kube_sim.inject_failure(409, verb="PATCH", times=10)
    with pytest.raises(TransientError, match="kept changing"):
        kube_ops.scale(NS, NAME, 4, dry_run=False)
