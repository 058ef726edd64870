"""Weekly database maintenance end-to-end: the ASL on moto's interpreter, the real handlers, a real
PostgreSQL seeded with the runbook book's tables, SNS and the report store as the sandbox provides them.

One sandbox serves the runs on a healthy database, in an order where each run leaves the next its work:
dry run (changes nothing), a run past its window (skips everything), the real run, and last the same world
with the database's port closed."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from functions.core.clock import to_iso
from functions.core.config import CONFIG_ENV, get_settings
from runbook.sandbox.runtime import Sandbox
from runbook.sandbox.scenarios import load_scenario

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MAINTENANCE_STEPS = [
    "Update the planner statistics",
    "Report the unused indexes",
    "Vacuum and analyze the tables",
    "Rebuild the bloated indexes",
    "Clean up the idle connections",
]


def schedule_event(time: str) -> dict:
    """EventBridge's Scheduled Event for the Sunday rule."""
    return {
        "version": "0",
        "id": "5f0e0a4c-0000-4000-8000-000000000001",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/runbook-autopilot-db-maintenance"],
        "detail": {},
    }


def dead_tuples(sandbox: Sandbox) -> int:
    from runbook.sandbox.postgres import shared_server

    dsn = shared_server().dsn(sandbox.scenario.database_name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        (dead,) = conn.execute("SELECT dead_tuple_count FROM pgstattuple('sales')").fetchone() or (0,)
    return int(dead)


@pytest.fixture(scope="module")
def healthy():
    scenario = load_scenario("healthy")
    scenario.seed_rows = 20_000
    with Sandbox(scenario, scale=60.0) as sandbox:
        yield sandbox


def test_a_dry_run_reports_the_statements_and_changes_nothing(healthy):
    before = dead_tuples(healthy)

    run = healthy.run("db-maintenance", {"dry_run": True})

    assert run.status == "SUCCEEDED"
    assert [name for name in run.states_entered if name in MAINTENANCE_STEPS] == MAINTENANCE_STEPS
    results = run.output["results"]
    assert {results[k]["status"] for k in ("analyze", "vacuum", "reindex")} == {"DRY_RUN"}
    assert 'VACUUM (ANALYZE) "public"."sales"' in results["vacuum"]["details"]["statements"]
    assert [m for m in run.messages if "DB maintenance" in m.subject] == []  # a dry run sends nothing
    (published,) = [i.result for i in healthy.lambdas.invocations if i.function.endswith("DbPublishReport")]
    assert "(dry run)" in published["details"]["subject"]
    assert "## Statements that would run" in Path(published["details"]["location"]).read_text()
    assert dead_tuples(healthy) == before > 0


def test_a_run_past_its_window_skips_the_maintenance_and_says_so(healthy):
    before = dead_tuples(healthy)
    # The Sunday 02:00 event delivered 46 minutes late: the 45-minute window is already over.
    late = to_iso(datetime.fromtimestamp(healthy.clock.now(), tz=UTC) - timedelta(minutes=46))

    run = healthy.run("db-maintenance", schedule_event(late))

    results = run.output["results"]
    assert run.status == "SUCCEEDED"
    assert run.output["report"]["details"]["outcome"] == "COMPLETED_WITH_FINDINGS"
    for key in ("analyze", "unused_indexes", "vacuum", "reindex", "connections"):
        assert results[key]["status"] == "SKIPPED", key
        assert "past the window's end" in results[key]["summary"]
    assert results["post_checks"]["status"] == "OK"  # verification runs whatever the time
    message = [m for m in run.messages if "DB maintenance" in m.subject][-1]  # this run's report
    assert "Vacuum and analyze" not in message.body  # steps are named by their report titles
    assert "| VACUUM ANALYZE | SKIPPED |" in message.body
    assert dead_tuples(healthy) == before > 0


def run_with_config(sandbox, tmp_path, monkeypatch, change):
    """Run in the same world with the configuration changed by ``change(data)`` for this run only."""
    data = get_settings().model_dump(mode="json", exclude_none=True)
    change(data)
    (tmp_path / "config.json").write_text(json.dumps(data))
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "config.json"))
    get_settings.cache_clear()
    try:
        return sandbox.run("db-maintenance", {"dry_run": False})
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_a_missing_replica_aborts_before_any_change_with_a_report(healthy, tmp_path, monkeypatch):
    before = dead_tuples(healthy)

    def expect_a_replica(data):
        data["databases"][data["maintenance"]["database"]]["expected_replicas"] = ["sales-db-replica"]

    run = run_with_config(healthy, tmp_path, monkeypatch, expect_a_replica)

    assert run.status == "FAILED"
    assert run.error == "PreCheckFailed"
    assert not set(MAINTENANCE_STEPS) & set(run.states_entered)
    message = [m for m in run.messages if "DB maintenance" in m.subject][-1]
    assert message.subject.startswith("[production] DB maintenance sales_db: ABORTED")
    assert "expected replica sales-db-replica is not connected" in message.body
    assert dead_tuples(healthy) == before > 0


def test_the_weekly_run_cleans_the_database_and_reports_it(healthy):
    run = healthy.run(
        "db-maintenance",
        schedule_event(to_iso(datetime.fromtimestamp(healthy.clock.now(), tz=UTC))),
    )

    results = run.output["results"]
    assert run.status == "SUCCEEDED"
    assert run.states_entered[-2:] == ["How did the maintenance end?", "Maintenance done"]
    assert run.output["outcome"] == "COMPLETED_WITH_FINDINGS"  # the unused indexes are findings
    assert results["vacuum"]["status"] == "CHANGED"
    assert results["vacuum"]["details"]["dead_removed"] > 0
    assert dead_tuples(healthy) == 0
    rebuilt = {i["index"] for i in results["reindex"]["details"]["indexes"] if i.get("outcome") == "rebuilt"}
    assert "idx_sales_date" in rebuilt
    unused = {i["index"] for i in results["unused_indexes"]["details"]["indexes"]}
    assert "idx_customers_region" in unused and "sales_pkey" not in unused
    message = [m for m in run.messages if "DB maintenance" in m.subject][-1]  # this run's report
    assert message.subject.startswith("[production] DB maintenance sales_db: COMPLETED")
    assert "- table public.sales:" in message.body and "dead tuples" in message.body


def test_the_database_down_ends_the_run_with_database_unavailable_after_the_report(
    healthy, tmp_path, monkeypatch
):
    # The same world with the database's port closed: connections are refused, as for a server that is down.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]

    def close_the_port(data):
        data["databases"][data["maintenance"]["database"]]["port"] = closed_port

    run = run_with_config(healthy, tmp_path, monkeypatch, close_the_port)

    assert run.status == "FAILED"
    assert run.error == "DatabaseUnavailable"
    assert "Update the planner statistics" not in run.states_entered
    assert run.states_entered[-4:] == [
        "Publish the maintenance report",
        "Record the outcome",
        "How did the maintenance end?",
        "End the run with its error",
    ]
    message = [m for m in run.messages if "DB maintenance" in m.subject][-1]
    assert message.level == "L1"
    assert message.subject == "[production] DB maintenance sales_db: FAILED, 1 findings"
    assert "step failed: DatabaseUnavailable: cannot connect to" in message.body
