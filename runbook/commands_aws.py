"""``runbook start|status|list|history``: drive the state machines the CDK app deployed, through boto3.

A runbook's machine is found from the stack's outputs (``StateMachineArn<Runbook>``), or, when the stack
cannot be read, by its name ``<stack>-<runbook>``. An execution is given by ARN, or by name (the runbook
then comes from ``--runbook``, or each deployed machine is asked).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions import catalog
from functions.core.clients import client
from infra.names import DEFAULT_STACK_NAME, output_key, state_machine_name

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
_REQUESTER = re.compile(r"[^A-Za-z0-9@._+ -]")


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


# --- arguments ---------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--stack",
            default=os.environ.get("RUNBOOK_STACK", DEFAULT_STACK_NAME),
            help=f"the deployed stack (default $RUNBOOK_STACK or {DEFAULT_STACK_NAME})",
        )
        parser.add_argument("--region", default=None, help="AWS region (default: AWS_REGION)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")

    start = sub.add_parser("start", help="start a runbook on AWS")
    start.add_argument("runbook", choices=sorted(catalog.RUNBOOKS), help="the runbook to start")
    start.add_argument("--service", help="the configured service to act on (runbooks started by alarms)")
    start.add_argument(
        "--input", type=Path, help="start with this JSON instead (an alarm event, '-' for stdin)"
    )
    start.add_argument("--dry-run", action="store_true", help="investigate, change nothing")
    start.add_argument("--reason", help="why, for the incident record")
    start.add_argument("--requested-by", default=None, help="who asks (default: your user name)")
    start.add_argument("--name", help="execution name (default: runbook, service and time)")
    common(start)
    start.set_defaults(func=cmd_start)

    status = sub.add_parser("status", help="show an execution on AWS")
    status.add_argument("execution", help="execution ARN or name")
    status.add_argument("--runbook", choices=sorted(catalog.RUNBOOKS), help="where to look for a name")
    common(status)
    status.set_defaults(func=cmd_status)

    listing = sub.add_parser("list", help="list deployed runbooks and their recent executions on AWS")
    listing.add_argument("runbook", nargs="?", choices=sorted(catalog.RUNBOOKS), help="only this runbook")
    listing.add_argument("--status", choices=STATUSES, help="only executions in this status")
    listing.add_argument("--max", type=int, default=10, help="executions per runbook (default 10)")
    common(listing)
    listing.set_defaults(func=cmd_list)

    history = sub.add_parser("history", help="show what an execution on AWS did, state by state")
    history.add_argument("execution", help="execution ARN or name")
    history.add_argument("--runbook", choices=sorted(catalog.RUNBOOKS), help="where to look for a name")
    common(history)
    history.set_defaults(func=cmd_history)


def _guarded(command: Any) -> Any:
    """Turn the errors a user can act on into one line on stderr and exit code 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args) or 0)
        except CliError as error:
            print(f"runbook {args.command}: {error}", file=sys.stderr)
            return 2
        except ClientError as error:
            info = error.response.get("Error", {})
            print(
                f"runbook {args.command}: AWS said {info.get('Code')}: {info.get('Message')}", file=sys.stderr
            )
            return 2
        except BotoCoreError as error:
            print(f"runbook {args.command}: cannot reach AWS: {error}", file=sys.stderr)
            return 2

    return run


# --- finding machines and executions -----------------------------------------------------------------


def state_machines(stack: str, region: str | None = None) -> dict[str, str]:
    """Deployed runbook -> state machine ARN, from the stack's outputs or, failing that, by name."""
    try:
        stacks = client("cloudformation", region).describe_stacks(StackName=stack)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])} if stacks else {}
    except ClientError:  # no such stack, or no right to read it: fall back to the machines' names
        outputs = {}
    found = {name: outputs[output_key(name)] for name in catalog.RUNBOOKS if output_key(name) in outputs}
    if found:
        return found
    wanted = {state_machine_name(stack, name): name for name in catalog.RUNBOOKS}
    for page in client("stepfunctions", region).get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] in wanted:
                found[wanted[machine["name"]]] = machine["stateMachineArn"]
    return found


def machine_for(runbook: str, stack: str, region: str | None) -> str:
    machines = state_machines(stack, region)
    if runbook not in machines:
        deployed = ", ".join(sorted(machines)) or "none"
        raise CliError(f"runbook {runbook} is not deployed in stack {stack} (deployed: {deployed})")
    return machines[runbook]


def execution_arn(reference: str, runbook: str | None, stack: str, region: str | None) -> str:
    """The ARN of an execution given by ARN or by name."""
    if reference.startswith("arn:"):
        return reference
    machines = state_machines(stack, region)
    candidates = [machines[runbook]] if runbook in machines else list(machines.values())
    if runbook and runbook not in machines:
        raise CliError(f"runbook {runbook} is not deployed in stack {stack}")
    sfn = client("stepfunctions", region)
    for machine in candidates:
        arn = machine.replace(":stateMachine:", ":execution:", 1) + f":{reference}"
        try:
            sfn.describe_execution(executionArn=arn)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                continue
            raise
        return arn
    raise CliError(f"no execution named {reference!r} in stack {stack}'s runbooks")


# --- start -------------------------------------------------------------------------------------------


