"""Pure logic of the weekly database maintenance: the start, the window, thresholds, findings, the report.

No SQL, no boto3, no clock reads: every function is given what it judges (rows, ``now``) and returns plain
data or a ``StepResult``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from functions.core.clock import parse_iso, to_iso
from functions.core.config import SQL_IDENTIFIER, Maintenance, Settings
from functions.core.envelope import Envelope, Options, Trigger
from functions.core.errors import ConfigurationError, InvalidInput
from functions.core.results import Status, StepResult

RUNBOOK = "db-maintenance"

# The runbook book's minutes, per step (seconds). Pre-checks 5 min, maintenance 35, post-checks 5.
# The ASL TimeoutSeconds and the Lambda timeouts in functions/catalog.py are these numbers.
STEP_BUDGET_SECONDS: dict[str, int] = {
    "DbStartMaintenance": 30,
    "DbCheckBackup": 120,
    "DbCheckDatabase": 180,
    "DbAnalyze": 480,
    "DbReportUnusedIndexes": 120,
    "DbVacuumTables": 720,
    "DbReindex": 480,
    "DbCleanupConnections": 300,
    "DbPostChecks": 180,
    "DbPublishReport": 120,
}
STATEMENT_MARGIN_SECONDS = 15  # a statement is cancelled this long before its Lambda would time out

# A b-tree index is bloated when its leaves are less than this full (a fresh build is ~90 %) ...
BLOAT_LEAF_DENSITY_PERCENT = 50.0
# ... and worth a rebuild from this size (pgstatindex reads the whole index).
BLOAT_MIN_INDEX_BYTES = 256 * 1024
# Statistics younger than this are too little evidence to call an index unused.
UNUSED_INDEX_EVIDENCE_DAYS = 7
# Roles whose sessions are the platform's, never ours to end (RDS's own agent).
ALWAYS_EXCLUDED_ROLES = ("rdsadmin",)
MAX_LISTED = 50  # rows listed in step details; the rest are counted
# The session the maintenance statements run in, so the application keeps its latency while they run
# (bench/db_maintenance_load.py: p95 under maintenance went from 1.4-5x to 1.0-1.7x of its baseline):
# no parallel workers, so a REINDEX or a VACUUM's index pass leaves the other CPUs to the application;
# VACUUM and ANALYZE at twice autovacuum's default pace instead of unthrottled.
GENTLE_SESSION: dict[str, str] = {
    "max_parallel_maintenance_workers": "0",
    "vacuum_cost_delay": "2ms",
    "vacuum_cost_limit": "400",
}

_CC_LEFTOVER = re.compile(r"^(?P<base>.+)_cc(?P<kind>new|old)\d*$")


class Window(BaseModel):
    """The maintenance window: started_at .. deadline (ISO UTC)."""

    model_config = ConfigDict(frozen=True)

    started_at: str
    deadline: str
    minutes: int

    def remaining_seconds(self, now: datetime) -> float:
        return (parse_iso(self.deadline) - now).total_seconds()


# --- the start --------------------------------------------------------------------------------------------


def open_window(start: datetime, now: datetime, minutes: int) -> Window:
    """The window opens at the scheduled time (or now, for a manual run) and lasts ``minutes``.
    A scheduled run that starts late keeps the scheduled end: the window is the maintenance slot."""
    begin = min(start, now)
    return Window(
        started_at=to_iso(begin), deadline=to_iso(begin + timedelta(minutes=minutes)), minutes=minutes
    )


def normalize_start(event: dict[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    """The state the flow carries from an EventBridge Scheduled Event or a manual ``{"dry_run": bool}``:
    ``envelope``, ``window``, ``database`` and ``results``."""
    database_key(settings)  # refuse to start on a configuration that names no database
    if event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events":
        resources = event.get("resources") or []
        trigger = Trigger(
            kind="schedule",
            source=str(resources[0]) if resources else "schedule",
            event_id=str(event.get("id") or "") or None,
        )
        try:
            start = parse_iso(str(event.get("time")))
        except ValueError:
            raise InvalidInput(f"scheduled event has no valid time: {event.get('time')!r}") from None
        dry_run = _replay_dry_run(event)
    else:
        allowed = {"dry_run", "requested_by", "reason"}
        unknown = set(event) - allowed
        if unknown:
            raise InvalidInput(
                f"not a schedule event nor a manual start: unexpected keys {sorted(unknown)} "
                f'(a manual start is {{"dry_run": true|false}})'
            )
        dry_run = event.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise InvalidInput(f"dry_run must be true or false, not {dry_run!r}")
        trigger = Trigger(kind="manual", source=str(event.get("requested_by") or "manual"))
        start = now
    envelope = Envelope(
        action="run",
        reason=str(event.get("reason") or "weekly database maintenance"),
        runbook=RUNBOOK,
        trigger=trigger,
        options=Options(dry_run=dry_run),
    )
    window = open_window(start, now, settings.maintenance.window_minutes)
    return {
        "envelope": envelope.to_state(),
        "window": window.model_dump(),
        "database": database_key(settings),
        "results": {},
    }


def _replay_dry_run(event: dict[str, Any]) -> bool:
    """A schedule event cannot carry options; a person replaying one (CLI ``--dry-run``) adds
    ``"autopilot": {"dry_run": true}``, the same convention as for alarm events."""
    extra = event.get("autopilot", {})
    if not isinstance(extra, dict) or not set(extra) <= {"dry_run"}:
        raise InvalidInput("'autopilot' may only hold {'dry_run': true|false}")
    dry_run = extra.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput("'autopilot.dry_run' must be true or false")
    return dry_run


def database_key(settings: Settings) -> str:
    """The key of ``databases`` the maintenance runs on: ``maintenance.database``, or the only one."""
    if settings.maintenance.database:
        return settings.maintenance.database
    if len(settings.databases) == 1:
        return next(iter(settings.databases))
    raise ConfigurationError(
        "maintenance.database is not set and there is not exactly one database configured"
    )


def skipped_past_window(step: str, window: Window, now: datetime) -> StepResult | None:
    """A SKIPPED result when ``step`` would start at or after the window's end; None when it may run."""
    if window.remaining_seconds(now) > 0:
        return None
    return StepResult(
        status=Status.SKIPPED,
        summary=f"{step} skipped: it would start at {to_iso(now)}, past the window's end {window.deadline}",
        details={"skipped": "window", "would_start": to_iso(now), "deadline": window.deadline},
    )


