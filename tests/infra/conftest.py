"""One synth of the real app (real catalog, real statemachines/) and one of a fixture catalog that has scheduled
and alarm-routed runbooks the real catalog may not have yet. Each runs once per session, shared by workers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from functions.catalog import RUNBOOKS, Runbook, Step
from tests.infra.synth import FIXTURES, ROOT, VPC_CONTEXT, Synth, synth_once

FIXTURE_RUNBOOKS = {
    "p1-service-down": RUNBOOKS["p1-service-down"],
    "fixture-db-maintenance": Runbook(
        name="fixture-db-maintenance",
        asl_file="fixture_scheduled.asl.json",
        description="Fixture: weekly maintenance",
        steps=("NormalizeInput", "PublishIncidentUpdate"),
        timeout_minutes=60,
        triggers=("schedule:db_maintenance", "manual"),
        extra_placeholders=("TopicArnL2",),
    ),
    "fixture-daily-health-check": Runbook(
        name="fixture-daily-health-check",
        asl_file="fixture_scheduled.asl.json",
        description="Fixture: daily health check",
        steps=("NormalizeInput", "PublishIncidentUpdate"),
        timeout_minutes=30,
        triggers=("schedule:daily_health_check",),
        extra_placeholders=("TopicArnL2",),
    ),
    "p2-high-error-rate": Runbook(
        name="p2-high-error-rate",
        asl_file="fixture_locked.asl.json",
        description="Fixture: P2 started by the error-rate alarm, taking the target lock",
        steps=("NormalizeInput", "FixtureTakeLock"),
        timeout_minutes=30,
        triggers=("alarm",),
        extra_placeholders=("TopicArnL2",),
    ),
}


# A step with the lock need (until the catalog's lock steps are wired into a runbook).
FIXTURE_STEPS = {
    "FixtureTakeLock": Step(
        "FixtureTakeLock",
        "functions.handlers.acquire_target_lock.lambda_handler",
        "Fixture: take the one-run-per-target lock",
        aws=("dynamodb:lock",),  # type: ignore[arg-type]  # until AwsNeed lists it
    )
}


def _shared(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    # Under xdist each worker's base temp dir is popen-gwN inside this run's directory: share that one.
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


@pytest.fixture(scope="session")
def app_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app as `make synth` builds it (bundling skipped), placed in a VPC."""
    return synth_once(
        _shared(tmp_path_factory, "infra-app"), context=VPC_CONTEXT, statemachines_dir=ROOT / "statemachines"
    )


@pytest.fixture(scope="session")
def fixture_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """A catalog with schedules and a P2 runbook, without a VPC."""
    machines = _shared(tmp_path_factory, "fixture-statemachines")
    machines.mkdir(parents=True, exist_ok=True)
    for path in (FIXTURES / "statemachines").glob("*.asl.json"):
        shutil.copy(path, machines / path.name)
    return synth_once(
        _shared(tmp_path_factory, "infra-fixture"),
        context={},
        statemachines_dir=machines,
        runbooks=FIXTURE_RUNBOOKS,
        steps=FIXTURE_STEPS,
    )
