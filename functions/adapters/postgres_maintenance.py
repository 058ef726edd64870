"""The SQL of the weekly database maintenance. Every name is composed with ``psycopg.sql.Identifier``.

Each function takes an open autocommit connection (``functions.adapters.postgres.connect``) and does one
thing. Maintenance statements (ANALYZE, VACUUM, REINDEX CONCURRENTLY, DROP INDEX CONCURRENTLY) are sent one
per ``execute`` outside any transaction. Ages are measured against ``now`` given by the caller (the step's
clock), not the server's ``now()``, so the sandbox's scaled clock and pinned test clocks apply to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from functions.adapters.postgres import describe_error, translate
from functions.core.errors import DatabaseUnavailable
from functions.logic.db_maintenance import StatementFailed

Conn = psycopg.Connection[Any]

# backend_type of the sessions a cleanup may touch: everything else is the server's own machinery
# (autovacuum, walsender for replicas, background workers, checkpointer ...).
CLIENT_BACKEND = "client backend"


def fetch_rows(
    conn: Conn, query: sql.Composable | str, params: Sequence[Any] | dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)  # type: ignore[arg-type]
        return list(cur.fetchall())


def set_timeouts(conn: Conn, *, statement_ms: int, lock_ms: int | None = None) -> None:
    """Session limits: a statement never outlives the window, a lock wait never queues behind traffic."""
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{int(statement_ms)}ms",))
    if lock_ms is not None:
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(lock_ms)}ms",))


def render(conn: Conn, statement: sql.Composable) -> str:
    """The SQL text of a composed statement (for dry runs and reports)."""
    return statement.as_string(conn)


# --- pre-checks -------------------------------------------------------------------------------------------


def database_sizes(conn: Conn) -> list[dict[str, Any]]:
    """Every connectable database and its size in bytes, largest first."""
    return fetch_rows(
        conn,
        "SELECT datname AS name, pg_database_size(oid) AS bytes FROM pg_database "
        "WHERE datallowconn AND NOT datistemplate ORDER BY bytes DESC",
    )


def replication(conn: Conn) -> list[dict[str, Any]]:
    """pg_stat_replication with the lag in bytes behind the primary's current WAL position, and the lag
    times (NULL once a standby has caught up and no WAL flows: PostgreSQL's own 'no lag' signal)."""
    return fetch_rows(
        conn,
        "SELECT pid, application_name, host(client_addr) AS client_addr, state, sync_state, "
        "CASE WHEN pg_is_in_recovery() THEN NULL "
        "     ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint END AS lag_bytes, "
        "EXTRACT(EPOCH FROM replay_lag)::float8 AS replay_lag_seconds, "
        "EXTRACT(EPOCH FROM write_lag)::float8 AS write_lag_seconds "
        "FROM pg_stat_replication ORDER BY application_name",
    )


def activity(conn: Conn, now: datetime) -> list[dict[str, Any]]:
    """Client sessions other than this one: who, state, and for how long (seconds, against ``now``)."""
    return fetch_rows(
        conn,
        "SELECT pid, usename AS role, application_name, datname AS database, host(client_addr) AS client_addr, "
        "state, left(query, 500) AS query, wait_event_type, "
        "EXTRACT(EPOCH FROM (%(now)s - query_start))::float8 AS query_seconds, "
        "EXTRACT(EPOCH FROM (%(now)s - state_change))::float8 AS state_seconds, "
        "EXTRACT(EPOCH FROM (%(now)s - xact_start))::float8 AS xact_seconds, "
        "state_change, query_start "
        "FROM pg_stat_activity WHERE backend_type = %(client)s AND pid <> pg_backend_pid() ORDER BY pid",
        {"now": now, "client": CLIENT_BACKEND},
    )


# --- tables and indexes -----------------------------------------------------------------------------------


def resolve_relation(conn: Conn, parts: Sequence[str], kinds: str) -> dict[str, Any] | None:
    """The schema and name of the relation ``parts`` ([schema,] name, resolved through search_path like the
    statement will be), if it exists and its relkind is in ``kinds``; else None."""
    quoted = render(conn, sql.Identifier(*parts))
    rows = fetch_rows(
        conn,
        "SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.oid::bigint AS oid "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = to_regclass(%s)",
        (quoted,),
    )
    if not rows or rows[0]["kind"] not in kinds:
        return None
    return rows[0]


def table_stats(conn: Conn, oids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Live and dead tuples, total size and last (auto)vacuum/analyze of tables, by oid."""
    rows = fetch_rows(
        conn,
        "SELECT relid::bigint AS oid, schemaname AS schema, relname AS name, n_live_tup AS live_tuples, "
        "n_dead_tup AS dead_tuples, pg_total_relation_size(relid) AS bytes, "
        "to_char(greatest(last_vacuum, last_autovacuum) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
        "AS last_vacuum, "
        "to_char(greatest(last_analyze, last_autoanalyze) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
        "AS last_analyze "
        "FROM pg_stat_user_tables WHERE relid = ANY(%s::oid[])",
        (list(oids),),
    )
    return {row["oid"]: row for row in rows}


def vacuum_statement(schema: str, table: str) -> sql.Composed:
    return sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, table))


def analyze_statement() -> sql.Composed:
    return sql.SQL("ANALYZE VERBOSE").format()


def run_collecting_notices(conn: Conn, statement: sql.Composed) -> list[str]:
    """Run one statement and return the server's notices (ANALYZE VERBOSE reports through them)."""
    notices: list[str] = []

    def collect(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(diag.message_primary or "")

    conn.add_notice_handler(collect)
    try:
        conn.execute(statement)
    finally:
        conn.remove_notice_handler(collect)
    return notices


def stats_reset(conn: Conn) -> dict[str, Any]:
    """When this database's statistics were last reset (None: never) and when the server started."""
    rows = fetch_rows(
        conn,
        "SELECT stats_reset, pg_postmaster_start_time() AS server_started FROM pg_stat_database "
        "WHERE datname = current_database()",
    )
    return rows[0] if rows else {"stats_reset": None, "server_started": None}


def unused_indexes(conn: Conn) -> list[dict[str, Any]]:
    """Indexes never scanned since the statistics were reset, except those that enforce a constraint
    (primary keys, unique and exclusion indexes): their value is the constraint, not the scans."""
    return fetch_rows(
        conn,
        "SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS index, "
        "pg_relation_size(s.indexrelid) AS bytes, s.idx_scan AS scans "
        "FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid "
        "WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary AND NOT i.indisexclusion "
        "AND i.indisvalid "
        "ORDER BY bytes DESC, schema, index",
    )


def invalid_indexes(conn: Conn) -> list[dict[str, Any]]:
    """Invalid indexes (failed CREATE INDEX / REINDEX CONCURRENTLY), with whether a build is running on
    their table right now (then they are a build in progress, not a leftover)."""
    return fetch_rows(
        conn,
        "SELECT n.nspname AS schema, c.relname AS index, t.relname AS table, "
        "pg_relation_size(c.oid) AS bytes, "
        "EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.relid = i.indrelid) AS build_running "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY schema, index",
    )


def has_extension(conn: Conn, name: str) -> bool:
    return bool(conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (name,)).fetchone())


def index_density(conn: Conn, table_oids: Iterable[int], min_bytes: int) -> list[dict[str, Any]]:
    """Leaf density (pgstattuple's pgstatindex) of the valid b-tree indexes of ``table_oids`` of at least
    ``min_bytes``: a b-tree freshly built is ~90 % dense; far below that, REINDEX gives space back."""
    return fetch_rows(
        conn,
        "SELECT n.nspname AS schema, c.relname AS index, t.relname AS table, pg_relation_size(c.oid) AS bytes, "
        "(pgstatindex(c.oid::regclass)).avg_leaf_density::float8 AS leaf_density "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam "
        "WHERE i.indrelid = ANY(%s::oid[]) AND i.indisvalid AND a.amname = 'btree' "
        "AND pg_relation_size(c.oid) >= %s ORDER BY schema, index",
        (list(table_oids), min_bytes),
    )


def index_size(conn: Conn, schema: str, index: str) -> int | None:
    row = conn.execute(
        "SELECT pg_relation_size(to_regclass(%s))", (render(conn, sql.Identifier(schema, index)),)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def reindex_statement(schema: str, index: str) -> sql.Composed:
    return sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(schema, index))


def drop_index_statement(schema: str, index: str) -> sql.Composed:
    return sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, index))


