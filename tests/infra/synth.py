"""Synthesize the CDK app once per test session (shared by pytest-xdist workers through a file lock).

Bundling is skipped (context ``aws:cdk:bundling-stacks: []``), so these tests need neither pip nor the network;
the bundler itself is tested on its own in test_bundling.py and measured by bench/synth.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
STACK = "RunbookAutopilot"
VPC_CONTEXT = {
    "vpcId": "vpc-0123456789abcdef0",
    "vpcAvailabilityZones": ["us-east-1a", "us-east-1b"],
    "vpcPrivateSubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
}


@dataclass(frozen=True)
class Synth:
    """A synthesized app: its template, the validation (cdk-nag) outcome and what was deployed."""

    out: Path
    template: dict[str, Any]
    info: dict[str, Any]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {key: res for key, res in self.template["Resources"].items() if res["Type"] == kind}


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def synth_once(
    out: Path,
    *,
    context: dict[str, Any],
    statemachines_dir: Path,
    runbooks: dict[str, Any] | None = None,
    steps: dict[str, Any] | None = None,
) -> Synth:
    """Synthesize into ``out`` unless a worker already did; the result is read back from disk."""
    with _locked(out.with_suffix(".lock")):
        done = out / "info.json"
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)
            _synth(out, context=context, statemachines_dir=statemachines_dir, runbooks=runbooks, steps=steps)
    return Synth(
        out=out,
        template=json.loads((out / f"{STACK}.template.json").read_text()),
        info=json.loads((out / "info.json").read_text()),
    )


def _synth(
    out: Path,
    *,
    context: dict[str, Any],
    statemachines_dir: Path,
    runbooks: dict[str, Any] | None,
    steps: dict[str, Any] | None,
) -> None:
    import aws_cdk as cdk

    from functions import catalog
    from infra.app import build

    started = time.monotonic()
    app = cdk.App(context={"aws:cdk:bundling-stacks": [], **context}, outdir=str(out))
    runbooks_patch = mock.patch.dict(catalog.RUNBOOKS, runbooks or {}, clear=bool(runbooks))
    steps_patch = mock.patch.dict(catalog.STEPS, steps or {})  # added to the real steps
    error = None
    with runbooks_patch, steps_patch:
        stack = build(app, statemachines_dir=statemachines_dir)
        info: dict[str, Any] = {
            "runbooks": [runbook.name for runbook in stack.runbooks],
            # The text each machine was built from (the files may be edited while the tests run).
            "asl_texts": {name: m.definition_text for name, m in stack.machines.items()},
            "machines": {
                name: stack.resolve(m.state_machine.node.default_child.logical_id)
                for name, m in stack.machines.items()
            },
            "functions": {
                name: stack.resolve(f.function.node.default_child.logical_id)
                for name, f in stack.functions.items()
            },
            "roles": {
                name: stack.resolve(f.role.node.default_child.logical_id)
                for name, f in stack.functions.items()
            },
            "topics": {
                lvl: stack.resolve(t.node.default_child.logical_id)
                for lvl, t in stack.escalation.topics.items()
            },
        }
        try:
            app.synth()
        except RuntimeError as failure:  # cdk-nag findings fail the synth; keep the report for the test
            error = str(failure)
    info["validation_error"] = error
    info["seconds"] = round(time.monotonic() - started, 1)
    (out / "info.json").write_text(json.dumps(info, indent=1))