def statement_timeout_ms(step: str, window: Window, now: datetime) -> int:
    """How long one statement of ``step`` may run: within its Lambda budget and within the window."""
    budget = STEP_BUDGET_SECONDS[step] - STATEMENT_MARGIN_SECONDS
    return max(1_000, int(min(budget, window.remaining_seconds(now)) * 1000))


# --- names ------------------------------------------------------------------------------------------------


def split_name(name: str, *, default_schema: str | None = None) -> tuple[str, ...]:
    """``schema.name`` or ``name`` as identifier parts; refuses anything but plain identifiers (the
    configuration already does; this is the last line before SQL, so a name built elsewhere is checked too)."""
    parts = tuple(name.split(".")) if isinstance(name, str) else ()
    if not 1 <= len(parts) <= 2 or not all(re.fullmatch(SQL_IDENTIFIER, part) for part in parts):
        raise InvalidInput(f"{name!r} is not a plain [schema.]name identifier; nothing was run")
    if len(parts) == 1 and default_schema:
        return (default_schema, parts[0])
    return parts


def split_names(names: list[str]) -> list[tuple[str, ...]]:
    """All names checked before any is used: one bad name refuses the whole step, before any statement."""
    return [split_name(name) for name in names]


# --- pre-checks -------------------------------------------------------------------------------------------


def evaluate_backup(backup: dict[str, Any] | None, max_age_hours: int, now: datetime) -> StepResult:
    """OK when the newest restore point (automated backups' latest restorable time, or the newest available
    snapshot) is younger than ``max_age_hours``; FAILED otherwise; SKIPPED when no RDS instance is known."""
    if backup is None:
        return StepResult(
            status=Status.SKIPPED,
            summary="backups not verified: no rds_instance_id configured for the database",
            details={"finding": "backup status unknown (no RDS instance configured)"},
        )
    points = []
    if backup.get("retention_days") and backup.get("latest_restorable_time"):
        points.append(("automated backup", backup["latest_restorable_time"]))
    if backup.get("latest_snapshot_time"):
        points.append(("snapshot " + str(backup.get("latest_snapshot_id")), backup["latest_snapshot_time"]))
    details = dict(backup)
    if not points:
        details["finding"] = "no automated backups and no available snapshot"
        return StepResult(
            status=Status.FAILED, summary=f"{backup['instance']}: no backup to restore", details=details
        )
    kind, newest = max(points, key=lambda point: parse_iso(point[1]))
    age_hours = (now - parse_iso(newest)).total_seconds() / 3600
    details.update({"newest": newest, "newest_kind": kind, "age_hours": round(age_hours, 2)})
    summary = f"{backup['instance']}: newest backup ({kind}) is {age_hours:.1f} h old"
    if age_hours <= max_age_hours:
        return StepResult(status=Status.OK, summary=summary, details=details)
    details["finding"] = f"newest backup is {age_hours:.1f} h old (limit {max_age_hours} h)"
    return StepResult(status=Status.FAILED, summary=f"{summary}, over {max_age_hours} h", details=details)


def evaluate_replication(rows: list[dict[str, Any]], expected: list[str], m: Maintenance) -> list[str]:
    """Findings about replicas. Lag in bytes is the primary's WAL not yet replayed; lag in time counts only
    while there is such WAL: an idle primary with caught-up replicas has stale or NULL lag times and is fine."""
    findings = []
    for row in rows:
        name = row.get("application_name") or row.get("client_addr") or str(row.get("pid"))
        lag_bytes = row.get("lag_bytes") or 0
        lag_seconds = row.get("replay_lag_seconds")
        if row.get("state") != "streaming":
            findings.append(f"replica {name} is {row.get('state')}, not streaming")
        if lag_bytes > m.replication_lag_bytes:
            findings.append(f"replica {name} is {lag_bytes} bytes behind (limit {m.replication_lag_bytes})")
        elif lag_bytes > 0 and lag_seconds is not None and lag_seconds > m.replication_lag_seconds:
            findings.append(
                f"replica {name} replays {lag_seconds:.0f} s behind (limit {m.replication_lag_seconds} s)"
            )
    seen = {str(row.get(key)) for row in rows for key in ("application_name", "client_addr") if row.get(key)}
    findings += [f"expected replica {name} is not connected" for name in expected if name not in seen]
    return findings