# --- sessions ---------------------------------------------------------------------------------------------


def idle_sessions(conn: Conn, now: datetime, idle_seconds: float) -> list[dict[str, Any]]:
    """Client sessions (every database) idle, by ``state_change``, for more than ``idle_seconds``."""
    return fetch_rows(
        conn,
        "SELECT pid, usename AS role, application_name, datname AS database, host(client_addr) AS client_addr, "
        "backend_type, state_change, "
        "EXTRACT(EPOCH FROM (%(now)s - state_change))::float8 AS idle_seconds, "
        "(pid = pg_backend_pid()) AS is_self "
        "FROM pg_stat_activity WHERE state = 'idle' AND state_change < %(now)s - make_interval(secs => %(idle)s) "
        "ORDER BY state_change",
        {"now": now, "idle": idle_seconds},
    )


def terminate_if_still_idle(conn: Conn, pid: int, state_change: datetime) -> bool:
    """pg_terminate_backend(pid) only if it is still the same idle client session it was when listed (same
    ``state_change``): a session that ran a query since then is left alone. True when it was terminated."""
    row = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE pid = %s AND pid <> pg_backend_pid() AND state = 'idle' AND state_change = %s "
        "AND backend_type = %s",
        (pid, state_change, CLIENT_BACKEND),
    ).fetchone()
    return bool(row and row[0])


