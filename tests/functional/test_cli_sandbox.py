"""`runbook run` and `runbook scenarios` as a person types them."""

from __future__ import annotations

import json

import pytest

from runbook.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_run_shows_each_state_the_outcome_and_writes_the_history(tmp_path, capsys):
    history = tmp_path / "history.json"

    code = main(
        ["run", "p1-service-down", "--scenario", "healthy", "--scale", "40", "--history", str(history)]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "▶ Investigate the service" in out and "✓ Check the pods: [OK] 3/3 ready" in out
    assert "Outcome: NO_ACTION  (execution SUCCEEDED)" in out
    assert "Scenario check: as the scenario expects" in out
    assert "Actions taken:\n  none: the runbook changed nothing" in out
    assert "Kubernetes writes: 0" in out
    assert "state transitions" in out
    saved = json.loads(history.read_text())
    assert saved["status"] == "SUCCEEDED" and saved["output"]["outcome"] == "NO_ACTION"
    assert any(e["type"] == "ExecutionSucceeded" for e in saved["events"])


def test_scenarios_lists_every_scenario_with_its_expectation(capsys):
    assert main(["scenarios"]) == 0

    out = capsys.readouterr().out
    for name, outcome in (
        ("bad-deploy", "RESOLVED"),
        ("database-down", "ESCALATED"),
        ("healthy", "NO_ACTION"),
    ):
        assert any(line.startswith(name) and outcome in line for line in out.splitlines())


def test_an_unknown_scenario_is_a_clear_error(capsys):
    assert main(["run", "p1-service-down", "--scenario", "nope"]) == 2

    assert "unknown scenario 'nope'; known: bad-deploy" in capsys.readouterr().err


@pytest.mark.parametrize("content", [None, "{not json"])
def test_an_unreadable_event_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "event.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(SystemExit, match=f"cannot read {path}"):
        main(["run", "p1-service-down", "--event", str(path), "--scenario", "healthy"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("world: [\n", "not valid YAML"),
        ("description: no world\n", "a 'world' mapping"),
        ("world: {}\nseed_rows: lots\n", "seed_rows must be int"),
        ("world: {}\ndatabase: sideways\n", "database must be up or down"),
        ("world:\n  images: {app: crashlop}\n", "fault must be one of healthy"),
    ],
)
def test_a_mistake_in_a_scenario_file_is_one_clear_line(tmp_path, capsys, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)

    code = main(
        ["run", "p1-service-down", "--scenario", str(path), "--event", "events/manual-sales-service.json"]
    )

    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_scale_is_checked_by_the_argument_parser(capsys):
    with pytest.raises(SystemExit):
        main(["run", "p1-service-down", "--scale", "0"])

    assert "must be between 1 and 3600" in capsys.readouterr().err