def start_input(
    runbook: str,
    *,
    service: str | None,
    dry_run: bool,
    reason: str | None,
    requested_by: str,
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The documented input: a request (``service``, ``dry_run``, ``requested_by``, ``reason``), or a given
    event (alarm or schedule) with ``"autopilot": {"dry_run": true}`` added for a dry run."""
    if event is not None:
        if dry_run:
            if "service" in event or set(event) <= {"dry_run", "requested_by", "reason"}:
                event = {**event, "dry_run": True}
            else:
                event = {**event, "autopilot": {"dry_run": True}}
        return event
    if service is None and "alarm" in catalog.runbook(runbook).triggers:
        raise CliError(f"{runbook} acts on a service: give --service NAME (or --input EVENT.json)")
    request: dict[str, Any] = {"service": service} if service else {}
    request["dry_run"] = dry_run
    request["requested_by"] = requested_by
    if reason:
        request["reason"] = reason
    return request


def default_requester() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "cli"
    return _REQUESTER.sub("", user)[:64] or "cli"


def execution_name(runbook: str, service: str | None) -> str:
    """Unique, readable, within Step Functions' 80 characters of [A-Za-z0-9_-]."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    parts = [runbook, service or "run", stamp, uuid.uuid4().hex[:6]]
    return re.sub(r"[^A-Za-z0-9_-]", "-", "-".join(parts))[-80:]


def _read_event(path: Path) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        event = json.loads(text)
    except (OSError, json.JSONDecodeError) as error:
        raise CliError(f"cannot read {path}: {error}") from None
    if not isinstance(event, dict):
        raise CliError(f"{path}: the input must be a JSON object")
    return event


@_guarded
def cmd_start(args: argparse.Namespace) -> int:
    payload = start_input(
        args.runbook,
        service=args.service,
        dry_run=args.dry_run,
        reason=args.reason,
        requested_by=args.requested_by or default_requester(),
        event=_read_event(args.input) if args.input else None,
    )
    machine = machine_for(args.runbook, args.stack, args.region)
    name = args.name or execution_name(args.runbook, args.service)
    response = client("stepfunctions", args.region).start_execution(
        stateMachineArn=machine, name=name, input=json.dumps(payload)
    )
    started = {
        "executionArn": response["executionArn"],
        "name": name,
        "runbook": args.runbook,
        "input": payload,
    }
    if args.json:
        print(json.dumps(started, indent=2, default=str))
    else:
        print(f"started {args.runbook}: {response['executionArn']}")
        print(f"watch it:  runbook status {name} --runbook {args.runbook}")
    return 0


# --- status, list, history ---------------------------------------------------------------------------


def _iso(value: Any) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else ""


def _json_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def runbook_of(machine_arn: str, stack: str) -> str:
    name = machine_arn.rsplit(":", 1)[-1]
    return name.removeprefix(f"{stack}-")


@_guarded
def cmd_status(args: argparse.Namespace) -> int:
    arn = execution_arn(args.execution, args.runbook, args.stack, args.region)
    described = client("stepfunctions", args.region).describe_execution(executionArn=arn)
    summary = {
        "executionArn": arn,
        "runbook": runbook_of(described["stateMachineArn"], args.stack),
        "status": described["status"],
        "started": _iso(described.get("startDate")),
        "stopped": _iso(described.get("stopDate")),
        "input": _json_or_text(described.get("input")),
        "output": _json_or_text(described.get("output")),
        "error": described.get("error"),
        "cause": described.get("cause"),
    }
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    for key in ("executionArn", "runbook", "status", "started", "stopped", "error", "cause"):
        if summary[key]:
            print(f"{key:12} {summary[key]}")
    if summary["output"] is not None:
        print("output")
        print(json.dumps(summary["output"], indent=2, default=str)[:4000])
    return 0


@_guarded
def cmd_list(args: argparse.Namespace) -> int:
    machines = state_machines(args.stack, args.region)
    if args.runbook:
        if args.runbook not in machines:
            raise CliError(f"runbook {args.runbook} is not deployed in stack {args.stack}")
        machines = {args.runbook: machines[args.runbook]}
    sfn = client("stepfunctions", args.region)
    listing: dict[str, Any] = {}
    for runbook, machine in sorted(machines.items()):
        kwargs: dict[str, Any] = {"stateMachineArn": machine, "maxResults": max(1, min(args.max, 1000))}
        if args.status:
            kwargs["statusFilter"] = args.status
        executions = sfn.list_executions(**kwargs)["executions"]
        listing[runbook] = {
            "stateMachineArn": machine,
            "executions": [
                {
                    "name": e["name"],
                    "status": e["status"],
                    "started": _iso(e.get("startDate")),
                    "stopped": _iso(e.get("stopDate")),
                    "executionArn": e["executionArn"],
                }
                for e in executions
            ],
        }
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    if not listing:
        print(f"no runbook is deployed in stack {args.stack}")
    for runbook, entry in listing.items():
        print(f"{runbook}  ({entry['stateMachineArn']})")
        for e in entry["executions"] or [{"name": "(no executions)", "status": "", "started": ""}]:
            print(f"  {e['status']:10} {e['started']:20} {e['name']}")
    return 0


def describe_event(event: dict[str, Any]) -> str:
    """One line for a history event: its type, the state it concerns, and an error if any."""
    parts = [event["type"]]
    for key, details in event.items():
        if not key.endswith("EventDetails") or not isinstance(details, dict):
            continue
        if "name" in details:
            parts.append(str(details["name"]))
        if details.get("error"):
            cause = str(_json_or_text(details.get("cause")) or "")
            parts.append(f"error={details['error']} {cause[:200]}".rstrip())
    return "  ".join(parts)


@_guarded
def cmd_history(args: argparse.Namespace) -> int:
    arn = execution_arn(args.execution, args.runbook, args.stack, args.region)
    paginator = client("stepfunctions", args.region).get_paginator("get_execution_history")
    events = [e for page in paginator.paginate(executionArn=arn) for e in page["events"]]
    if args.json:
        print(json.dumps(events, indent=2, default=str))
        return 0
    for event in events:
        print(f"{_iso(event.get('timestamp')):20} {event['id']:>4}  {describe_event(event)}")
    return 0
