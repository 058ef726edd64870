"""Rollout status, moment by moment: the simulator on a clock that moves only when the test says so."""

from __future__ import annotations

import pytest

from tests.fixtures.kube import IMAGE, ManualClock, service_world

NS, NAME = "production", "sales-service"


@pytest.fixture
def sim_clock() -> ManualClock:
    return ManualClock()


def _set_image(kube_ops, image: str) -> None:
    """What ``kubectl set image`` sends: a strategic merge patch keyed by container name."""
    kube_ops.apps.patch_namespaced_deployment(
        NAME,
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": NAME, "image": image}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )


def _status(kube_ops):
    status = kube_ops.rollout_status(NS, NAME)
    return status.state, status.message


def test_a_settled_healthy_deployment_is_done(kube_sim, kube_ops):
    kube_sim.load(service_world())
    status = kube_ops.rollout_status(NS, NAME)
    assert (status.state, status.message) == ("DONE", 'deployment "sales-service" successfully rolled out')
    assert (status.generation, status.observed_generation, status.revision) == (2, 2, 2)
    assert (status.desired, status.updated, status.ready, status.available) == (3, 3, 3, 3)


def test_counters_are_not_trusted_until_the_new_generation_is_observed(kube_sim, kube_ops, sim_clock):
    # Given a settled deployment whose image just changed
    kube_sim.load(service_world())
    _set_image(kube_ops, f"{IMAGE}:v2.2.0")
    # When asked at once (the old counters still say 3/3/3)
    status = kube_ops.rollout_status(NS, NAME)
    # Then
    assert (status.state, status.message) == (
        "WAITING",
        "Waiting for deployment spec update to be observed...",
    )
    assert (status.generation, status.observed_generation, status.updated) == (3, 2, 3)
    # and a simulated second later the controller has observed it and started the rollout
    sim_clock.advance(1.0)
    assert _status(kube_ops) == (
        "WAITING",
        'Waiting for deployment "sales-service" rollout to finish: 1 out of 3 new replicas have been updated...',
    )
    sim_clock.advance(60)
    assert _status(kube_ops) == ("DONE", 'deployment "sales-service" successfully rolled out')
    assert kube_ops.rollout_status(NS, NAME).revision == 3


def test_a_partially_updated_rollout_reports_each_stage(kube_sim, kube_ops, sim_clock):
    # Given a new image whose pods need 30 s to become ready (maxSurge 1, maxUnavailable 0 for 3 replicas)
    kube_sim.load(service_world(images={f"{IMAGE}:v2.2.0": {"fault": "slow_start", "seconds": 30}}))
    _set_image(kube_ops, f"{IMAGE}:v2.2.0")
    prefix = 'Waiting for deployment "sales-service" rollout to finish: '
    seen = []
    for step in (1, 31, 30, 30):
        sim_clock.advance(step)
        seen.append(_status(kube_ops))
    assert seen == [
        ("WAITING", prefix + "1 out of 3 new replicas have been updated..."),
        ("WAITING", prefix + "2 out of 3 new replicas have been updated..."),
        ("WAITING", prefix + "1 old replicas are pending termination..."),
        ("DONE", 'deployment "sales-service" successfully rolled out'),
    ]


def test_pods_that_died_after_a_finished_rollout_leave_it_waiting_not_failed(kube_sim, kube_ops):
    # Given v2.1.1 rolled out 20 minutes ago and crashes 120 s after start
    kube_sim.load(service_world(images={f"{IMAGE}:v2.1.1": {"fault": "crash_after", "seconds": 120}}))
    # When / Then: kubectl would wait for availability; nothing timed out
    assert _status(kube_ops) == (
        "WAITING",
        'Waiting for deployment "sales-service" rollout to finish: 0 of 3 updated replicas are available...',
    )


def test_a_rollout_that_makes_no_progress_fails_at_its_deadline(kube_sim, kube_ops, sim_clock):
    # Given a new image that crash-loops from the start
    kube_sim.load(service_world(images={f"{IMAGE}:v2.2.0": "crashloop"}, progress_deadline_seconds=120))
    _set_image(kube_ops, f"{IMAGE}:v2.2.0")
    sim_clock.advance(1)
    # When the deadline has not passed yet
    sim_clock.advance(119)
    assert _status(kube_ops)[0] == "WAITING"
    # Then once it has, the Progressing condition says so and the status is FAILED
    sim_clock.advance(2)
    assert _status(kube_ops) == ("FAILED", 'deployment "sales-service" exceeded its progress deadline')
    progressing = [
        c for c in kube_ops.get_deployment(NS, NAME)["status"]["conditions"] if c["type"] == "Progressing"
    ]
    assert [(c["status"], c["reason"]) for c in progressing] == [("False", "ProgressDeadlineExceeded")]
    # and the old pods kept serving: maxUnavailable 0 never let the bad pod replace them
    assert kube_sim.service_health(NS, NAME)[0] == 200


def test_a_world_loaded_long_after_a_crash_looping_deploy_has_failed_already(kube_sim, kube_ops):
    kube_sim.load(service_world(images={f"{IMAGE}:v2.1.1": "crashloop"}))
    assert _status(kube_ops)[0] == "FAILED"


def test_a_paused_deployment_does_not_roll(kube_sim, kube_ops, sim_clock):
    # Given a paused deployment whose image changes
    kube_sim.load(service_world(paused=True))
    _set_image(kube_ops, f"{IMAGE}:v2.2.0")
    sim_clock.advance(120)
    # Then no new ReplicaSet appears and the old pods keep running
    assert [r.revision for r in kube_ops.rollout_history(NS, NAME)] == [1, 2]
    assert {p.containers[0].image for p in kube_ops.list_pods(NS, {"app": NAME})} == {f"{IMAGE}:v2.1.1"}


def test_crash_after_pods_are_ready_until_their_time_comes(kube_sim, kube_ops, sim_clock):
    # Given a deploy 60 s ago of an image that dies 120 s after start
    kube_sim.load(
        service_world(
            images={f"{IMAGE}:v2.1.1": {"fault": "crash_after", "seconds": 120}},
            revisions=[
                {"image": f"{IMAGE}:v2.1.0", "age_minutes": 4320},
                {"image": f"{IMAGE}:v2.1.1", "age_minutes": 1},
            ],
        )
    )
    assert [p.ready for p in kube_ops.list_pods(NS, {"app": NAME})] == [True, True, True]
    assert kube_sim.service_health(NS, NAME)[0] == 200
    # When a minute more passes
    sim_clock.advance(61)
    # Then they crash, and the service is down
    pods = kube_ops.list_pods(NS, {"app": NAME})
    assert {(p.ready, tuple(p.waiting_reasons)) for p in pods} == {(False, ("CrashLoopBackOff",))}
    assert kube_sim.service_health(NS, NAME) == (
        503,
        {
            "service": NAME,
            "ready_pods": 0,
            "load_rps": 0.0,
            "capacity_rps": 0.0,
            "status": "unavailable",
            "reason": "no ready pods",
        },
    )
    assert kube_sim.ready_pod_ips(NS, {"app": NAME}) == []
    assert sorted(kube_sim.pod_ips(NS, {"app": NAME}).values()) == [False, False, False]