def evaluate_load(sessions: list[dict[str, Any]], m: Maintenance) -> list[str]:
    """Findings that make the database too busy for maintenance: active sessions, long-running queries."""
    active = [s for s in sessions if s.get("state") == "active"]
    long = [s for s in active if (s.get("query_seconds") or 0) > m.long_query_seconds]
    findings = []
    if len(active) > m.max_active_connections:
        findings.append(f"{len(active)} active sessions (limit {m.max_active_connections})")
    if len(long) > m.max_long_queries:
        pids = ", ".join(str(s["pid"]) for s in long[:10])
        findings.append(
            f"{len(long)} queries running over {m.long_query_seconds} s (limit {m.max_long_queries}): pids {pids}"
        )
    return findings


def evaluate_database_checks(
    sizes: list[dict[str, Any]],
    replicas: list[dict[str, Any]],
    sessions: list[dict[str, Any]],
    expected_replicas: list[str],
    m: Maintenance,
) -> StepResult:
    """OK (proceed) or FAILED (abort) from sizes, replication and load."""
    replication_findings = evaluate_replication(replicas, expected_replicas, m)
    load_findings = evaluate_load(sessions, m)
    findings = replication_findings + load_findings
    details = {
        "sizes": sizes[:MAX_LISTED],
        "replicas": [plain_row(row) for row in replicas[:MAX_LISTED]],
        "active_sessions": sum(1 for s in sessions if s.get("state") == "active"),
        "sessions": len(sessions),
        "findings": findings,
        "busy": bool(load_findings),
    }
    total = sum(int(s["bytes"]) for s in sizes)
    if findings:
        return StepResult(
            status=Status.FAILED, summary="pre-check failed: " + "; ".join(findings), details=details
        )
    return StepResult(
        status=Status.OK,
        summary=(
            f"{len(sizes)} databases, {human_bytes(total)}; {len(replicas)} replicas healthy; "
            f"{details['active_sessions']} active sessions"
        ),
        details=details,
    )


# --- statistics and indexes -------------------------------------------------------------------------------

_ANALYZE_LINE = re.compile(
    r'^"(?P<table>[^"]+)": scanned (?P<scanned>\d+) of (?P<pages>\d+) pages, containing (?P<live>\d+) live rows '
    r"and (?P<dead>\d+) dead rows; (?P<sample>\d+) rows in sample, (?P<estimated>\d+) estimated total rows"
)
_ANALYZING = re.compile(r'^analyzing "(?P<name>[^"]+)"')


def summarize_analyze(notices: list[str]) -> dict[str, Any]:
    """ANALYZE VERBOSE's notices as numbers: tables analyzed, rows estimated, dead rows seen, the largest."""
    analyzed: list[str] = []
    tables = []
    for line in notices:
        if heading := _ANALYZING.match(line):
            analyzed.append(heading.group("name"))  # schema-qualified; the line after names the table alone
        elif match := _ANALYZE_LINE.match(line):
            tables.append(
                {
                    "table": analyzed[-1] if analyzed else match.group("table"),
                    "pages": int(match.group("pages")),
                    "estimated_rows": int(match.group("estimated")),
                    "dead_rows_in_sample": int(match.group("dead")),
                }
            )
    tables.sort(key=lambda row: row["estimated_rows"], reverse=True)
    return {
        "relations_analyzed": len(analyzed),
        "estimated_rows": sum(row["estimated_rows"] for row in tables),
        "dead_rows_in_sample": sum(row["dead_rows_in_sample"] for row in tables),
        "largest": tables[:10],
    }


