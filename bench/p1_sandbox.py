"""Measure the P1 demo in the sandbox: wall time, the share spent outside simulated waits, the investigation's
time against its slowest check (they must overlap), and state transitions per run.

    .venv/bin/python bench/p1_sandbox.py [--scenario bad-deploy] [--runs 3] [--scale 60]

Writes bench/results/p1_sandbox.json. Timestamps come from the execution history (moto stamps events with
the wall clock), so the numbers are what a person watching `make demo` waits for.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from runbook.sandbox.runtime import Sandbox
from runbook.sandbox.scenarios import REPO, load_scenario

CHECKS = (
    "Check the health endpoints",
    "Check the load balancer targets",
    "Check the pods",
    "Check the rollout history",
    "Check the resource usage",
    "Check the dependencies",
)


def _ts(event: dict[str, Any]) -> float:
    stamp = event["timestamp"]
    return float(stamp.timestamp()) if hasattr(stamp, "timestamp") else float(stamp)


def spans(events: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Real-time spans per state name, from StateEntered to the matching StateExited."""
    opened: dict[str, list[float]] = {}
    out: dict[str, list[tuple[float, float]]] = {}
    for event in events:
        if "stateEnteredEventDetails" in event:
            opened.setdefault(event["stateEnteredEventDetails"]["name"], []).append(_ts(event))
        elif "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            if opened.get(name):
                out.setdefault(name, []).append((opened[name].pop(0), _ts(event)))
    return out


def measure(sandbox: Sandbox, scenario: str) -> dict[str, Any]:
    sandbox.load(load_scenario(scenario))
    payload = json.loads(
        (REPO / (sandbox.scenario.event or "events/alarm-sales-service-5xx.json")).read_text()
    )
    started = time.monotonic()
    run = sandbox.run("p1-service-down", payload)
    wall = time.monotonic() - started
    events = run.events
    by_state = spans(events)
    execution = _ts(events[-1]) - _ts(events[0])
    waits = sum(
        end - start for name, items in by_state.items() for start, end in items if name.startswith("Wait")
    )
    parallel = by_state["Investigate the service"][0]
    checks = {name: by_state[name][0][1] - by_state[name][0][0] for name in CHECKS if name in by_state}
    return {
        "scenario": scenario,
        "outcome": run.output.get("outcome"),
        "wall_seconds": round(wall, 3),
        "execution_seconds": round(execution, 3),
        "simulated_wait_seconds_real": round(waits, 3),
        "outside_waits_share": round((execution - waits) / execution, 3),
        "investigation_seconds": round(parallel[1] - parallel[0], 3),
        "slowest_check_seconds": round(max(checks.values()), 3),
        "sum_of_checks_seconds": round(sum(checks.values()), 3),
        "checks": {k: round(v, 3) for k, v in checks.items()},
        "state_transitions": sum(1 for e in events if "stateEnteredEventDetails" in e),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="bad-deploy")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=60.0)
    args = parser.parse_args()
    results = []
    with Sandbox(load_scenario(args.scenario), scale=args.scale) as sandbox:
        for _ in range(args.runs):
            results.append(measure(sandbox, args.scenario))
    keys = (
        "wall_seconds",
        "execution_seconds",
        "outside_waits_share",
        "investigation_seconds",
        "slowest_check_seconds",
        "sum_of_checks_seconds",
        "state_transitions",
    )
    summary = {key: statistics.median(r[key] for r in results) for key in keys}
    print(
        f"P1 {args.scenario} in the sandbox (x{args.scale:g}), median of {args.runs} runs (first run includes cold imports):"
    )
    for key in keys:
        print(f"  {key:28} {summary[key]}")
    out = Path(__file__).with_name("results") / "p1_sandbox.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "runs": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
