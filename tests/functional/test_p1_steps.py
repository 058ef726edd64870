"""The P1 mutating steps against the cluster simulator: a Lambda retried by Step Functions changes nothing twice,
and refused states change nothing at all."""

from __future__ import annotations

import pytest

from functions.core.config import parse_settings
from functions.core.errors import InvalidInput, UnsafeToProceed
from functions.logic import p1_steps
from tests.fixtures.envelopes import p1_envelope
from tests.fixtures.kube import service_world

ENTERED = "2026-12-03T09:45:52.123Z"


@pytest.fixture
def settings():
    return parse_settings(
        {
            "allowed_namespaces": ["production"],
            "services": {
                "sales-service": {
                    "namespace": "production",
                    "cluster": "test-cluster",
                    "health": {"primary": "http://127.0.0.1:1/health"},
                    "max_replicas": 6,
                }
            },
        }
    )


def envelope(dry_run=False, namespace="production"):
    return p1_envelope(dry_run=dry_run, namespace=namespace, cluster="test-cluster")


def state(action, scale_to=None, revision=2):
    return {
        "entered_at": ENTERED,
        "plan": {
            "status": "CHANGED",
            "summary": "",
            "details": {"action": action, "reason": "r", "scale_to": scale_to, "budget_seconds": 300},
        },
        "findings": {
            "history": {"status": "OK", "summary": "", "details": {"current": {"revision": revision}}}
        },
    }


def writes(sim):
    return [(m["verb"], m["path"]) for m in sim.mutations if not m.get("dry_run")]


def test_a_retried_restart_restarts_once(kube_sim, kube_ops, settings):
    kube_sim.load(service_world())

    first = p1_steps.restart_deployment(state("RESTART"), envelope(), settings, kube_ops)
    retry = p1_steps.restart_deployment(state("RESTART"), envelope(), settings, kube_ops)

    assert (first.status, retry.status) == ("CHANGED", "NOOP")
    assert len(writes(kube_sim)) == 1
    template = kube_sim.objects("deployments", "production")[0]["spec"]["template"]
    assert template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == "2026-12-03T09:45:52Z"


def test_a_retried_rollback_does_not_roll_back_again(kube_sim, kube_ops, settings):
    kube_sim.load(service_world())

    first = p1_steps.rollback_deployment(state("ROLLBACK", revision=2), envelope(), settings, kube_ops)
    retry = p1_steps.rollback_deployment(state("ROLLBACK", revision=2), envelope(), settings, kube_ops)

    assert (first.status, retry.status) == ("CHANGED", "NOOP")
    assert len(writes(kube_sim)) == 1
    image = kube_sim.objects("deployments", "production")[0]["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    assert image.endswith(":v2.1.0")


def test_a_retried_scale_up_scales_once(kube_sim, kube_ops, settings):
    kube_sim.load(service_world())

    first = p1_steps.scale_deployment(state("SCALE_UP", scale_to=6), envelope(), settings, kube_ops)
    retry = p1_steps.scale_deployment(state("SCALE_UP", scale_to=6), envelope(), settings, kube_ops)

    assert (first.status, retry.status) == ("CHANGED", "NOOP")
    assert first.details["before"]["replicas"] == 3 and first.details["after"]["replicas"] == 6
    assert writes(kube_sim) == [
        ("PATCH", "/apis/apps/v1/namespaces/production/deployments/sales-service/scale")
    ]


@pytest.mark.parametrize("step", ["restart_deployment", "rollback_deployment", "scale_deployment"])
def test_dry_runs_report_and_write_nothing(kube_sim, kube_ops, settings, step):
    kube_sim.load(service_world())

    result = getattr(p1_steps, step)(
        state("SCALE_UP", scale_to=5), envelope(dry_run=True), settings, kube_ops
    )

    assert result.status == "DRY_RUN"
    assert kube_sim.mutations == []


def test_scale_above_the_maximum_is_refused(kube_sim, kube_ops, settings):
    kube_sim.load(service_world())

    with pytest.raises(UnsafeToProceed, match="above the configured maximum 6"):
        p1_steps.scale_deployment(state("SCALE_UP", scale_to=7), envelope(), settings, kube_ops)
    assert kube_sim.mutations == []


def test_a_namespace_outside_the_allowed_ones_is_refused(kube_sim, kube_ops, settings):
    kube_sim.load(service_world(namespace="kube-system"))

    with pytest.raises(UnsafeToProceed, match="not in allowed_namespaces"):
        p1_steps.restart_deployment(state("RESTART"), envelope(namespace="kube-system"), settings, kube_ops)
    assert kube_sim.mutations == []


def test_a_paused_deployment_is_not_restarted(kube_sim, kube_ops, settings):
    kube_sim.load(service_world(paused=True))

    with pytest.raises(UnsafeToProceed):
        p1_steps.restart_deployment(state("RESTART"), envelope(), settings, kube_ops)
    assert writes(kube_sim) == []


def test_a_mutating_step_without_its_retry_key_is_refused(kube_sim, kube_ops, settings):
    kube_sim.load(service_world())
    without = state("RESTART")
    del without["entered_at"]

    with pytest.raises(InvalidInput, match="entered_at"):
        p1_steps.restart_deployment(without, envelope(), settings, kube_ops)
