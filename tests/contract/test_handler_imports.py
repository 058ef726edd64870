"""Every catalog step's handler exists once its runbook's ASL does, and only cluster steps load Kubernetes.

The Kubernetes client costs seconds of cold start; a step with ``kubernetes=False`` must not pay it. The
handlers are imported in a fresh interpreter, since ``sys.modules`` of this test process is shared.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from functions.catalog import RUNBOOKS, STEPS, Step
from tests.contract.asl_checks import ROOT

# Imports the modules in turn in one interpreter, noting after each whether kubernetes is loaded: exact for
# every module imported before the first one that loads it; the tests re-import the rest alone.
PROBE = """
import importlib, json, sys
report = []
for module, attribute in zip(sys.argv[1::2], sys.argv[2::2]):
    before = "kubernetes" in sys.modules
    loaded = importlib.import_module(module)
    report.append({"before": before, "kubernetes": "kubernetes" in sys.modules,
                   "handler": callable(getattr(loaded, attribute, None))})
print(json.dumps(report))
"""


def handler_module(step: Step) -> tuple[str, str]:
    module, _, attribute = step.handler.rpartition(".")
    return module, attribute


def exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def required(step: Step) -> bool:
    """A step's handler must exist once the ASL file of a runbook that uses it exists."""
    return any(
        step.name in runbook.steps and (ROOT / "statemachines" / runbook.asl_file).exists()
        for runbook in RUNBOOKS.values()
    )


def import_fresh(*targets: tuple[str, str]) -> list[dict[str, bool]]:
    """Import (module, handler attribute) pairs in order in a fresh interpreter; what each one loaded."""
    argv = [part for target in targets for part in target]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"importing {argv[::2]} failed:\n{result.stderr[-3000:]}"
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


# Steps whose handler is written, plus those that must be (their runbook's ASL exists): a missing one fails.
CHECKED = [step for step in STEPS.values() if exists(handler_module(step)[0]) or required(step)]


@pytest.fixture(scope="module")
def imported_together() -> dict[str, dict[str, bool]]:
    """One interpreter imports every existing handler, cluster steps last so they cannot mask the others."""
    steps = sorted((s for s in CHECKED if exists(handler_module(s)[0])), key=lambda s: s.kubernetes)
    return dict(zip([s.name for s in steps], import_fresh(*map(handler_module, steps)), strict=True))


@pytest.mark.parametrize("step", CHECKED, ids=[step.name for step in CHECKED])
def test_the_handler_exists_and_only_cluster_steps_load_kubernetes(
    step: Step, imported_together: dict[str, dict[str, bool]]
) -> None:
    module, attribute = handler_module(step)
    assert exists(module), f"{step.name}: {module} does not exist, but a runbook's ASL calls this step"
    loaded = imported_together[step.name]
    if loaded["before"]:  # an earlier module loaded kubernetes: only a fresh interpreter can tell
        loaded = import_fresh((module, attribute))[0]
    assert loaded["handler"], f"{step.name}: {module} has no callable {attribute}"
    if not step.kubernetes:
        assert not loaded["kubernetes"], f"{step.name} (kubernetes=False) loads the kubernetes package"


def test_the_probe_sees_which_module_loads_kubernetes() -> None:
    fixture = ("tests.contract.fixtures.imports_kubernetes", "lambda_handler")
    assert import_fresh(("functions.catalog", "runbook"), fixture, ("functions.core.errors", "nothing")) == [
        {"before": False, "kubernetes": False, "handler": True},
        {"before": False, "kubernetes": True, "handler": True},
        {"before": True, "kubernetes": True, "handler": False},
    ]