def evaluate_unused_indexes(
    rows: list[dict[str, Any]], stats_reset: datetime | None, server_started: datetime | None, now: datetime
) -> StepResult:
    """The unused-index report, with how much evidence the counters hold."""
    if stats_reset is not None:
        evidence_days = (now - stats_reset).total_seconds() / 86400
        since = f"statistics reset {evidence_days:.1f} days ago ({to_iso(stats_reset)})"
    else:
        evidence_days = None
        since = "statistics never reset" + (
            f" (server up since {to_iso(server_started)})" if server_started else ""
        )
    total = sum(int(row["bytes"]) for row in rows)
    details: dict[str, Any] = {
        "indexes": [plain_row(row) for row in rows[:MAX_LISTED]],
        "count": len(rows),
        "bytes": total,
        "stats_reset": to_iso(stats_reset) if stats_reset else None,
        "evidence_days": round(evidence_days, 2) if evidence_days is not None else None,
    }
    if evidence_days is not None and evidence_days < UNUSED_INDEX_EVIDENCE_DAYS:
        details["finding"] = (
            f"statistics are only {evidence_days:.1f} days old: too little evidence to drop an index on"
        )
    if not rows:
        return StepResult(status=Status.OK, summary=f"no unused indexes; {since}", details=details)
    names = ", ".join(f"{row['schema']}.{row['index']}" for row in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return StepResult(
        status=Status.DEGRADED,
        summary=f"{len(rows)} unused indexes ({human_bytes(total)}): {names}{more}; {since}",
        details=details,
    )


def classify_invalid_indexes(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(leftovers of an interrupted REINDEX CONCURRENTLY safe to drop, other invalid indexes to report).

    A leftover is an invalid index named ``<index>_ccnew[N]`` (the copy that was being built; the original is
    intact) or ``<index>_ccold[N]`` (the original after the swap; the new index carries the name) on a table
    where no index build is running right now."""
    leftovers, others = [], []
    for row in rows:
        if _CC_LEFTOVER.match(row["index"]) and not row.get("build_running"):
            leftovers.append(row)
        else:
            others.append(row)
    return leftovers, others


def reindex_candidates(
    configured: list[tuple[str, ...]], densities: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Indexes to rebuild: the configured ones, then the bloated ones, each once."""
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for schema, index in configured:
        chosen[(schema, index)] = {"schema": schema, "index": index, "reason": "configured"}
    for row in densities:
        density = row.get("leaf_density")
        if density is not None and density < BLOAT_LEAF_DENSITY_PERCENT:
            key = (row["schema"], row["index"])
            if key in chosen:
                chosen[key]["leaf_density"] = round(density, 1)
            else:
                chosen[key] = {
                    "schema": row["schema"],
                    "index": row["index"],
                    "reason": f"bloated: leaves {density:.0f} % full",
                    "leaf_density": round(density, 1),
                }
    return list(chosen.values())


# --- sessions ---------------------------------------------------------------------------------------------


def classify_idle_sessions(
    rows: list[dict[str, Any]], m: Maintenance, own_pid: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Sessions idle (since ``state_change``) over the report threshold, split into ``terminate`` (idle over
    the terminate threshold and not protected), ``protected`` (own backend, not a client backend, or an
    excluded role or application) and ``report`` (idle over the report threshold only)."""
    roles = set(m.exclude_roles) | set(ALWAYS_EXCLUDED_ROLES)
    apps = set(m.exclude_applications)
    out: dict[str, list[dict[str, Any]]] = {"terminate": [], "protected": [], "report": []}
    for row in rows:
        idle = float(row.get("idle_seconds") or 0)
        if idle <= m.idle_report_minutes * 60:
            continue
        reason = None
        if row.get("is_self") or (own_pid is not None and row.get("pid") == own_pid):
            reason = "this runbook's own session"
        elif row.get("backend_type", "client backend") != "client backend":
            reason = f"a {row.get('backend_type')} process"
        elif row.get("role") in roles:
            reason = f"role {row.get('role')} is excluded"
        elif row.get("application_name") in apps:
            reason = f"application {row.get('application_name')} is excluded"
        entry = dict(row, idle_minutes=round(idle / 60, 1))
        if reason:
            out["protected"].append(dict(entry, protected=reason))
        elif idle > m.idle_terminate_minutes * 60:
            out["terminate"].append(entry)
        else:
            out["report"].append(entry)
    return out


# --- procedures: the maintenance steps, acting through a MaintenanceOps -------------------------------------


class StatementFailed(Exception):
    """A maintenance statement did not complete: ``kind`` is ``lock_timeout``, ``timeout`` or ``error``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class MaintenanceOps(Protocol):
    """What the procedures act through (``functions.adapters.postgres_maintenance.MaintenanceSql``)."""

    def backend_pid(self) -> int: ...
    def render(self, statement: Any) -> str: ...
    def set_timeouts(self, statement_ms: int, lock_ms: int | None = None) -> None: ...
    def configure_session(self, settings: dict[str, str]) -> None: ...
    def execute(self, statement: Any) -> list[str]: ...
    def analyze_statement(self) -> Any: ...
    def vacuum_statement(self, schema: str, table: str) -> Any: ...
    def reindex_statement(self, schema: str, index: str) -> Any: ...
    def drop_index_statement(self, schema: str, index: str) -> Any: ...
    def resolve_relation(self, parts: Sequence[str], kinds: str) -> dict[str, Any] | None: ...
    def table_stats(self, oids: Iterable[int]) -> dict[int, dict[str, Any]]: ...
    def stats_reset(self) -> dict[str, Any]: ...
    def unused_indexes(self) -> list[dict[str, Any]]: ...
    def invalid_indexes(self) -> list[dict[str, Any]]: ...
    def has_extension(self, name: str) -> bool: ...
    def index_density(self, table_oids: Iterable[int], min_bytes: int) -> list[dict[str, Any]]: ...
    def index_size(self, schema: str, index: str) -> int | None: ...
    def idle_sessions(self, now: datetime, idle_seconds: float) -> list[dict[str, Any]]: ...
    def terminate_if_still_idle(self, pid: int, state_change: datetime) -> bool: ...


class Pace:
    """A step's time: the clock, the window and the step's budget, consulted before each statement."""

    def __init__(self, step: str, window: Window | None, now: Callable[[], datetime]) -> None:
        self.step, self.window, self.now = step, window, now

    def expired(self) -> bool:
        return self.window is not None and self.window.remaining_seconds(self.now()) <= 0

    def statement_ms(self) -> int:
        if self.window is None:
            return (STEP_BUDGET_SECONDS[self.step] - STATEMENT_MARGIN_SECONDS) * 1000
        return statement_timeout_ms(self.step, self.window, self.now())


def _dry_run(what: str, statements: list[str], details: dict[str, Any] | None = None) -> StepResult:
    return StepResult(
        status=Status.DRY_RUN,
        summary=f"dry run: would {what} ({len(statements)} statements)",
        details={**(details or {}), "statements": statements, "dry_run": True},
    )


def run_analyze(ops: MaintenanceOps, *, dry_run: bool, pace: Pace) -> StepResult:
    """ANALYZE VERBOSE of the database, its output summarized."""
    statement = ops.analyze_statement()
    statements = [ops.render(statement)]
    if dry_run:
        return _dry_run(
            "update the planner statistics of every table", statements, {"session": GENTLE_SESSION}
        )
    ops.configure_session(GENTLE_SESSION)
    ops.set_timeouts(pace.statement_ms())
    try:
        notices = ops.execute(statement)
    except StatementFailed as failure:
        return StepResult(
            status=Status.FAILED,
            summary=f"ANALYZE did not complete ({failure.kind}): {failure.message}",
            details={"statements": statements, "findings": [f"ANALYZE stopped: {failure.message}"]},
        )
    summary = summarize_analyze(notices)
    return StepResult(
        status=Status.CHANGED,
        summary=(
            f"statistics updated for {summary['relations_analyzed']} relations "
            f"(~{summary['estimated_rows']} rows, {summary['dead_rows_in_sample']} dead rows in the samples)"
        ),
        details={**summary, "statements": statements, "session": GENTLE_SESSION},
    )


def report_unused_indexes(ops: MaintenanceOps, now: datetime, pace: Pace) -> StepResult:
    """The unused-index report (read-only)."""
    ops.set_timeouts(pace.statement_ms())
    reset = ops.stats_reset()
    return evaluate_unused_indexes(
        ops.unused_indexes(), reset.get("stats_reset"), reset.get("server_started"), now
    )


def vacuum_tables(
    ops: MaintenanceOps, names: list[str], *, dry_run: bool, pace: Pace, lock_ms: int
) -> StepResult:
    """VACUUM (ANALYZE) each configured table, one statement at a time, with dead tuples and sizes before and
    after. Every name is checked before any statement runs; a table that does not exist is reported."""
    parts = split_names(names)
    ops.set_timeouts(pace.statement_ms(), lock_ms)  # the catalog reads before the first VACUUM too
    entries: list[dict[str, Any]] = []
    findings: list[str] = []
    for name, name_parts in zip(names, parts, strict=True):
        relation = ops.resolve_relation(name_parts, "rmp")
        if relation is None:
            findings.append(f"table {name} does not exist: not vacuumed")
            entries.append({"table": name, "outcome": "missing"})
        else:
            entries.append(
                {
                    "table": f"{relation['schema']}.{relation['name']}",
                    "oid": relation["oid"],
                    "schema": relation["schema"],
                    "name": relation["name"],
                }
            )
    present = [entry for entry in entries if "oid" in entry]
    before = ops.table_stats(entry["oid"] for entry in present)
    for entry in present:
        stats = before.get(entry["oid"], {})
        entry.update(
            dead_before=stats.get("dead_tuples"),
            live_before=stats.get("live_tuples"),
            bytes_before=stats.get("bytes"),
        )
    statements = [ops.render(ops.vacuum_statement(e["schema"], e["name"])) for e in present]
    if dry_run:
        return _dry_run(
            f"vacuum and analyze {len(present)} tables",
            statements,
            {"tables": _public(entries), "findings": findings, "session": GENTLE_SESSION},
        )
    ops.configure_session(GENTLE_SESSION)
    for entry in present:
        if pace.expired():
            entry["outcome"] = "skipped: the window ended"
            findings.append(f"{entry['table']}: not vacuumed, the maintenance window ended")
            continue
        ops.set_timeouts(pace.statement_ms(), lock_ms)
        try:
            ops.execute(ops.vacuum_statement(entry["schema"], entry["name"]))
            entry["outcome"] = "vacuumed"
        except StatementFailed as failure:
            entry["outcome"] = f"not vacuumed ({failure.kind})"
            findings.append(f"{entry['table']}: VACUUM did not complete ({failure.kind}): {failure.message}")
    after = ops.table_stats(entry["oid"] for entry in present)
    for entry in present:
        stats = after.get(entry["oid"], {})
        entry.update(
            dead_after=stats.get("dead_tuples"),
            bytes_after=stats.get("bytes"),
            last_vacuum=stats.get("last_vacuum"),
        )
    done = [entry for entry in present if entry.get("outcome") == "vacuumed"]
    removed = sum(max(0, (e.get("dead_before") or 0) - (e.get("dead_after") or 0)) for e in done)
    details = {
        "session": GENTLE_SESSION,
        "tables": _public(entries),
        "statements": statements,
        "findings": findings,
        "dead_removed": removed,
    }
    summary = f"vacuumed {len(done)} of {len(names)} tables, {removed} dead tuples removed"
    if findings:
        summary += f"; {len(findings)} findings"
    status = Status.CHANGED if done else (Status.FAILED if present else Status.DEGRADED)
    return StepResult(status=status, summary=summary, details=details)


def reindex_indexes(
    ops: MaintenanceOps, configured: list[str], tables: list[str], *, dry_run: bool, pace: Pace, lock_ms: int
) -> StepResult:
    """Drop the leftovers of an interrupted REINDEX CONCURRENTLY, then REINDEX INDEX CONCURRENTLY the
    configured indexes and the bloated b-tree indexes of the configured tables, with a lock_timeout."""
    configured_parts, table_parts = split_names(configured), split_names(tables)
    ops.set_timeouts(pace.statement_ms(), lock_ms)  # pgstatindex reads whole indexes: bounded too
    findings: list[str] = []
    leftovers, other_invalid = classify_invalid_indexes(ops.invalid_indexes())
    findings += [
        f"invalid index {r['schema']}.{r['index']} left in place (not a REINDEX leftover"
        + (", a build is running" if r.get("build_running") else "")
        + ")"
        for r in other_invalid
    ]
    invalid_names = {(r["schema"], r["index"]) for r in leftovers + other_invalid}
    resolved: list[tuple[str, ...]] = []
    for name, parts in zip(configured, configured_parts, strict=True):
        relation = ops.resolve_relation(parts, "iI")
        if relation is None:
            findings.append(f"index {name} does not exist: not rebuilt")
        else:
            resolved.append((relation["schema"], relation["name"]))
    table_oids = [rel["oid"] for parts in table_parts if (rel := ops.resolve_relation(parts, "rmp"))]
    densities: list[dict[str, Any]] = []
    if ops.has_extension("pgstattuple"):
        densities = ops.index_density(table_oids, BLOAT_MIN_INDEX_BYTES)
    else:
        findings.append(
            "pgstattuple is not installed: index bloat not measured, only configured indexes rebuilt"
        )
    candidates = [
        c for c in reindex_candidates(resolved, densities) if (c["schema"], c["index"]) not in invalid_names
    ]
    drops = [ops.render(ops.drop_index_statement(r["schema"], r["index"])) for r in leftovers]
    rebuilds = [ops.render(ops.reindex_statement(c["schema"], c["index"])) for c in candidates]
    details: dict[str, Any] = {
        "session": GENTLE_SESSION,
        "leftovers": [plain_row(r) for r in leftovers],
        "indexes": candidates,
        "densities": [plain_row(r) for r in densities[:MAX_LISTED]],
        "findings": findings,
        "statements": drops + rebuilds,
    }
    if dry_run:
        return _dry_run(
            f"drop {len(drops)} leftovers and rebuild {len(rebuilds)} indexes", drops + rebuilds, details
        )
    ops.configure_session(GENTLE_SESSION)
    dropped = 0
    for row in leftovers:
        ops.set_timeouts(pace.statement_ms(), lock_ms)
        try:
            ops.execute(ops.drop_index_statement(row["schema"], row["index"]))
            row_outcome, dropped = "dropped", dropped + 1
        except StatementFailed as failure:
            row_outcome = f"not dropped ({failure.kind})"
            findings.append(f"leftover {row['schema']}.{row['index']} not dropped: {failure.message}")
        details["leftovers"] = [
            dict(r, outcome=row_outcome) if r["index"] == row["index"] else r for r in details["leftovers"]
        ]
    rebuilt = 0
    for candidate in candidates:
        if pace.expired():
            candidate["outcome"] = "skipped: the window ended"
            findings.append(
                f"{candidate['schema']}.{candidate['index']}: not rebuilt, the maintenance window ended"
            )
            continue
        candidate["bytes_before"] = ops.index_size(candidate["schema"], candidate["index"])
        ops.set_timeouts(pace.statement_ms(), lock_ms)
        try:
            ops.execute(ops.reindex_statement(candidate["schema"], candidate["index"]))
            candidate["outcome"], rebuilt = "rebuilt", rebuilt + 1
        except StatementFailed as failure:
            candidate["outcome"] = f"not rebuilt ({failure.kind})"
            findings.append(
                f"{candidate['schema']}.{candidate['index']}: REINDEX did not complete: {failure.message}"
            )
            findings += _drop_own_leftovers(ops, candidate, lock_ms)
        candidate["bytes_after"] = ops.index_size(candidate["schema"], candidate["index"])
    if not leftovers and not candidates:
        return StepResult(
            status=Status.NOOP, summary="no index needs a rebuild and no leftovers", details=details
        )
    saved = sum(
        (c.get("bytes_before") or 0) - (c.get("bytes_after") or 0)
        for c in candidates
        if c.get("outcome") == "rebuilt"
    )
    summary = f"rebuilt {rebuilt} of {len(candidates)} indexes ({human_bytes(saved)} freed), dropped {dropped} leftovers"
    status = Status.CHANGED if rebuilt or dropped else Status.FAILED
    return StepResult(status=status, summary=summary, details=details)


def _drop_own_leftovers(ops: MaintenanceOps, candidate: dict[str, Any], lock_ms: int) -> list[str]:
    """After our REINDEX failed: drop the invalid copy it left (``<index>_ccnew``), so no leftover stays."""
    notes = []
    leftovers, _ = classify_invalid_indexes(ops.invalid_indexes())
    for row in leftovers:
        match = _CC_LEFTOVER.match(row["index"])
        if row["schema"] == candidate["schema"] and match and match.group("base") == candidate["index"]:
            ops.set_timeouts(60_000, lock_ms)
            try:
                ops.execute(ops.drop_index_statement(row["schema"], row["index"]))
                notes.append(f"dropped the leftover {row['schema']}.{row['index']} of the failed REINDEX")
            except StatementFailed as failure:
                notes.append(f"leftover {row['schema']}.{row['index']} remains: {failure.message}")
    return notes


def cleanup_connections(ops: MaintenanceOps, m: Maintenance, *, dry_run: bool, now: datetime) -> StepResult:
    """Report client sessions idle (by state_change) over ``idle_report_minutes``; terminate those over
    ``idle_terminate_minutes`` that are not protected, each only if it is still the same idle session."""
    rows = ops.idle_sessions(now, m.idle_report_minutes * 60)
    groups = classify_idle_sessions(rows, m, own_pid=ops.backend_pid())
    statements = [f"SELECT pg_terminate_backend({row['pid']})" for row in groups["terminate"]]
    terminated: list[dict[str, Any]] = []
    busy_again: list[dict[str, Any]] = []
    if not dry_run:
        for row in groups["terminate"]:
            (
                terminated if ops.terminate_if_still_idle(row["pid"], row["state_change"]) else busy_again
            ).append(row)
    idle_count = sum(len(group) for group in groups.values())
    details = {
        "idle_over_report": [plain_row(r) for r in (groups["report"] + groups["terminate"])[:MAX_LISTED]],
        "terminated": [plain_row(r) for r in terminated[:MAX_LISTED]],
        "protected": [plain_row(r) for r in groups["protected"][:MAX_LISTED]],
        "not_terminated_busy_again": [plain_row(r) for r in busy_again],
        "statements": statements,
        "findings": [f"{idle_count} sessions idle over {m.idle_report_minutes} min"] if idle_count else [],
    }
    if dry_run:
        return _dry_run(
            f"terminate {len(statements)} sessions idle over {m.idle_terminate_minutes} min",
            statements,
            details,
        )
    pids = ", ".join(str(r["pid"]) for r in terminated[:20])
    summary = (
        f"{idle_count} sessions idle over {m.idle_report_minutes} min; terminated {len(terminated)} idle over "
        f"{m.idle_terminate_minutes} min" + (f" (pids {pids})" if pids else "")
    )
    return StepResult(status=Status.CHANGED if terminated else Status.OK, summary=summary, details=details)


def evaluate_post_checks(facts: dict[str, Any], health: list[dict[str, Any]]) -> StepResult:
    """The database answers, is still the primary, and the applications using it are healthy."""
    findings = []
    if facts.get("in_recovery"):
        findings.append("the database is in recovery (a standby) after maintenance: was there a failover?")
    findings += [
        f"{h['url']} is unhealthy: {h.get('error') or h.get('status')}" for h in health if not h.get("ok")
    ]
    details = {
        "version": facts.get("version"),
        "in_recovery": bool(facts.get("in_recovery")),
        "database": facts.get("database"),
        "bytes": facts.get("bytes"),
        "health": health,
        "findings": findings,
    }
    if not health:
        details["note"] = "no configured service depends on this database: application health not checked"
    version = str(facts.get("version") or "").split(" on ")[0]
    if findings:
        return StepResult(
            status=Status.FAILED, summary="post-check failed: " + "; ".join(findings), details=details
        )
    return StepResult(
        status=Status.OK,
        summary=f"{version}, primary, {len(health)} health endpoints OK",
        details=details,
    )


def _public(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table entries without the internal oid and split name."""
    return [{k: v for k, v in entry.items() if k not in ("oid", "schema", "name")} for entry in entries]


# --- report -----------------------------------------------------------------------------------------------

STEP_TITLES: dict[str, str] = {
    "backup": "Backup",
    "database": "Sizes, replication and load",
    "analyze": "ANALYZE",
    "unused_indexes": "Unused indexes",
    "vacuum": "VACUUM ANALYZE",
    "reindex": "REINDEX CONCURRENTLY",
    "connections": "Idle connections",
    "post_checks": "Post-checks",
}


def outcome_of(state: dict[str, Any]) -> str:
    """COMPLETED, COMPLETED_WITH_FINDINGS, ABORTED (a pre-check said no) or FAILED (a step raised, or the
    post-checks found the database or an application unhealthy)."""
    results = state.get("results") or {}
    if state.get("failure") or (results.get("post_checks") or {}).get("status") == Status.FAILED:
        return "FAILED"
    pre = [results.get(key) or {} for key in ("backup", "database")]
    if any(r.get("status") == Status.FAILED for r in pre):
        return "ABORTED"
    if any(
        (r or {}).get("status") in (Status.FAILED, Status.DEGRADED, Status.SKIPPED) for r in results.values()
    ):
        return "COMPLETED_WITH_FINDINGS"
    return "COMPLETED"


def error_of(state: dict[str, Any]) -> str | None:
    """The error name a run that did not complete ends with: the raising step's error (``DatabaseUnavailable``
    ...), ``PreCheckFailed`` or ``PostCheckFailed``; None when it completed."""
    outcome = outcome_of(state)
    if outcome == "ABORTED":
        return "PreCheckFailed"
    if outcome == "FAILED":
        return str((state.get("failure") or {}).get("Error") or "PostCheckFailed")
    return None


def findings_of(state: dict[str, Any]) -> list[str]:
    """Every finding, one line each: failed, degraded and skipped steps and the findings they listed."""
    lines = []
    failure = state.get("failure")
    if failure:
        lines.append(f"step failed: {failure.get('Error')}: {_cause_text(failure.get('Cause'))}")
    for key, result in (state.get("results") or {}).items():
        if not isinstance(result, dict):
            continue
        title = STEP_TITLES.get(key, key)
        status = result.get("status")
        if status in (Status.FAILED, Status.DEGRADED, Status.SKIPPED):
            lines.append(f"{title}: {status}: {result.get('summary')}")
        details = result.get("details") or {}
        extra = details.get("findings") or ([details["finding"]] if details.get("finding") else [])
        lines += [f"{title}: {item}" for item in extra if isinstance(item, str)]
    return lines


def render_report(state: dict[str, Any], database: str, environment: str, now: datetime) -> tuple[str, str]:
    """(subject, Markdown body) of the maintenance report."""
    outcome = outcome_of(state)
    results = state.get("results") or {}
    window = state.get("window") or {}
    dry_run = bool(((state.get("envelope") or {}).get("options") or {}).get("dry_run"))
    findings = findings_of(state)
    subject = f"[{environment}] DB maintenance {database}: {outcome}"
    if dry_run:
        subject += " (dry run)"
    if findings:
        subject += f", {len(findings)} findings"
    lines = [
        f"# Database maintenance of {database} ({environment}): {outcome}",
        "",
        f"- window: {window.get('started_at')} .. {window.get('deadline')} ({window.get('minutes')} min)",
        f"- report written: {to_iso(now)}",
        f"- dry run: {'yes' if dry_run else 'no'}",
        "",
        "## Steps",
        "",
        "| step | status | duration | summary |",
        "|---|---|---|---|",
    ]
    for key, title in STEP_TITLES.items():
        result = results.get(key)
        if not isinstance(result, dict):
            lines.append(f"| {title} | not run | | |")
            continue
        duration = (result.get("details") or {}).get("duration_seconds")
        shown = f"{duration:.1f} s" if isinstance(duration, int | float) else ""
        summary = str(result.get("summary", "")).replace("|", "/").replace("\n", " ")
        lines.append(f"| {title} | {result.get('status')} | {shown} | {summary} |")
    lines += ["", "## Sizes before and after", ""]
    lines += _size_lines(results)
    lines += ["", "## Findings", ""]
    lines += [f"- {line}" for line in findings] or ["- none"]
    statements = [
        stmt
        for key in STEP_TITLES
        for stmt in ((results.get(key) or {}).get("details") or {}).get("statements", [])
        if isinstance(results.get(key), dict)
    ]
    if statements:
        lines += ["", "## Statements" + (" that would run" if dry_run else " run"), ""]
        session = ", ".join(f"{name} = {value}" for name, value in GENTLE_SESSION.items())
        lines += [f"In a session with {session}:", ""]
        lines += [f"    {stmt}" for stmt in statements]
    return subject, "\n".join(lines) + "\n"


def _size_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    before = {
        row["name"]: row["bytes"]
        for row in ((results.get("database") or {}).get("details") or {}).get("sizes", [])
    }
    after_facts = (results.get("post_checks") or {}).get("details") or {}
    if after_facts.get("database") in before:
        name = after_facts["database"]
        lines.append(f"- database {name}: {human_bytes(before[name])} -> {human_bytes(after_facts['bytes'])}")
    for row in ((results.get("vacuum") or {}).get("details") or {}).get("tables", []):
        if "bytes_before" in row:
            lines.append(
                f"- table {row['table']}: {human_bytes(row['bytes_before'])} -> "
                f"{human_bytes(row.get('bytes_after', row['bytes_before']))}, dead tuples "
                f"{row.get('dead_before')} -> {row.get('dead_after', row.get('dead_before'))}"
            )
    for row in ((results.get("reindex") or {}).get("details") or {}).get("indexes", []):
        if row.get("bytes_before") is not None:
            lines.append(
                f"- index {row['schema']}.{row['index']}: {human_bytes(row['bytes_before'])} -> "
                f"{human_bytes(row.get('bytes_after') or row['bytes_before'])}"
            )
    return lines or ["- not measured"]


def _cause_text(cause: Any) -> str:
    """Step Functions' Cause of a Lambda error is JSON with errorMessage; show just that."""
    import json

    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            return cause
        if isinstance(parsed, dict):
            return str(parsed.get("errorMessage") or cause)
    return str(cause)


def human_bytes(value: float | int | None) -> str:
    if value is None:
        return "?"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def plain_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with datetimes as ISO strings (the state payload holds no raw datetime)."""
    return {key: (to_iso(value) if isinstance(value, datetime) else value) for key, value in row.items()}


def report_key(state: dict[str, Any], now: datetime) -> str:
    """Where the report of this run is stored: ``db-maintenance/<window start>-<outcome>.md``."""
    started = str((state.get("window") or {}).get("started_at") or to_iso(now))
    stamp = re.sub(r"[^0-9TZ]", "", started)
    return f"{RUNBOOK}/{stamp}-{outcome_of(state).lower()}.md"