# --- post-checks ------------------------------------------------------------------------------------------


def server_facts(conn: Conn) -> dict[str, Any]:
    """version(), pg_is_in_recovery() and this database's size."""
    rows = fetch_rows(
        conn,
        "SELECT version() AS version, pg_is_in_recovery() AS in_recovery, "
        "current_database() AS database, pg_database_size(current_database()) AS bytes",
    )
    return rows[0]


class MaintenanceSql:
    """The statements above bound to one connection: what the maintenance procedures
    (``functions.logic.db_maintenance``) are given to act through."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def backend_pid(self) -> int:
        return int(self.conn.info.backend_pid)

    def render(self, statement: sql.Composed) -> str:
        return render(self.conn, statement)

    def execute(self, statement: sql.Composed) -> list[str]:
        """Run one maintenance statement, outside any transaction; return its notices. A lock or statement
        timeout or a refusal is ``StatementFailed``; a lost connection is ``DatabaseUnavailable``."""
        try:
            return run_collecting_notices(self.conn, statement)
        except psycopg.Error as error:
            named = translate(error, "maintenance statement")
            if isinstance(named, DatabaseUnavailable):
                raise named from None
            if isinstance(error, psycopg.errors.LockNotAvailable):
                kind = "lock_timeout"
            elif isinstance(error, psycopg.errors.QueryCanceled):
                kind = "timeout"
            else:
                kind = "error"
            raise StatementFailed(kind, describe_error(error)) from None

    analyze_statement = staticmethod(analyze_statement)
    vacuum_statement = staticmethod(vacuum_statement)
    reindex_statement = staticmethod(reindex_statement)
    drop_index_statement = staticmethod(drop_index_statement)

    def resolve_relation(self, parts: Sequence[str], kinds: str) -> dict[str, Any] | None:
        return resolve_relation(self.conn, parts, kinds)

    def table_stats(self, oids: Iterable[int]) -> dict[int, dict[str, Any]]:
        return table_stats(self.conn, oids)

    def stats_reset(self) -> dict[str, Any]:
        return stats_reset(self.conn)

    def unused_indexes(self) -> list[dict[str, Any]]:
        return unused_indexes(self.conn)

    def invalid_indexes(self) -> list[dict[str, Any]]:
        return invalid_indexes(self.conn)

    def has_extension(self, name: str) -> bool:
        return has_extension(self.conn, name)

    def index_density(self, table_oids: Iterable[int], min_bytes: int) -> list[dict[str, Any]]:
        return index_density(self.conn, table_oids, min_bytes)

    def index_size(self, schema: str, index: str) -> int | None:
        return index_size(self.conn, schema, index)

    def idle_sessions(self, now: datetime, idle_seconds: float) -> list[dict[str, Any]]:
        return idle_sessions(self.conn, now, idle_seconds)

    def terminate_if_still_idle(self, pid: int, state_change: datetime) -> bool:
        return terminate_if_still_idle(self.conn, pid, state_change)

    def set_timeouts(self, statement_ms: int, lock_ms: int | None = None) -> None:
        set_timeouts(self.conn, statement_ms=statement_ms, lock_ms=lock_ms)

    def configure_session(self, settings: dict[str, str]) -> None:
        """Session settings (names and values are parameters of set_config, never SQL text)."""
        for name, value in settings.items():
            self.conn.execute("SELECT set_config(%s, %s, false)", (name, value))
