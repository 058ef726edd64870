"""The real kubectl 1.32 works against the simulator unchanged (with an EKS token in its kubeconfig)."""

from __future__ import annotations

import json
import threading

from tests.fixtures.kube import IMAGE, service_world

NAME = "sales-service"
BAD = {f"{IMAGE}:v2.1.1": {"fault": "crash_after", "seconds": 120}}


def test_kubectl_get_deployments_replicasets_and_pods(kube_sim, kubectl):
    kube_sim.load(service_world(images=BAD))
    result = kubectl(kube_sim, "get", "deploy,rs,pods")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == [f"deployment.apps/{NAME}", "0/3", "3", "0"]
    rs_rows = [line.split() for line in lines if line.startswith("replicaset.apps/")]
    assert sorted(row[1:4] for row in rs_rows) == [["0", "0", "0"], ["3", "3", "0"]]
    pod_rows = [line.split() for line in lines if line.startswith("pod/")]
    assert [row[1:3] for row in pod_rows] == [["0/1", "CrashLoopBackOff"]] * 3


def test_kubectl_get_json_returns_the_stored_objects(kube_sim, kubectl):
    kube_sim.load(service_world())
    result = kubectl(kube_sim, "get", "deployment", NAME, "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["spec"] == kube_sim.objects("deployments", "production")[0]["spec"]


def test_kubectl_without_a_valid_token_is_refused(kube_sim, kubectl, tmp_path):
    kube_sim.load(service_world())
    result = kubectl(kube_sim, "get", "pods", "--token", "not-an-eks-token")
    assert result.returncode == 1
    assert "Unauthorized" in result.stderr or "must be logged in" in result.stderr


def test_kubectl_scale_patches_the_scale_subresource(kube_sim, kubectl):
    kube_sim.load(service_world())
    result = kubectl(kube_sim, "scale", f"deployment/{NAME}", "--replicas=5")
    assert (result.returncode, result.stdout.strip()) == (0, f"deployment.apps/{NAME} scaled")
    assert [(m["verb"], m["path"].rsplit("/", 1)[-1], m["body"]) for m in kube_sim.mutations] == [
        ("PATCH", "scale", {"spec": {"replicas": 5}})
    ]


def test_kubectl_rollout_restart_undo_and_status(kube_sim, kubectl, sim_clock):
    kube_sim.load(service_world(images=BAD))
    undo = kubectl(kube_sim, "rollout", "undo", f"deployment/{NAME}")
    assert (undo.returncode, undo.stdout.strip()) == (0, f"deployment.apps/{NAME} rolled back")
    sim_clock.advance(60)
    status = kubectl(kube_sim, "rollout", "status", f"deployment/{NAME}", "--watch=false")
    assert (status.returncode, status.stdout.strip()) == (0, f'deployment "{NAME}" successfully rolled out')
    restart = kubectl(kube_sim, "rollout", "restart", f"deployment/{NAME}")
    assert (restart.returncode, restart.stdout.strip()) == (0, f"deployment.apps/{NAME} restarted")
    sim_clock.advance(1)  # the controller sees the new template a simulated second later
    history = kubectl(kube_sim, "rollout", "history", f"deployment/{NAME}")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["2", "3", "4"]


def test_kubectl_top_pods_reads_the_metrics_api(kube_sim, kubectl):
    kube_sim.load(service_world(load={"rps": 300, "pod_capacity_rps": 150}))
    result = kubectl(kube_sim, "top", "pods", "--no-headers")
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["167m"] * 3


def test_kubectl_rollout_status_watches_the_rollout_to_its_end(kube_sim, kubectl, sim_clock):
    # Given a rollback under way, and simulated time running 100x in the background
    kube_sim.load(service_world(images=BAD))
    assert kubectl(kube_sim, "rollout", "undo", f"deployment/{NAME}").returncode == 0
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.01):
            sim_clock.advance(1)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        # When kubectl watches (its default) instead of looking once
        result = kubectl(kube_sim, "rollout", "status", f"deployment/{NAME}", "--timeout=20s")
    finally:
        stop.set()
        ticker.join()
    # Then it saw the rollout progress and finish
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stderr
    assert lines[-1] == f'deployment "{NAME}" successfully rolled out'
    assert all(line.startswith(f'Waiting for deployment "{NAME}" rollout to finish') for line in lines[:-1])
