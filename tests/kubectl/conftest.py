"""Real kubectl as the reference: a temporary kubeconfig pointing at a simulator, with an EKS token."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.eks_auth import build_api_client, get_token
from runbook.sandbox.kube_sim import KubeSimulator
from tests.fixtures.kube import ManualClock

KUBECTL = shutil.which("kubectl")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.kubectl)
            if KUBECTL is None:
                item.add_marker(
                    pytest.mark.skip(reason="kubectl is not on the PATH: differential tests skipped")
                )


@pytest.fixture
def sim_clock() -> ManualClock:
    """kubectl and KubeOps are compared at the same frozen moment; the test moves time."""
    return ManualClock()


def _started(sim_clock: ManualClock, *, tls: bool) -> KubeSimulator:
    sim = KubeSimulator(sim_clock.now, require_token=tls, tls=tls)
    sim.start()
    return sim


@pytest.fixture
def kube_sim(sim_clock: ManualClock) -> Iterator[KubeSimulator]:
    """Over TLS with EKS tokens required: kubectl sends a bearer token only over https."""
    sim = _started(sim_clock, tls=True)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def twin_sim(sim_clock: ManualClock) -> Iterator[KubeSimulator]:
    """A second simulator on the same clock: kubectl acts on one world, KubeOps on its twin."""
    sim = _started(sim_clock, tls=True)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def ops_for() -> Iterator[Callable[[KubeSimulator], Any]]:
    from functions.adapters.kubernetes import KubeOps

    clients: list[Any] = []

    def make(sim: KubeSimulator) -> Any:
        api = build_api_client(sim.url, sim.ca_data, lambda: get_token("test-cluster"))
        clients.append(api)
        return KubeOps(api)

    yield make
    for api in clients:
        api.close()


@pytest.fixture
def kubectl(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``kubectl(sim, *args)``: run the real kubectl against ``sim`` (namespace production)."""

    def run(sim: KubeSimulator, *args: str) -> subprocess.CompletedProcess[str]:
        config = tmp_path / f"kubeconfig-{sim.url.rsplit(':', 1)[-1]}"
        token = get_token("test-cluster").value
        config.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: sim\n  cluster:\n    server: {sim.url}\n"
            f"    certificate-authority-data: {sim.ca_data}\n"
            f"users:\n- name: eks\n  user:\n    token: {token}\n"
            "contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: eks\n    namespace: production\n"
            "current-context: sim\n"
        )
        env = {**os.environ, "KUBECONFIG": str(config), "HOME": str(tmp_path), "TZ": "UTC"}
        assert KUBECTL is not None
        return subprocess.run(
            [KUBECTL, "--cache-dir", str(tmp_path / "cache"), "--request-timeout", "10s", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )

    return run
