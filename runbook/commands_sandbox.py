"""``runbook run`` and ``runbook scenarios``: runbooks in the sandbox, watched live."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from functions import catalog

BOOKKEEPING_STEPS = {"AcquireTargetLock", "ReleaseTargetLock"}  # changes to the lock table, not to systems
# What starts a runbook that no alarm starts, when no --event is given: its schedule's event.
SCHEDULE_EVENTS = {"db-maintenance": "events/schedule-db-maintenance.json"}
DEFAULT_SCENARIOS = {"db-maintenance": "maintenance-night"}


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a runbook in the sandbox and watch it live")
    run.add_argument("runbook", choices=sorted(catalog.RUNBOOKS), help="the runbook to run")
    run.add_argument(
        "--event", type=Path, help="input: an alarm event or a request (JSON); default: the scenario's"
    )
    run.add_argument(
        "--scenario", default=None, help="the world to run in (see `runbook scenarios`); default bad-deploy"
    )
    run.add_argument(
        "--dry-run", action="store_true", help="investigate for real, change nothing, send nothing"
    )
    run.add_argument(
        "--scale", type=_scale, default=60.0, help="simulated seconds per real second (1-3600, default 60)"
    )
    run.add_argument("--history", type=Path, default=None, help="write the execution history here (JSON)")
    run.add_argument("--quiet", action="store_true", help="print only the outcome")
    run.set_defaults(func=cmd_run)
    scenarios = sub.add_parser("scenarios", help="list the sandbox's scenarios")
    scenarios.set_defaults(func=cmd_scenarios)


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 1 and 3600 simulated seconds per real second")
    return value


def cmd_scenarios(args: argparse.Namespace) -> int:
    from runbook.sandbox.scenarios import ScenarioError, load_scenario, scenario_names

    for name in scenario_names():
        try:
            scenario = load_scenario(name)
        except ScenarioError as error:
            print(f"{name:15} INVALID: {error}\n")
            continue
        expect = scenario.expect
        actions = ", ".join(expect.get("actions", [])) or "no change"
        print(f"{name:15} expect {expect.get('outcome', '?'):10} ({actions})")
        print(f"{'':15} {scenario.description}\n")
    return 0


def _load_input(path: Path | None, default: str | None, dry_run: bool) -> dict[str, Any]:
    from runbook.sandbox.scenarios import REPO

    if dry_run and (path is None and default in SCHEDULE_EVENTS.values()):
        return {"dry_run": True}  # a person's start of a scheduled runbook
    source = path or (REPO / default if default else None)
    if source is None:
        raise SystemExit("runbook run: give --event FILE (the scenario names no default event)")
    try:
        payload = json.loads(Path(source).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"runbook run: cannot read {source}: {error}") from None
    if dry_run and isinstance(payload, dict):
        if "service" in payload or "dry_run" in payload:
            payload["dry_run"] = True
        elif payload.get("source") == "aws.cloudwatch":
            payload["autopilot"] = {"dry_run": True}
        else:
            raise SystemExit(
                "runbook run: --dry-run needs a request or an alarm event, not a scheduled event"
            )
    return payload if isinstance(payload, dict) else {"input": payload}


class LiveView:
    """Prints each state as it is entered and left, with the step's one-line summary."""

    def __init__(self, out: TextIO, sim_clock: Any, quiet: bool = False) -> None:
        self.out, self.clock, self.quiet = out, sim_clock, quiet
        self.outcomes: dict[int, str] = {}  # event id of a task's end -> its one-line summary
        self.transitions = 0
        self.started = time.monotonic()
        self.depth = 0

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self.clock.now()).strftime("%H:%M:%S")

    def show(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if "stateEnteredEventDetails" in event:
            self.transitions += 1
            name = event["stateEnteredEventDetails"]["name"]
            if kind in ("WaitStateEntered",) and self.quiet is False:
                self._print(f"  {self._stamp()}  ⏳ {name}")
            elif kind not in (
                "ChoiceStateEntered",
                "PassStateEntered",
                "SucceedStateEntered",
                "FailStateEntered",
            ):
                self._print(f"  {self._stamp()}  ▶ {name}")
            self._current = name
        elif kind == "TaskSucceeded":
            payload = json.loads(event["taskSucceededEventDetails"].get("output") or "{}").get("Payload", {})
            self.outcomes[event["id"]] = f"[{payload.get('status', '?')}] {payload.get('summary', '')}"
        elif kind == "TaskFailed":
            details = event["taskFailedEventDetails"]
            self.outcomes[event["id"]] = f"[ERROR {details.get('error')}] {_cause(details.get('cause'))}"
        elif kind == "TaskTimedOut":
            self.outcomes[event["id"]] = "[TIMED OUT]"
        elif "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            if kind == "TaskStateExited":
                # Parallel branches interleave: the exit points back at its own task's outcome.
                outcome = self.outcomes.get(event.get("previousEventId", -1), "")
                mark = "✗" if outcome.startswith(("[ERROR", "[TIMED OUT")) else "✓"
                self._print(f"  {self._stamp()}  {mark} {name}: {outcome}")
            elif kind == "ChoiceStateExited":
                self._print(f"  {self._stamp()}  ? {name}")
            elif kind == "ParallelStateExited":
                self._print(f"  {self._stamp()}  ✓ {name}")

    def _print(self, line: str) -> None:
        if not self.quiet:
            print(line, file=self.out, flush=True)


def _cause(cause: str | None) -> str:
    if not cause:
        return ""
    try:
        return str(json.loads(cause).get("errorMessage", cause))[:200]
    except (json.JSONDecodeError, AttributeError):
        return cause[:200]


def cmd_run(args: argparse.Namespace) -> int:
    from functions.core.clock import to_iso
    from functions.core.errors import ConfigurationError
    from runbook.sandbox.runtime import Sandbox
    from runbook.sandbox.scenarios import ScenarioError, event_time, load_scenario

    try:
        scenario = load_scenario(args.scenario or DEFAULT_SCENARIOS.get(args.runbook, "bad-deploy"))
    except ScenarioError as error:
        print(f"runbook run: {error}", file=sys.stderr)
        return 2
    default_event = SCHEDULE_EVENTS.get(args.runbook, scenario.event)
    payload = _load_input(args.event, default_event, args.dry_run)
    if args.event is not None or args.runbook in SCHEDULE_EVENTS:
        started = event_time(payload)  # the world's clock starts when this input says it happened
        scenario.start_at = to_iso(datetime.fromtimestamp(started, tz=UTC)) if started else scenario.start_at
    out = sys.stdout
    print(
        f"Runbook {args.runbook} in the sandbox, scenario {scenario.name}"
        f"{' (DRY RUN)' if args.dry_run else ''}: {scenario.description}\n",
        file=out,
    )
    print("Starting the sandbox (moto, Kubernetes simulator, PostgreSQL)...", file=out, flush=True)
    sandbox_cm = Sandbox(scenario, scale=args.scale)
    try:
        sandbox = sandbox_cm.__enter__()
    except (ConfigurationError, ValueError) as error:  # the world or its config: the scenario's mistake
        print(f"runbook run: scenario {scenario.name}: {error}", file=sys.stderr)
        return 2
    try:
        view = LiveView(out, sandbox.clock, quiet=args.quiet)
        arn = sandbox.start(args.runbook, payload)
        sim0, wall0 = sandbox.clock.now(), time.monotonic()
        events = []
        for event in sandbox.watch(arn):
            events.append(event)
            view.show(event)
        wall = time.monotonic() - wall0
        simulated = sandbox.clock.now() - sim0
        from functions.core.clients import client

        description = client("stepfunctions").describe_execution(executionArn=arn)
        messages = sandbox.drain_messages()
        output = json.loads(description.get("output") or "{}")
        changes = [
            i
            for i in sandbox.lambdas.invocations
            if isinstance(i.result, dict)
            and i.result.get("status") in ("CHANGED", "DRY_RUN")
            and i.function.removeprefix("runbook-autopilot-") not in BOOKKEEPING_STEPS
        ]
        mutations = list(sandbox.kube.mutations)
        history = {
            "executionArn": arn,
            "status": description["status"],
            "input": payload,
            "output": output,
            "events": events,
        }
    finally:
        sandbox_cm.__exit__(None, None, None)

    status = description["status"]
    outcome = output.get("outcome") or (description.get("error") if status != "SUCCEEDED" else "NO_ACTION")
    if status == "SUCCEEDED" and "outcome" not in output:
        outcome = f"NOT STARTED: {output.get('intake', {}).get('summary', '')}"
    print(f"\nOutcome: {outcome}  (execution {status})", file=out)
    expected = scenario.expect.get("outcome")
    # only for the scenario's own runbook and input: then it says what to expect
    own_run = scenario.expect.get("runbook") == args.runbook and args.event is None and not args.dry_run
    if expected and own_run:
        verdict = (
            "as the scenario expects" if expected == outcome else f"MISMATCH: the scenario expects {expected}"
        )
        print(f"Scenario check: {verdict}", file=out)
    if output.get("plan", {}).get("summary"):
        print(f"Decision: {output['plan']['summary']}", file=out)
    print("Actions taken:", file=out)
    if not changes:
        print("  none: the runbook changed nothing", file=out)
    for change in changes:
        result = change.result if isinstance(change.result, dict) else {}
        print(
            f"  - {change.function.removeprefix('runbook-autopilot-')}: [{result.get('status', result.get('errorType'))}] "
            f"{result.get('summary', result.get('errorMessage', ''))}",
            file=out,
        )
    print(
        f"Kubernetes writes: {len(mutations)}" + "".join(f"\n  - {m['verb']} {m['path']}" for m in mutations),
        file=out,
    )
    print(
        f"Notifications: {len(messages)}" + "".join(f"\n  - {m.level}: {m.subject}" for m in messages),
        file=out,
    )
    print(
        f"Elapsed: {wall:.1f} s real, {simulated / 60:.1f} min simulated (x{args.scale:g});"
        f" {view.transitions} state transitions",
        file=out,
    )
    history_path = args.history or Path(".sandbox") / f"history-{args.runbook}-{scenario.name}.json"
    try:
        history_path.parent.mkdir(parents=True, exist_ok=True)
        history_path.write_text(json.dumps(history, indent=2, default=str))
        print(f"Execution history: {history_path}", file=out)
    except OSError as error:
        print(f"Execution history not written: {history_path}: {error.strerror or error}", file=sys.stderr)
    if messages and not args.quiet:
        last = [m for m in messages if m.level == "L1"][-1:] or messages[-1:]
        print(
            f"\nLast message ({last[0].level}):\n"
            + "\n".join("  " + line for line in last[0].body.splitlines()),
            file=out,
        )
    return 0 if status == "SUCCEEDED" else 1
