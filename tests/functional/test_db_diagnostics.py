"""The P2/P3 database diagnostics against a real PostgreSQL: real long queries, real lock waits.

Ages are measured against the step's clock; tests pin it a minute after a query started instead of waiting.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta

import psycopg
import pytest

from functions.handlers import (
    db_cache_hit_ratio,
    db_connection_usage,
    db_find_blocking_locks,
    db_find_long_queries,
    db_top_statements,
)

pytestmark = pytest.mark.postgres

ENVELOPE = {
    "envelope": {
        "action": "run",
        "reason": "test",
        "runbook": "p3-high-latency",
        "trigger": {"kind": "manual", "source": "test"},
    }
}


def connect(db, app, autocommit=True):
    return psycopg.connect(
        f"host={db.host} port={db.port} dbname={db.dbname} user=postgres application_name={app}",
        autocommit=autocommit,
    )


def wait_for(observer, sql, params, what):
    """Poll pg_stat_activity until ``sql`` returns a row (a state to reach, not a time to assert)."""
    for _ in range(200):
        row = observer.execute(sql, params).fetchone()
        if row:
            return row
        time.sleep(0.02)
    raise AssertionError(f"never saw {what}")


@pytest.fixture
def in_background():
    threads = []

    def run(conn, sql):
        def target():
            with contextlib.suppress(psycopg.Error):  # terminated or cancelled by the test: that is the point
                conn.execute(sql)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        threads.append(thread)

    yield run
    for thread in threads:
        thread.join(timeout=10)


def test_a_long_running_query_is_found_with_its_pid_and_terminated_only_when_asked(
    pg_database, use_db_settings, pinned_clock, in_background, lambda_context
):
    use_db_settings(pg_database)
    observer, runner = connect(pg_database, "test-observer"), connect(pg_database, "report-job")
    runner_pid = runner.info.backend_pid  # read before the connection is busy in another thread
    in_background(runner, "SELECT pg_sleep(20)")
    (query_start,) = wait_for(
        observer,
        "SELECT query_start FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
        (runner_pid,),
        "the long query",
    )
    pinned_clock(query_start + timedelta(seconds=60))

    found = db_find_long_queries.lambda_handler(dict(ENVELOPE), lambda_context)
    ended = db_find_long_queries.lambda_handler(dict(ENVELOPE, terminate_long_queries=True), lambda_context)

    assert found["status"] == "DEGRADED"
    assert [q["pid"] for q in found["details"]["queries"]] == [runner_pid]
    assert found["details"]["queries"][0]["query"] == "SELECT pg_sleep(20)"
    assert found["details"]["terminated"] == []
    assert ended["status"] == "CHANGED"
    assert ended["details"]["terminated"] == [runner_pid]
    wait_for(
        observer,
        "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)",
        (runner_pid,),
        "the terminated backend gone",
    )
    observer.close()


def test_the_terminate_policy_refuses_a_long_write(
    pg_database, use_db_settings, pinned_clock, in_background, lambda_context
):
    use_db_settings(pg_database)
    observer, writer = connect(pg_database, "test-observer"), connect(pg_database, "batch-writer")
    observer.execute("CREATE TABLE IF NOT EXISTS ledger (id int PRIMARY KEY, n int)")
    writer_pid = writer.info.backend_pid  # read before the connection is busy in another thread
    in_background(writer, "INSERT INTO ledger SELECT 1, 1 FROM pg_sleep(20)")
    (query_start,) = wait_for(
        observer,
        "SELECT query_start FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
        (writer_pid,),
        "the long write",
    )
    pinned_clock(query_start + timedelta(seconds=60))

    result = db_find_long_queries.lambda_handler(dict(ENVELOPE, terminate_long_queries=True), lambda_context)

    assert result["details"]["terminated"] == []
    assert result["details"]["refused"] == [writer_pid]
    assert result["details"]["queries"][0]["refused"].startswith("not a read-only query")
    observer.execute("SELECT pg_cancel_backend(%s)", (writer_pid,))
    observer.close()


def test_a_blocked_query_is_found_with_the_pid_and_query_blocking_it(
    pg_database, use_db_settings, in_background, lambda_context
):
    use_db_settings(pg_database)
    observer = connect(pg_database, "test-observer")
    observer.execute("CREATE TABLE IF NOT EXISTS stock (id int PRIMARY KEY, n int)")
    observer.execute("INSERT INTO stock VALUES (1, 0) ON CONFLICT DO NOTHING")
    holder, waiter = connect(pg_database, "holder", autocommit=False), connect(pg_database, "waiter")
    holder.execute("UPDATE stock SET n = n + 1 WHERE id = 1")  # an open transaction holding the row lock
    waiter_pid = waiter.info.backend_pid  # read before the connection is busy in another thread
    in_background(waiter, "UPDATE stock SET n = n + 10 WHERE id = 1")
    wait_for(
        observer,
        "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
        (waiter_pid,),
        "the blocked update",
    )

    result = db_find_blocking_locks.lambda_handler(dict(ENVELOPE), lambda_context)

    holder.rollback()
    (pair,) = result["details"]["pairs"]
    assert result["status"] == "DEGRADED"
    assert (pair["waiting_pid"], pair["blocking_pid"]) == (waiter_pid, holder.info.backend_pid)
    assert pair["waiting_query"] == "UPDATE stock SET n = n + 10 WHERE id = 1"
    assert pair["blocking_query"] == "UPDATE stock SET n = n + 1 WHERE id = 1"
    assert pair["blocking_state"] == "idle in transaction"
    assert result["details"]["root_blocking_pids"] == [holder.info.backend_pid]
    observer.close()
    holder.close()


def test_top_statements_say_clearly_when_pg_stat_statements_is_missing_then_list_the_slowest(
    pg_database, use_db_settings, lambda_context
):
    use_db_settings(pg_database)
    with connect(pg_database, "test-observer") as conn:
        conn.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
        missing = db_top_statements.lambda_handler(dict(ENVELOPE), lambda_context)
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("SELECT pg_sleep(0.05)")
        present = db_top_statements.lambda_handler(dict(ENVELOPE), lambda_context)

    assert missing["status"] == "UNAVAILABLE"
    assert missing["summary"].startswith(f"pg_stat_statements is not installed in {pg_database.dbname}")
    assert present["status"] == "OK"
    assert any("pg_sleep" in row["query"] for row in present["details"]["statements_top"])


def test_cache_hit_ratio_and_connection_usage_are_reported(pg_database, use_db_settings, lambda_context):
    use_db_settings(pg_database)

    cache = db_cache_hit_ratio.lambda_handler(dict(ENVELOPE), lambda_context)
    usage = db_connection_usage.lambda_handler(dict(ENVELOPE), lambda_context)

    assert pg_database.dbname in {row["database"] for row in cache["details"]["databases"]}
    assert usage["status"] == "OK"
    assert usage["details"]["max_connections"] == 100
    assert usage["details"]["client"] >= 1
