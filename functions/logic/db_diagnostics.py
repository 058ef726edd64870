"""Pure logic of the database diagnostics of the P2 and P3 runbooks: thresholds, the terminate policy,
findings. The SQL is in ``functions.adapters.postgres_diagnostics``."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from functions.core.config import Maintenance
from functions.core.results import Status, StepResult
from functions.logic.db_maintenance import ALWAYS_EXCLUDED_ROLES, MAX_LISTED, plain_row

LONG_QUERY_SECONDS = 30  # the runbook book's "query_start < NOW() - INTERVAL '30 seconds'"
MAX_TERMINATIONS = 5  # a run that would end more queries than this is a person's decision
CACHE_HIT_RATIO_MIN = 0.99  # below it, the working set no longer fits in shared_buffers
CACHE_MIN_BLOCKS = 1000  # too few block accesses to judge a ratio
CONNECTION_USAGE_MAX = 0.8  # of the connections available to applications
TOP_STATEMENTS = 10

_READ_ONLY = re.compile(r"^\s*(SELECT|WITH|TABLE|VALUES|SHOW|EXPLAIN)\b", re.IGNORECASE)
_WRITES = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|COPY|CREATE|ALTER|DROP|TRUNCATE|VACUUM|REINDEX|CLUSTER)\b", re.I
)


def termination_refusal(row: dict[str, Any], m: Maintenance, seconds: float) -> str | None:
    """Why the terminate policy refuses to end this query, or None when it may: only application read
    queries running over the threshold, never a write (it would roll back), never an excluded role or
    application, never the platform's own sessions."""
    query = str(row.get("query") or "")
    if (row.get("query_seconds") or 0) <= seconds:
        return f"running {row.get('query_seconds', 0):.0f} s, not over {seconds:.0f} s"
    if row.get("role") in set(m.exclude_roles) | set(ALWAYS_EXCLUDED_ROLES):
        return f"role {row.get('role')} is excluded"
    if row.get("application_name") in set(m.exclude_applications):
        return f"application {row.get('application_name')} is excluded"
    if not _READ_ONLY.match(query) or _WRITES.search(query):
        return "not a read-only query: ending it would roll back work; terminate it by hand if you must"
    return None


def long_queries_result(
    rows: list[dict[str, Any]],
    m: Maintenance,
    *,
    seconds: float,
    terminate: bool,
    dry_run: bool,
    terminate_one: Callable[[int, datetime], bool],
) -> StepResult:
    """Report queries running over ``seconds``; with ``terminate`` (opt-in), end those the policy allows, at
    most ``MAX_TERMINATIONS``, each only while it still runs the same query."""
    listed = []
    terminated: list[int] = []
    refused: list[int] = []
    chosen = 0
    for row in rows:
        entry = plain_row(row)
        refusal = termination_refusal(row, m, seconds)
        if terminate and refusal is None and chosen >= MAX_TERMINATIONS:
            refusal = f"over the limit of {MAX_TERMINATIONS} terminations per run"
        if terminate and refusal is None:
            chosen += 1
            if dry_run:
                entry["would_terminate"] = True
            elif terminate_one(int(row["pid"]), row["query_start"]):
                entry["terminated"] = True
                terminated.append(row["pid"])
            else:
                entry["terminated"] = False
                entry["note"] = "finished or changed before it could be terminated"
        elif terminate:
            entry["refused"] = refusal
            refused.append(row["pid"])
        listed.append(entry)
    statements = [f"SELECT pg_terminate_backend({e['pid']})" for e in listed if e.get("would_terminate")]
    details: dict[str, Any] = {
        "queries": listed[:MAX_LISTED],
        "count": len(rows),
        "threshold_seconds": seconds,
        "terminated": terminated,
        "refused": refused,
    }
    if statements:
        details["statements"] = statements
    if not rows:
        return StepResult(status=Status.OK, summary=f"no query running over {seconds:.0f} s", details=details)
    pids = ", ".join(str(row["pid"]) for row in rows[:10])
    summary = f"{len(rows)} queries running over {seconds:.0f} s (pids {pids})"
    if terminate:
        summary += (
            f"; would terminate {len(statements)}" if dry_run else f"; terminated {len(terminated)}"
        ) + f", refused {len(refused)}"
    if dry_run and statements:
        return StepResult(status=Status.DRY_RUN, summary=summary, details=details)
    return StepResult(
        status=Status.CHANGED if terminated else Status.DEGRADED, summary=summary, details=details
    )


