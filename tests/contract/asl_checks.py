"""The ASL contract, as checks that return the problems they find (an empty list means the file keeps it).

Each check is proved able to fail on tests/contract/fixtures/bad.asl.json; a check that cannot fail is a
defect. Problems read "<state>: <what is wrong>" so a failing test names the place to fix.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from functions.catalog import STEPS, Runbook
from runbook.diagram import expected_docs, iter_states

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"

LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
TRANSIENT_ERROR = "TransientError"
PLACEHOLDER_RE = re.compile(r"\$\{([^}]*)\}")


def validator_problems(path: Path) -> list[str]:
    """The independent validator's findings (asl-validator from npm). The caller skips when it is absent."""
    node = shutil.which("node")
    command = [node, str(VALIDATOR)] if node else [str(VALIDATOR)]
    result = subprocess.run(
        [*command, "--json-path", str(path), "--no-arn-check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 0:
        return []
    # It prints a headline, then one "CODE: message" line per finding, on stderr.
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines()]
    findings = [line for line in lines if re.match(r"^[A-Z_]+: ", line)]
    return findings or [f"asl-validator exited {result.returncode}: {' | '.join(filter(None, lines))}"]


def _is_lambda_task(state: dict[str, Any]) -> bool:
    resource = str(state.get("Resource", ""))
    return (
        resource.startswith("arn:aws:states:::lambda:invoke")
        or resource.startswith("arn:aws:lambda:")
        or bool(re.fullmatch(r"\$\{\w+FunctionArn\}", resource))
    )


def task_problems(asl: dict[str, Any]) -> list[str]:
    """Every Task, at any depth, has a Retry, a Catch and a TimeoutSeconds. A Task that invokes a Lambda
    retries Lambda's service faults and TransientError by name: ``States.ALL`` does not count, since it
    would also retry the named errors the flow routes on."""
    problems = []
    for name, state in iter_states(asl.get("States", {})):
        if state.get("Type") != "Task":
            continue
        retried = {error for retrier in state.get("Retry", []) for error in retrier.get("ErrorEquals", [])}
        if not state.get("Retry"):
            problems.append(f"{name}: no Retry")
        elif _is_lambda_task(state):
            missing = [e for e in (*LAMBDA_SERVICE_ERRORS, TRANSIENT_ERROR) if e not in retried]
            if missing:
                problems.append(f"{name}: Retry does not cover {', '.join(missing)}")
        if not state.get("Catch"):
            problems.append(f"{name}: no Catch")
        if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
            problems.append(f"{name}: no TimeoutSeconds")
    return problems


def timeout_problems(asl: dict[str, Any], runbook: Runbook) -> list[str]:
    """The machine's TimeoutSeconds is its runbook's budget at most, and a Task that invokes a step's Lambda
    waits at least that Lambda's own timeout: a Task that gives up first leaves the Lambda running, and a
    retry would then run a mutating step twice at once."""
    budget = runbook.timeout_minutes * 60
    problems = []
    if not 0 < asl.get("TimeoutSeconds", 0) <= budget:
        problems.append(
            f"top level: TimeoutSeconds {asl.get('TimeoutSeconds')} is not within the budget ({budget} s)"
        )
    for name, state in iter_states(asl.get("States", {})):
        timeout = state.get("TimeoutSeconds")
        if state.get("Type") != "Task" or not isinstance(timeout, int):
            continue
        called = {
            placeholder.removesuffix("FunctionArn")
            for placeholder in PLACEHOLDER_RE.findall(json.dumps(state))
        }
        problems += [
            f"{name}: TimeoutSeconds {timeout} is shorter than the {step} Lambda's timeout "
            f"({STEPS[step].timeout_seconds} s)"
            for step in sorted(called & STEPS.keys())
            if timeout < STEPS[step].timeout_seconds
        ]
    return problems


def placeholder_problems(text: str, runbook: Runbook) -> list[str]:
    """Every ``${Placeholder}`` is a step of this runbook (or one of its extra placeholders), and every step
    of the runbook is used."""
    used = set(PLACEHOLDER_RE.findall(text))
    own = {STEPS[step].placeholder if step in STEPS else f"{step}FunctionArn" for step in runbook.steps}
    known = own | set(runbook.extra_placeholders)
    problems = []
    for placeholder in sorted(used - known):
        step = placeholder.removesuffix("FunctionArn")
        why = f"step {step} is not one of {runbook.name}'s steps" if step in STEPS else "no such step"
        problems.append(f"${{{placeholder}}}: unknown placeholder ({why})")
    for step in runbook.steps:
        if step not in STEPS:
            problems.append(f"{step}: a step of {runbook.name} that the catalog does not define")
        elif STEPS[step].placeholder not in used:
            problems.append(f"{step}: a step of {runbook.name} that its ASL never calls")
    return problems


def catalog_problems(asl_files: Iterable[str], runbooks: Iterable[Runbook]) -> list[str]:
    """Every ASL file belongs to a runbook of the catalog, and every runbook's ASL file exists."""
    files = set(asl_files)
    claimed = {runbook.asl_file for runbook in runbooks}
    problems = [f"{name}: no runbook in the catalog uses it" for name in sorted(files - claimed)]
    problems += [
        f"{runbook.name}: its ASL file statemachines/{runbook.asl_file} does not exist"
        for runbook in runbooks
        if runbook.asl_file not in files
    ]
    return problems


def _targets(state: dict[str, Any]) -> list[str]:
    targets = [state["Next"]] if "Next" in state else []
    targets += [choice["Next"] for choice in state.get("Choices", []) if "Next" in choice]
    targets += [state["Default"]] if "Default" in state else []
    targets += [catcher["Next"] for catcher in state.get("Catch", []) if "Next" in catcher]
    return targets


def _scopes(states: dict[str, Any], start: str) -> Iterable[tuple[str, dict[str, Any]]]:
    """(StartAt, States) of the top level and of every Parallel branch and Map iterator inside it."""
    yield start, states
    for state in states.values():
        for branch in state.get("Branches", []):
            yield from _scopes(branch.get("States", {}), branch.get("StartAt", ""))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _scopes(processor.get("States", {}), processor.get("StartAt", ""))


def graph_problems(asl: dict[str, Any]) -> list[str]:
    """Every transition lands on a state of its own scope, every state is reachable from its scope's
    StartAt, and every Choice asks a question (its name ends in "?")."""
    problems = []
    for start, states in _scopes(asl.get("States", {}), asl.get("StartAt", "")):
        if start not in states:
            problems.append(f"StartAt {start!r} is not a state")
        for name, state in states.items():
            problems += [
                f"{name}: goes to {t!r}, which is not a state" for t in _targets(state) if t not in states
            ]
            if state.get("Type") == "Choice" and not name.endswith("?"):
                problems.append(f"{name}: a Choice state's name must end in '?'")
        reached, frontier = set(), [start]
        while frontier:
            name = frontier.pop()
            if name in reached or name not in states:
                continue
            reached.add(name)
            frontier += _targets(states[name])
        problems += [f"{name}: not reachable from {start!r}" for name in states if name not in reached]
    return problems


def language_problems(asl: dict[str, Any]) -> list[str]:
    """JSONPath only: moto's interpreter fails on JSONata and on ``Assign`` variables."""
    problems = []
    if asl.get("QueryLanguage", "JSONPath") != "JSONPath":
        problems.append(f"top level: QueryLanguage {asl['QueryLanguage']}")
    for name, state in iter_states(asl.get("States", {})):
        if state.get("QueryLanguage", "JSONPath") != "JSONPath":
            problems.append(f"{name}: QueryLanguage {state['QueryLanguage']}")
        if "Assign" in state:
            problems.append(f"{name}: uses Assign variables")
        problems += [
            f"{name}: uses {field}, a JSONata field" for field in ("Arguments", "Output") if field in state
        ]
    return problems


def doc_problems(root: Path, runbooks: Iterable[Runbook], only: Iterable[Path] | None = None) -> list[str]:
    """Generated documents (docs/runbooks/<runbook>.md, README.md's block) that differ from a fresh drawing
    of their ASL; ``only`` limits the check to some of them."""
    wanted = None if only is None else set(only)
    problems = []
    for path, content in expected_docs(root, runbooks).items():
        if wanted is not None and path not in wanted:
            continue
        relative = path.relative_to(root)
        if not path.exists():
            problems.append(f"{relative}: missing; run `make docs`")
        elif path.read_text() != content:
            problems.append(f"{relative}: diagram out of date with its ASL; run `make docs`")
    return problems
