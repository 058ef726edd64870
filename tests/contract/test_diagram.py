"""Diagrams drawn from ASL: what they show, and that the real Mermaid parser accepts every one we draw."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runbook.diagram import describe_condition, to_mermaid
from tests.contract.asl_checks import ROOT

FIXTURES = Path(__file__).parent / "fixtures"
MERMAID = ROOT / "node_modules" / "mermaid"
PARSER = ROOT / "scripts" / "mermaid_parse.mjs"

# Names that would break a naive drawing: a Mermaid keyword, quotes, angle brackets, a clash after cleaning.
AWKWARD: dict[str, Any] = {
    "StartAt": "end",
    "States": {
        "end": {"Type": "Pass", "Next": 'Is "p95" < 1000 ms?'},
        'Is "p95" < 1000 ms?': {
            "Type": "Choice",
            "Choices": [{"Variable": "$.p95", "NumericLessThan": 1000, "Next": "end!"}],
            "Default": "end?",
        },
        "end!": {"Type": "Succeed"},
        "end?": {"Type": "Fail"},
    },
}


def good() -> dict[str, Any]:
    return json.loads((FIXTURES / "good.asl.json").read_text())


def test_a_parallel_state_forks_into_one_subgraph_per_branch_and_joins_before_going_on() -> None:
    lines = to_mermaid(good()).splitlines()
    assert '  Investigate[["Investigate (in parallel)"]]' in lines
    assert '  subgraph Investigate__branch1["branch 1"]' in lines
    assert "  Investigate --> Check_the_pods" in lines
    assert "  Check_the_pods --> Investigate__join" in lines  # ends normally
    assert "  Pods_unknown --> Investigate__join" in lines  # ends after its Catch
    assert '  Investigate__join[["Investigate: all branches done"]]' in lines
    assert "  Investigate__join --> Decide_the_action" in lines
    assert '  Investigate__join -.->|"States.ALL"| Escalate_to_on_call' in lines


def test_a_map_state_is_a_subgraph_of_its_iterator() -> None:
    lines = to_mermaid(good()).splitlines()
    assert '    subgraph Check_each_dependency["Check each dependency (for each item)"]' in lines
    assert '      Probe_the_dependency["Probe the dependency"]' in lines
    assert "  Check_each_dependency --> Investigate__join" in lines


def test_choice_edges_carry_their_condition_in_short_form_and_the_default_says_otherwise() -> None:
    lines = to_mermaid(good()).splitlines()
    assert (
        '  Which_action -->|"decision.action == restart and decision.confidence #gt;= 0.5"| Restart_the_deployment'
        in lines
    )
    assert '  Which_action -->|"decision.action == none"| Recovered' in lines
    assert "  Which_action -->|otherwise| Escalate_to_on_call" in lines
    assert '  Is_it_fixed -->|"details.recovered == true"| Recovered' in lines


def test_rules_leading_to_the_same_state_share_one_edge() -> None:
    asl = {
        "StartAt": "Which action?",
        "States": {
            "Which action?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.decision.action", "StringEquals": "RESTART", "Next": "Act"},
                    {"Variable": "$.decision.action", "StringEquals": "ROLLBACK", "Next": "Act"},
                ],
                "Default": "Stop",
            },
            "Act": {"Type": "Succeed"},
            "Stop": {"Type": "Fail"},
        },
    }
    assert '  Which_action -->|"decision.action in [RESTART, ROLLBACK]"| Act' in to_mermaid(asl).splitlines()


def test_catch_edges_are_dashed_and_name_the_errors() -> None:
    lines = to_mermaid(good()).splitlines()
    assert '  Restart_the_deployment -.->|"UnsafeToProceed, DeploymentNotFound"| Escalate_to_on_call' in lines
    assert '    Check_the_pods -.->|"States.ALL"| Pods_unknown' in lines


def test_succeed_and_fail_are_terminal_shapes_and_choice_is_a_rhombus() -> None:
    lines = to_mermaid(good()).splitlines()
    assert '  Recovered(["Recovered"])' in lines
    assert '  Not_recovered(["Not recovered"])' in lines
    assert "  class Recovered succeed" in lines
    assert "  class Not_recovered fail" in lines
    assert '  Which_action{"Which action?"}' in lines
    assert '  Wait_for_the_rollout[/"Wait for the rollout"/]' in lines


def test_awkward_names_get_distinct_safe_ids_and_escaped_labels() -> None:
    lines = to_mermaid(AWKWARD).splitlines()
    assert '  end_2["end"]' in lines
    assert '  Is_p95_1000_ms{"Is #quot;p95#quot; #lt; 1000 ms?"}' in lines
    assert '  end_3(["end!"])' in lines
    assert '  end_4(["end?"])' in lines
    assert "  start --> end_2" in lines


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.decision.action", "StringEquals": "ROLLBACK"}, "decision.action == ROLLBACK"),
        ({"Variable": "$.results.backup.status", "StringEquals": "OK"}, "backup.status == OK"),
        (
            {"Variable": "$.ready", "NumericLessThanPath": "$.spec.limits.replicas"},
            "ready #lt; limits.replicas",
        ),
        ({"Variable": "$.done", "BooleanEquals": False}, "done == false"),
        ({"Variable": "$.error", "IsPresent": True}, "error present"),
        ({"Variable": "$.error", "IsPresent": False}, "no error"),
        ({"Variable": "$.lag", "IsNull": False}, "lag is not null"),
        ({"Variable": "$.image", "StringMatches": "*:v2"}, "image ~ *:v2"),
        (
            {
                "Or": [
                    {"Variable": "$.a", "NumericGreaterThan": 1},
                    {"And": [{"Variable": "$.b", "IsPresent": True}, {"Variable": "$.c", "IsNumeric": True}]},
                ]
            },
            "a #gt; 1 or (b present and c is a number)",
        ),
        ({"Not": {"Variable": "$.paused", "BooleanEquals": True}}, "not paused == true"),
        (
            {
                "Or": [
                    {"Variable": "$.s", "StringEquals": "OK"},
                    {"Variable": "$.s", "StringEquals": "SKIPPED"},
                ]
            },
            "s in [OK, SKIPPED]",
        ),
    ],
)
def test_conditions_in_short_form(rule: dict[str, Any], expected: str) -> None:
    assert describe_condition(rule) == expected


@pytest.mark.skipif(
    not MERMAID.exists() or shutil.which("node") is None,
    reason="mermaid is not installed (node_modules/); `make install` installs it",
)
def test_the_mermaid_parser_accepts_every_diagram_and_rejects_a_broken_one() -> None:
    diagrams = {
        path.name: to_mermaid(json.loads(path.read_text())) for path in ROOT.glob("statemachines/*.asl.json")
    }
    diagrams |= {p.name: to_mermaid(json.loads(p.read_text())) for p in FIXTURES.glob("*.asl.json")}
    diagrams["awkward"] = to_mermaid(AWKWARD)
    diagrams["broken"] = "flowchart TD\n  a --> end\n"  # proves the parser is really consulted
    result = subprocess.run(
        ["node", str(PARSER)],
        input=json.dumps(diagrams),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    errors = json.loads(result.stdout)
    assert errors.pop("broken") is not None
    assert errors == dict.fromkeys(errors)  # every other diagram parsed: no error messages
