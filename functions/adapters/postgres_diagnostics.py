"""The SQL of the database diagnostics the P2 and P3 runbooks use (read-only, except one terminate)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from functions.adapters.postgres_maintenance import CLIENT_BACKEND, Conn, fetch_rows


def long_queries(conn: Conn, now: datetime, seconds: float) -> list[dict[str, Any]]:
    """Active client queries (other than this session's) started more than ``seconds`` before ``now``."""
    return fetch_rows(
        conn,
        "SELECT pid, usename AS role, application_name, datname AS database, host(client_addr) AS client_addr, "
        "left(query, 500) AS query, query_start, wait_event_type, wait_event, "
        "EXTRACT(EPOCH FROM (%(now)s - query_start))::float8 AS query_seconds, backend_type "
        "FROM pg_stat_activity WHERE state = 'active' AND backend_type = %(client)s AND pid <> pg_backend_pid() "
        "AND query_start < %(now)s - make_interval(secs => %(seconds)s) ORDER BY query_start",
        {"now": now, "seconds": seconds, "client": CLIENT_BACKEND},
    )


def terminate_if_same_query(conn: Conn, pid: int, query_start: datetime) -> bool:
    """pg_terminate_backend(pid) only while it still runs the query it was judged on (same query_start)."""
    row = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE pid = %s AND pid <> pg_backend_pid() AND state = 'active' AND query_start = %s AND backend_type = %s",
        (pid, query_start, CLIENT_BACKEND),
    ).fetchone()
    return bool(row and row[0])


def blocking_locks(conn: Conn, now: datetime) -> list[dict[str, Any]]:
    """One row per (waiting session, session blocking it), with both queries (pg_blocking_pids)."""
    return fetch_rows(
        conn,
        "SELECT w.pid AS waiting_pid, w.usename AS waiting_role, w.application_name AS waiting_application, "
        "left(w.query, 300) AS waiting_query, w.wait_event_type, "
        "EXTRACT(EPOCH FROM (%(now)s - w.query_start))::float8 AS waiting_seconds, "
        "b.pid AS blocking_pid, b.usename AS blocking_role, b.application_name AS blocking_application, "
        "b.state AS blocking_state, left(b.query, 300) AS blocking_query, "
        "EXTRACT(EPOCH FROM (%(now)s - b.xact_start))::float8 AS blocking_xact_seconds "
        "FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid) "
        "JOIN pg_stat_activity b ON b.pid = bp.pid ORDER BY waiting_seconds DESC, w.pid, b.pid",
        {"now": now},
    )


def top_statements(conn: Conn, limit: int) -> list[dict[str, Any]] | str:
    """The ``limit`` statements of this database with the highest mean execution time, or why there are
    none: ``"not_installed"`` (no extension in this database) or ``"not_loaded"`` (not preloaded)."""
    if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone():
        return "not_installed"
    try:
        return fetch_rows(
            conn,
            "SELECT queryid, left(query, 300) AS query, calls, round(mean_exec_time::numeric, 2)::float8 AS mean_ms, "
            "round(total_exec_time::numeric, 2)::float8 AS total_ms, rows "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY mean_exec_time DESC LIMIT %s",
            (limit,),
        )
    except psycopg.errors.ObjectNotInPrerequisiteState:
        return "not_loaded"


def cache_hits(conn: Conn) -> list[dict[str, Any]]:
    """Buffer hits and reads per database."""
    return fetch_rows(
        conn,
        "SELECT datname AS database, blks_hit AS hits, blks_read AS reads FROM pg_stat_database "
        "WHERE datname IS NOT NULL ORDER BY datname",
    )


def connection_usage(conn: Conn) -> dict[str, Any]:
    """Client connections by state, against max_connections and the superuser reserve."""
    return fetch_rows(
        conn,
        "SELECT count(*) FILTER (WHERE backend_type = %(client)s) AS client, "
        "count(*) FILTER (WHERE backend_type = %(client)s AND state = 'active') AS active, "
        "count(*) FILTER (WHERE backend_type = %(client)s AND state = 'idle') AS idle, "
        "count(*) FILTER (WHERE backend_type = %(client)s AND state LIKE 'idle in transaction%%') "
        "AS idle_in_transaction, "
        "current_setting('max_connections')::int AS max_connections, "
        "current_setting('superuser_reserved_connections')::int AS reserved "
        "FROM pg_stat_activity",
        {"client": CLIENT_BACKEND},
    )[0]
