"""Pure logic of the P2/P3 database diagnostics: the terminate policy and the findings."""

from __future__ import annotations

from datetime import UTC, datetime

from functions.core.config import Maintenance
from functions.core.results import Status
from functions.logic import db_diagnostics as logic

STARTED = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


def query(pid, sql, seconds=120.0, role="app", app="sales-service"):
    return {
        "pid": pid,
        "query": sql,
        "query_seconds": seconds,
        "role": role,
        "application_name": app,
        "query_start": STARTED,
    }


def test_the_policy_ends_only_long_read_queries_of_roles_and_applications_not_excluded():
    m = Maintenance(exclude_roles=["etl"], exclude_applications=["reporting"])

    assert logic.termination_refusal(query(1, "SELECT * FROM sales"), m, 30) is None
    assert logic.termination_refusal(query(2, "WITH x AS (SELECT 1) SELECT * FROM x"), m, 30) is None
    assert logic.termination_refusal(query(3, "SELECT 1", seconds=10), m, 30) == "running 10 s, not over 30 s"
    write = logic.termination_refusal(query(4, "UPDATE sales SET x = 1"), m, 30)
    hidden_write = logic.termination_refusal(
        query(5, "WITH d AS (DELETE FROM sales RETURNING *) SELECT 1"), m, 30
    )
    assert write is not None and write.startswith("not a read-only query")
    assert hidden_write is not None and hidden_write.startswith("not a read-only query")
    assert logic.termination_refusal(query(6, "SELECT 1", role="etl"), m, 30) == "role etl is excluded"
    assert (
        logic.termination_refusal(query(7, "SELECT 1", role="rdsadmin"), m, 30) == "role rdsadmin is excluded"
    )
    assert (
        logic.termination_refusal(query(8, "SELECT 1", app="reporting"), m, 30)
        == "application reporting is excluded"
    )


def test_terminations_are_opt_in_capped_and_dry_run_changes_nothing():
    rows = [query(pid, "SELECT pg_sleep(600)") for pid in range(1, 8)]
    ended = []

    def terminate(pid, started):
        ended.append(pid)
        return True

    report = logic.long_queries_result(
        rows, Maintenance(), seconds=30, terminate=False, dry_run=False, terminate_one=terminate
    )
    dry = logic.long_queries_result(
        rows, Maintenance(), seconds=30, terminate=True, dry_run=True, terminate_one=terminate
    )
    real = logic.long_queries_result(
        rows, Maintenance(), seconds=30, terminate=True, dry_run=False, terminate_one=terminate
    )

    assert report.status == Status.DEGRADED and report.details["terminated"] == []
    assert dry.status == Status.DRY_RUN
    assert dry.details["statements"] == [f"SELECT pg_terminate_backend({pid})" for pid in range(1, 6)]
    assert real.details["terminated"] == [1, 2, 3, 4, 5] == ended
    assert real.details["refused"] == [6, 7]


def test_blocking_names_the_root_blocker():
    rows = [
        {"waiting_pid": 30, "blocking_pid": 20},
        {"waiting_pid": 20, "blocking_pid": 10},
    ]

    result = logic.blocking_result(rows)

    assert result.details["root_blocking_pids"] == [10]
    assert result.details["waiting_pids"] == [20, 30]


def test_missing_pg_stat_statements_is_a_clear_finding():
    assert logic.top_statements_result("not_installed", "sales_db").summary.startswith(
        "pg_stat_statements is not installed in sales_db: CREATE EXTENSION pg_stat_statements"
    )
    assert "shared_preload_libraries" in logic.top_statements_result("not_loaded", "sales_db").summary


def test_cache_hit_ratio_is_judged_only_with_enough_traffic():
    rows = [
        {"database": "busy", "hits": 9000, "reads": 1000},
        {"database": "quiet", "hits": 5, "reads": 5},
        {"database": "warm", "hits": 999_000, "reads": 1000},
    ]

    result = logic.cache_hit_result(rows)

    assert result.status == Status.DEGRADED
    assert result.details["findings"] == ["busy: cache hit ratio 90.00% (under 99%)"]


def test_connection_usage_counts_against_the_connections_applications_may_use():
    usage = {
        "client": 80,
        "active": 10,
        "idle": 70,
        "idle_in_transaction": 0,
        "max_connections": 100,
        "reserved": 3,
    }

    result = logic.connection_usage_result(usage)

    assert result.status == Status.DEGRADED
    assert result.details["available"] == 97
