"""Pure logic of the weekly database maintenance: the start, the window, names, thresholds, the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions.catalog import RUNBOOKS, STEPS
from functions.core.config import Maintenance, parse_settings
from functions.core.errors import InvalidInput
from functions.core.results import Status
from functions.logic import db_maintenance as logic

NOW = datetime(2026, 12, 6, 2, 10, tzinfo=UTC)
SETTINGS = parse_settings(
    {
        "services": {},
        "databases": {"sales": {"host": "db", "dbname": "sales_db"}},
        "maintenance": {"database": "sales"},
    }
)
SCHEDULE = {
    "id": "e-1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "time": "2026-12-06T02:00:00Z",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/db-maintenance"],
    "detail": {},
}


def test_a_schedule_event_opens_the_window_at_the_scheduled_time_even_when_it_starts_late():
    state = logic.normalize_start(SCHEDULE, SETTINGS, NOW)

    assert state["window"] == {
        "started_at": "2026-12-06T02:00:00Z",
        "deadline": "2026-12-06T02:45:00Z",
        "minutes": 45,
    }
    assert state["envelope"]["trigger"]["kind"] == "schedule"
    assert state["envelope"]["trigger"]["source"].endswith("rule/db-maintenance")
    assert state["envelope"]["options"]["dry_run"] is False
    assert state["database"] == "sales"


def test_a_replayed_schedule_event_honours_the_cli_dry_run_marker():
    state = logic.normalize_start(dict(SCHEDULE, autopilot={"dry_run": True}), SETTINGS, NOW)

    assert state["envelope"]["options"]["dry_run"] is True


def test_a_manual_start_opens_the_window_now():
    state = logic.normalize_start({"dry_run": True, "requested_by": "alice"}, SETTINGS, NOW)

    assert state["window"]["started_at"] == "2026-12-06T02:10:00Z"
    assert state["envelope"]["trigger"] == {
        "kind": "manual",
        "source": "alice",
        "alarm_state": None,
        "previous_state": None,
        "reason": None,
        "event_id": None,
    }
    assert state["envelope"]["options"]["dry_run"] is True


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch"},
        {"dry_run": "yes"},
        {"tables": ["x"]},
    ],
)
def test_anything_else_is_refused(event):
    with pytest.raises(InvalidInput):
        logic.normalize_start(event, SETTINGS, NOW)


def test_a_step_past_the_window_is_skipped_and_statements_never_outlive_it():
    window = logic.Window(started_at="2026-12-06T02:00:00Z", deadline="2026-12-06T02:45:00Z", minutes=45)

    assert logic.skipped_past_window("DbAnalyze", window, NOW) is None
    skipped = logic.skipped_past_window("DbAnalyze", window, datetime(2026, 12, 6, 2, 45, tzinfo=UTC))
    assert skipped is not None and skipped.status == Status.SKIPPED
    assert logic.statement_timeout_ms("DbVacuumTables", window, NOW) == (720 - 15) * 1000
    assert (
        logic.statement_timeout_ms("DbVacuumTables", window, datetime(2026, 12, 6, 2, 44, tzinfo=UTC))
        == 60_000
    )


@pytest.mark.parametrize(
    "name",
    ['sales"; DROP TABLE x; --', "sales; DROP TABLE x", "a.b.c", "", "séles", "1sales", "sales ", "x" * 64],
)
def test_names_other_than_plain_identifiers_are_refused(name):
    with pytest.raises(InvalidInput, match="nothing was run"):
        logic.split_names(["sales", name])


def test_plain_names_split_into_identifier_parts():
    assert logic.split_names(["sales", "audit.Sales_2026"]) == [("sales",), ("audit", "Sales_2026")]


M = Maintenance(replication_lag_bytes=1000, replication_lag_seconds=60)


def test_an_idle_primary_with_a_caught_up_replica_is_not_a_finding():
    # replay_lag keeps its last value (or goes NULL) when no WAL flows: no bytes behind means no lag.
    rows = [
        {"application_name": "replica-1", "state": "streaming", "lag_bytes": 0, "replay_lag_seconds": 900.0}
    ]

    assert logic.evaluate_replication(rows, ["replica-1"], M) == []


def test_replication_findings_are_lag_in_bytes_lag_in_time_with_wal_pending_a_missing_replica_and_a_bad_state():
    rows = [
        {"application_name": "r-bytes", "state": "streaming", "lag_bytes": 5000, "replay_lag_seconds": None},
        {"application_name": "r-time", "state": "streaming", "lag_bytes": 10, "replay_lag_seconds": 120.0},
        {"application_name": "r-catchup", "state": "catchup", "lag_bytes": 0, "replay_lag_seconds": None},
    ]

    findings = logic.evaluate_replication(rows, ["r-bytes", "r-gone"], M)

    assert findings == [
        "replica r-bytes is 5000 bytes behind (limit 1000)",
        "replica r-time replays 120 s behind (limit 60 s)",
        "replica r-catchup is catchup, not streaming",
        "expected replica r-gone is not connected",
    ]


def test_the_database_is_busy_over_the_active_and_long_query_limits():
    sessions = [
        {"pid": 1, "state": "active", "query_seconds": 400.0},
        {"pid": 2, "state": "active", "query_seconds": 1.0},
    ]
    m = Maintenance(max_active_connections=1, max_long_queries=0, long_query_seconds=300)

    assert logic.evaluate_load(sessions, m) == [
        "2 active sessions (limit 1)",
        "1 queries running over 300 s (limit 0): pids 1",
    ]


def test_backup_age_uses_the_newest_restore_point_and_ignores_restorable_time_without_retention():
    base = {"instance": "db-1", "latest_snapshot_id": "snap", "latest_snapshot_time": "2026-12-04T00:00:00Z"}
    fresh = dict(base, retention_days=7, latest_restorable_time="2026-12-06T02:05:00Z")
    disabled = dict(base, retention_days=0, latest_restorable_time="2026-12-06T02:05:00Z")

    assert logic.evaluate_backup(fresh, 26, NOW).status == Status.OK
    stale = logic.evaluate_backup(disabled, 26, NOW)
    assert stale.status == Status.FAILED
    assert stale.details["newest_kind"] == "snapshot snap"
    assert logic.evaluate_backup(None, 26, NOW).status == Status.SKIPPED
    nothing = logic.evaluate_backup({"instance": "db-1", "retention_days": 0}, 26, NOW)
    assert (
        nothing.status == Status.FAILED
        and nothing.details["finding"] == "no automated backups and no available snapshot"
    )


def test_only_reindex_leftovers_with_no_build_running_are_dropped():
    rows = [
        {"schema": "public", "index": "idx_sales_date_ccnew", "build_running": False},
        {"schema": "public", "index": "idx_sales_date_ccold1", "build_running": False},
        {"schema": "public", "index": "idx_orders_ccnew", "build_running": True},
        {"schema": "public", "index": "idx_failed_concurrent_build", "build_running": False},
    ]

    leftovers, others = logic.classify_invalid_indexes(rows)

    assert [r["index"] for r in leftovers] == ["idx_sales_date_ccnew", "idx_sales_date_ccold1"]
    assert [r["index"] for r in others] == ["idx_orders_ccnew", "idx_failed_concurrent_build"]


def test_reindex_candidates_are_the_configured_then_the_bloated_each_once():
    densities = [
        {"schema": "public", "index": "idx_a", "leaf_density": 30.0},
        {"schema": "public", "index": "idx_b", "leaf_density": 88.0},
        {"schema": "public", "index": "idx_c", "leaf_density": 45.5},
    ]

    candidates = logic.reindex_candidates([("public", "idx_c")], densities)

    assert [(c["index"], c["reason"]) for c in candidates] == [
        ("idx_c", "configured"),
        ("idx_a", "bloated: leaves 30 % full"),
    ]


def test_idle_sessions_split_into_terminate_report_and_protected():
    m = Maintenance(exclude_roles=["replicator"], exclude_applications=["pgbouncer"])
    hour = 3600.0
    rows = [
        {"pid": 1, "idle_seconds": 3 * hour, "role": "app", "backend_type": "client backend"},
        {"pid": 2, "idle_seconds": 1.5 * hour, "role": "app", "backend_type": "client backend"},
        {"pid": 3, "idle_seconds": 0.5 * hour, "role": "app", "backend_type": "client backend"},
        {"pid": 4, "idle_seconds": 3 * hour, "role": "replicator", "backend_type": "client backend"},
        {
            "pid": 5,
            "idle_seconds": 3 * hour,
            "role": "app",
            "application_name": "pgbouncer",
            "backend_type": "client backend",
        },
        {"pid": 6, "idle_seconds": 3 * hour, "role": "rdsadmin", "backend_type": "client backend"},
        {"pid": 7, "idle_seconds": 3 * hour, "role": "app", "backend_type": "walsender"},
        {"pid": 8, "idle_seconds": 3 * hour, "role": "app", "backend_type": "client backend"},
    ]

    groups = logic.classify_idle_sessions(rows, m, own_pid=8)

    assert [r["pid"] for r in groups["terminate"]] == [1]
    assert [r["pid"] for r in groups["report"]] == [2]
    assert {r["pid"]: r["protected"] for r in groups["protected"]} == {
        4: "role replicator is excluded",
        5: "application pgbouncer is excluded",
        6: "role rdsadmin is excluded",
        7: "a walsender process",
        8: "this runbook's own session",
    }


def test_analyze_verbose_output_is_summarized():
    notices = [
        'analyzing "public.sales"',
        '"sales": scanned 700 of 700 pages, containing 45000 live rows and 20000 dead rows; 30000 rows in sample, 45000 estimated total rows',
        'analyzing "public.products"',
        '"products": scanned 5 of 5 pages, containing 500 live rows and 0 dead rows; 500 rows in sample, 500 estimated total rows',
    ]

    summary = logic.summarize_analyze(notices)

    assert summary["relations_analyzed"] == 2
    assert summary["estimated_rows"] == 45500
    assert summary["dead_rows_in_sample"] == 20000
    assert [t["table"] for t in summary["largest"]] == ["public.sales", "public.products"]


def test_outcomes_and_the_error_a_run_ends_with():
    ok = {"status": "OK", "summary": "", "details": {}}
    failed = {"status": "FAILED", "summary": "x", "details": {}}

    assert logic.outcome_of({"results": {"backup": ok, "database": ok}}) == "COMPLETED"
    assert logic.error_of({"results": {"backup": ok, "database": failed}}) == "PreCheckFailed"
    assert logic.error_of({"results": {"post_checks": failed}}) == "PostCheckFailed"
    assert (
        logic.error_of({"failure": {"Error": "DatabaseUnavailable", "Cause": "{}"}, "results": {}})
        == "DatabaseUnavailable"
    )
    assert (
        logic.error_of({"results": {"vacuum": {"status": "SKIPPED", "summary": "", "details": {}}}}) is None
    )


def test_the_report_subject_is_one_short_line():
    state = {
        "results": {"database": {"status": "FAILED", "summary": "busy", "details": {"findings": ["a", "b"]}}}
    }

    subject, body = logic.render_report(state, "sales_db", "production", NOW)

    assert subject == "[production] DB maintenance sales_db: ABORTED, 3 findings"
    assert "\n" not in subject and len(subject) < 100
    assert body.startswith("# Database maintenance of sales_db (production): ABORTED")


def test_step_timeouts_are_the_runbook_budget_in_the_catalog_and_the_asl():
    asl = json.loads(
        Path(__file__).resolve().parents[2].joinpath("statemachines/db_maintenance.asl.json").read_text()
    )
    placeholders = {}

    def walk(states):
        for state in states.values():
            function = state.get("Parameters", {}).get("FunctionName", "")
            if function:
                placeholders[function.removeprefix("${").removesuffix("FunctionArn}")] = state[
                    "TimeoutSeconds"
                ]
            for branch in state.get("Branches", []):
                walk(branch["States"])

    walk(asl["States"])

    assert placeholders == {
        step: logic.STEP_BUDGET_SECONDS[step] for step in RUNBOOKS["db-maintenance"].steps
    }
    assert all(STEPS[step].timeout_seconds == seconds for step, seconds in logic.STEP_BUDGET_SECONDS.items())
    maintenance = sum(
        logic.STEP_BUDGET_SECONDS[s]
        for s in ("DbAnalyze", "DbReportUnusedIndexes", "DbVacuumTables", "DbReindex", "DbCleanupConnections")
    )
    assert maintenance == 35 * 60  # the runbook book's 35 minutes of maintenance tasks
    assert timedelta(seconds=asl["TimeoutSeconds"]) > timedelta(minutes=45)
