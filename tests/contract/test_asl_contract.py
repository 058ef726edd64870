"""The contract every statemachines/*.asl.json keeps, and proof on fixtures that each check can fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from functions.catalog import RUNBOOKS, Runbook
from runbook.diagram import END_MARKER, START_MARKER
from tests.contract.asl_checks import (
    ROOT,
    VALIDATOR,
    catalog_problems,
    doc_problems,
    graph_problems,
    language_problems,
    placeholder_problems,
    task_problems,
    timeout_problems,
    validator_problems,
)

FIXTURES = Path(__file__).parent / "fixtures"
ASL_FILES = sorted((ROOT / "statemachines").glob("*.asl.json"))
RUNBOOK_BY_FILE = {runbook.asl_file: runbook for runbook in RUNBOOKS.values()}

needs_validator = pytest.mark.skipif(
    not VALIDATOR.exists(),
    reason="asl-validator is not installed (node_modules/); `make install` installs it",
)
each_asl_file = pytest.mark.parametrize("path", ASL_FILES, ids=[path.name for path in ASL_FILES])

GOOD = Runbook(
    name="fixture-good",
    asl_file="good.asl.json",
    description="Fixture: good",
    steps=("NormalizeInput", "CheckPods", "CheckDependencies", "DecideAction", "RestartDeployment"),
    timeout_minutes=15,
    extra_placeholders=("IncidentTopicArn",),
)
BAD = Runbook(
    name="fixture-bad",
    asl_file="bad.asl.json",
    description="Fixture: bad",
    steps=("NormalizeInput", "CheckPods", "DecideAction", "RestartDeployment", "VerifyRecovery"),
    timeout_minutes=15,
)


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def owner(path: Path) -> Runbook:
    if path.name not in RUNBOOK_BY_FILE:
        pytest.fail(f"{path.name} belongs to no runbook in functions.catalog.RUNBOOKS")
    return RUNBOOK_BY_FILE[path.name]


# --- every ASL file of the project -------------------------------------------------------------------


@needs_validator
@each_asl_file
def test_the_independent_validator_accepts_it(path: Path) -> None:
    assert validator_problems(path) == []


@each_asl_file
def test_every_task_has_retry_catch_and_timeout(path: Path) -> None:
    assert task_problems(load(path)) == []


@each_asl_file
def test_timeouts_fit_the_budget_and_no_task_gives_up_before_its_lambda(path: Path) -> None:
    assert timeout_problems(load(path), owner(path)) == []


@each_asl_file
def test_every_placeholder_is_a_step_of_its_runbook_and_every_step_is_used(path: Path) -> None:
    assert placeholder_problems(path.read_text(), owner(path)) == []


@each_asl_file
def test_every_state_is_reachable_and_every_transition_lands(path: Path) -> None:
    assert graph_problems(load(path)) == []


@each_asl_file
def test_it_uses_jsonpath_only(path: Path) -> None:
    assert language_problems(load(path)) == []


@each_asl_file
def test_its_document_shows_the_current_diagram(path: Path) -> None:
    runbook = owner(path)
    doc = ROOT / "docs" / "runbooks" / f"{runbook.name}.md"
    assert doc_problems(ROOT, [runbook], only=[doc]) == []


def test_asl_files_and_catalog_runbooks_match_one_to_one() -> None:
    assert catalog_problems([path.name for path in ASL_FILES], RUNBOOKS.values()) == []


def test_the_readme_shows_the_current_diagrams() -> None:
    assert doc_problems(ROOT, RUNBOOKS.values(), only=[ROOT / "README.md"]) == []


# --- the checks themselves: a clean fixture passes, and each rule broken in bad.asl.json is reported ----


def test_the_good_fixture_passes_every_check() -> None:
    asl = load(FIXTURES / "good.asl.json")
    assert task_problems(asl) == []
    assert timeout_problems(asl, GOOD) == []
    assert placeholder_problems((FIXTURES / "good.asl.json").read_text(), GOOD) == []
    assert graph_problems(asl) == []
    assert language_problems(asl) == []


@needs_validator
def test_the_validator_accepts_the_good_fixture_and_rejects_the_bad_one() -> None:
    assert validator_problems(FIXTURES / "good.asl.json") == []
    assert validator_problems(FIXTURES / "bad.asl.json") == [
        "MISSING_TRANSITION_TARGET: State Unreachable state is not reachable",
        "MISSING_TRANSITION_TARGET: Missing 'StartAt'|'Next'|'Default' target: A state that does not exist",
    ]


def test_tasks_without_retry_catch_or_timeout_are_reported_at_any_depth() -> None:
    assert task_problems(load(FIXTURES / "bad.asl.json")) == [
        "Task without a Catch: no Catch",
        "Task without a timeout: no TimeoutSeconds",  # in a Parallel branch
        # in a Map iterator
        "Task retrying too little: Retry does not cover Lambda.AWSLambdaException, "
        "Lambda.SdkClientException, TransientError",
        "Task without a Retry: no Retry",
    ]


def test_a_machine_over_its_budget_and_a_task_giving_up_before_its_lambda_are_reported() -> None:
    assert timeout_problems(load(FIXTURES / "bad.asl.json"), BAD) == [
        "top level: TimeoutSeconds 86400 is not within the budget (900 s)",
        "Task giving up before its Lambda: TimeoutSeconds 20 is shorter than the RestartDeployment Lambda's "
        "timeout (60 s)",
    ]


def test_unknown_placeholders_and_unused_steps_are_reported() -> None:
    assert placeholder_problems((FIXTURES / "bad.asl.json").read_text(), BAD) == [
        "${ScaleDeploymentFunctionArn}: unknown placeholder (step ScaleDeployment is not one of fixture-bad's steps)",
        "VerifyRecovery: a step of fixture-bad that its ASL never calls",
    ]


def test_a_placeholder_naming_no_step_at_all_is_reported() -> None:
    text = '{"Resource": "${NoSuchThingFunctionArn}"}'
    assert (
        placeholder_problems(text, BAD)[0] == "${NoSuchThingFunctionArn}: unknown placeholder (no such step)"
    )


def test_dangling_transitions_unreachable_states_and_unasked_choices_are_reported() -> None:
    assert graph_problems(load(FIXTURES / "bad.asl.json")) == [
        "Choice without a question mark: goes to 'A state that does not exist', which is not a state",
        "Choice without a question mark: a Choice state's name must end in '?'",
        "Unreachable state: not reachable from 'Task without a Catch'",
    ]


def test_a_dangling_catch_inside_a_branch_is_reported() -> None:
    asl = load(FIXTURES / "good.asl.json")
    branch = asl["States"]["Investigate"]["Branches"][0]["States"]
    branch["Check the pods"]["Catch"][0]["Next"] = "Escalate to on-call"  # a state outside the branch
    assert graph_problems(asl) == [
        "Check the pods: goes to 'Escalate to on-call', which is not a state",
        "Pods unknown: not reachable from 'Check the pods'",
    ]


def test_jsonata_and_assign_are_reported() -> None:
    assert language_problems(load(FIXTURES / "bad.asl.json")) == [
        "Pass with Assign: uses Assign variables",
        "Task in JSONata: QueryLanguage JSONata",
        "Task in JSONata: uses Arguments, a JSONata field",
    ]


def test_asl_files_without_a_runbook_and_runbooks_without_a_file_are_reported() -> None:
    assert catalog_problems(["good.asl.json", "orphan.asl.json"], [GOOD, BAD]) == [
        "orphan.asl.json: no runbook in the catalog uses it",
        "fixture-bad: its ASL file statemachines/bad.asl.json does not exist",
    ]


def test_missing_and_stale_documents_are_reported_and_a_fresh_one_passes(tmp_path: Path) -> None:
    from runbook.diagram import expected_docs

    (tmp_path / "statemachines").mkdir()
    shutil.copy(FIXTURES / "good.asl.json", tmp_path / "statemachines" / "good.asl.json")
    doc = tmp_path / "docs" / "runbooks" / "fixture-good.md"
    assert doc_problems(tmp_path, [GOOD]) == ["docs/runbooks/fixture-good.md: missing; run `make docs`"]

    doc.parent.mkdir(parents=True)
    doc.write_text(f"# Fixture\n\nProse.\n\n{START_MARKER}\n```mermaid\nflowchart TD\n```\n{END_MARKER}\n")
    assert doc_problems(tmp_path, [GOOD]) == [
        "docs/runbooks/fixture-good.md: diagram out of date with its ASL; run `make docs`"
    ]

    doc.write_text(expected_docs(tmp_path, [GOOD])[doc])
    assert doc_problems(tmp_path, [GOOD]) == []
    assert doc.read_text().startswith("# Fixture\n\nProse.\n\n")  # the prose outside the markers is kept