def blocking_result(rows: list[dict[str, Any]]) -> StepResult:
    """Waiting sessions and the sessions blocking them; the root blockers (blocking, not waiting) first."""
    if not rows:
        return StepResult(status=Status.OK, summary="no session is waiting on a lock", details={"pairs": []})
    waiting = {row["waiting_pid"] for row in rows}
    roots = sorted({row["blocking_pid"] for row in rows} - waiting)
    details = {
        "pairs": [plain_row(r) for r in rows[:MAX_LISTED]],
        "waiting_pids": sorted(waiting),
        "root_blocking_pids": roots,
    }
    return StepResult(
        status=Status.DEGRADED,
        summary=f"{len(waiting)} sessions waiting on locks; blocked by pids {', '.join(map(str, roots or sorted({r['blocking_pid'] for r in rows})))}",
        details=details,
    )


def top_statements_result(rows: list[dict[str, Any]] | str, database: str) -> StepResult:
    """The slowest statements by mean time, or a clear finding when pg_stat_statements is missing."""
    if rows == "not_installed":
        finding = (
            f"pg_stat_statements is not installed in {database}: CREATE EXTENSION pg_stat_statements "
            "(the server must also preload it: shared_preload_libraries)"
        )
        return StepResult(status=Status.UNAVAILABLE, summary=finding, details={"finding": finding})
    if rows == "not_loaded":
        finding = "pg_stat_statements is installed but not preloaded: add it to shared_preload_libraries and restart"
        return StepResult(status=Status.UNAVAILABLE, summary=finding, details={"finding": finding})
    assert not isinstance(rows, str)
    if not rows:
        return StepResult(
            status=Status.OK,
            summary="pg_stat_statements has no statements yet",
            details={"statements_top": []},
        )
    top = rows[0]
    return StepResult(
        status=Status.OK,
        summary=f"slowest statement by mean: {top['mean_ms']:.1f} ms over {top['calls']} calls: {str(top['query'])[:80]}",
        details={"statements_top": [plain_row(r) for r in rows]},
    )


def cache_hit_result(rows: list[dict[str, Any]]) -> StepResult:
    """Hit ratio per database; a finding for each with enough traffic and a ratio under the minimum."""
    databases, findings = [], []
    for row in rows:
        total = int(row["hits"]) + int(row["reads"])
        ratio = round(int(row["hits"]) / total, 4) if total else None
        databases.append(
            {"database": row["database"], "hits": row["hits"], "reads": row["reads"], "ratio": ratio}
        )
        if ratio is not None and total >= CACHE_MIN_BLOCKS and ratio < CACHE_HIT_RATIO_MIN:
            findings.append(
                f"{row['database']}: cache hit ratio {ratio:.2%} (under {CACHE_HIT_RATIO_MIN:.0%})"
            )
    details = {"databases": databases, "findings": findings}
    shown = ", ".join(f"{d['database']} {d['ratio']:.2%}" for d in databases if d["ratio"] is not None)
    if findings:
        return StepResult(status=Status.DEGRADED, summary="; ".join(findings), details=details)
    return StepResult(
        status=Status.OK, summary=f"cache hit ratios: {shown or 'no traffic yet'}", details=details
    )


def connection_usage_result(usage: dict[str, Any]) -> StepResult:
    """Client connections against those available to applications (max_connections minus the reserve)."""
    available = max(1, int(usage["max_connections"]) - int(usage["reserved"]))
    ratio = int(usage["client"]) / available
    details = dict(usage, available=available, usage=round(ratio, 4))
    summary = (
        f"{usage['client']} of {available} connections in use ({ratio:.0%}): {usage['active']} active, "
        f"{usage['idle']} idle, {usage['idle_in_transaction']} idle in transaction"
    )
    if ratio >= CONNECTION_USAGE_MAX:
        details["finding"] = (
            f"connections at {ratio:.0%} of those available (limit {CONNECTION_USAGE_MAX:.0%})"
        )
        return StepResult(status=Status.DEGRADED, summary=summary, details=details)
    return StepResult(status=Status.OK, summary=summary, details=details)
