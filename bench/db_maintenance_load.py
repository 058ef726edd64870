"""How much the weekly maintenance costs the application, and what our steps cost over plain psql.

On one real PostgreSQL 15 (durable settings, loopback) seeded with the runbook book's tables:

1. latency: pgbench drives a fixed-rate load (TPC-B-like on its own tables plus reads and writes of
   ``sales``); p95 latency of the baseline (the window of the same run just before the maintenance) is
   compared with p95 of the transactions that ran while the maintenance steps (the real handlers,
   in-process) ran; ``--latency-rounds`` runs, the median ratio reported.  Goal: <= 1.5x.
2. wall time: the maintenance steps' wall time against the same statements (``details.statements``: ANALYZE,
   VACUUM, REINDEX) run with psql, one process per statement as the runbook book does, on identical freshly
   seeded data, alternating, ``--rounds`` times each.  Goal: <= 1.1x.

    .venv/bin/python bench/db_maintenance_load.py [--rows 200000] [--scale 10] [--rate 200] [--rounds 3]

Writes bench/results/db_maintenance_load.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from functions.core.config import CONFIG_ENV, get_settings  # noqa: E402
from functions.logic.db_maintenance import GENTLE_SESSION  # noqa: E402
from runbook.sandbox.postgres import PostgresServer, seed  # noqa: E402

DB = "sales_db"
RESULTS = ROOT / "bench" / "results" / "db_maintenance_load.json"
# The application's own statements on the maintained tables, beside pgbench's TPC-B-like transaction.
SALES_SCRIPT = """\
\\set c random(1, 10000)
\\set s random(1, :rows)
SELECT count(*), sum(amount_cents) FROM sales WHERE customer_id = :c;
UPDATE sales SET quantity = quantity WHERE sale_id = :s;
SELECT count(*) FROM sales WHERE sale_date = date '2026-03-01' + (:s % 300);
"""
# The maintenance as a run does it, minus the schedule: every step that reaches the database.
STEPS = (
    "db_check_database",
    "db_analyze",
    "db_report_unused_indexes",
    "db_vacuum_tables",
    "db_reindex",
    "db_cleanup_connections",
    "db_post_checks",
)
SQL_STEPS = ("db_analyze", "db_vacuum_tables", "db_reindex")  # the steps that run maintenance statements


@dataclass
class FakeContext:
    function_name: str = "bench"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id: str = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def configure(server: PostgresServer, workdir: Path) -> None:
    """Point the steps at the bench server (no secret: PGUSER), and keep their logs quiet."""
    config = {
        "environment": "bench",
        "services": {},
        "databases": {"sales": {"host": server.host, "port": server.port, "dbname": DB}},
        "maintenance": {"database": "sales", "max_active_connections": 100, "long_query_seconds": 300},
    }
    path = workdir / "config.json"
    path.write_text(json.dumps(config))
    os.environ.update(
        {
            CONFIG_ENV: str(path),
            "PGUSER": server.user,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "1",
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )
    get_settings.cache_clear()


def run_steps(steps: tuple[str, ...]) -> tuple[float, dict[str, Any]]:
    """Run the handlers in order, as the state machine would; (wall seconds, results by step)."""
    import importlib

    from functions.handlers import db_start_maintenance

    context: Any = FakeContext()  # the fields Powertools reads from a LambdaContext
    state = db_start_maintenance.lambda_handler({}, context)["details"]
    results = {}
    started = time.perf_counter()
    for name in steps:
        handler = importlib.import_module(f"functions.handlers.{name}")
        results[name] = handler.lambda_handler(state, context)
    return time.perf_counter() - started, results


def psql_statements(server: PostgresServer, statements: list[str], *, one_session: bool = False) -> float:
    """Each statement in its own psql process, as `for table in ...; do psql -c ...; done` does, in a session
    with the same settings the steps use (GENTLE_SESSION): the same SQL, so the ratio is our overhead."""
    psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    options = " ".join(f"-c {name}={value}" for name, value in GENTLE_SESSION.items())
    env = dict(os.environ, PGOPTIONS=options)
    # one_session: a single psql with one -c per statement (each still its own transaction), no process costs
    batches = [statements] if one_session else [[statement] for statement in statements]
    started = time.perf_counter()
    for batch in batches:
        commands = [arg for statement in batch for arg in ("-c", statement)]
        subprocess.run(
            [psql, server.dsn(DB), "-X", "-q", "-v", "ON_ERROR_STOP=1", *commands],
            check=True,
            capture_output=True,
            env=env,
        )
    return time.perf_counter() - started


def reseed(server: PostgresServer, rows: int) -> None:
    seed(server, DB, rows=rows)
    with __import__("psycopg").connect(server.dsn(DB), autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # each round starts without the previous one's dirty buffers


def pgbench(server: PostgresServer, workdir: Path, tag: str, *, seconds: int, rate: int, rows: int) -> Path:
    """Start pgbench at a fixed rate with per-transaction logs; returns the log directory (pgbench runs
    in the background: join with ``wait_pgbench``)."""
    script = workdir / "sales.sql"
    script.write_text(SALES_SCRIPT)
    logdir = workdir / tag
    logdir.mkdir()
    command = [
        shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench",
        "-h",
        server.host,
        "-p",
        str(server.port),
        "-U",
        server.user,
        "-n",
        "-c",
        "4",
        "-j",
        "2",
        "-T",
        str(seconds),
        "-R",
        str(rate),
        "-b",
        "tpcb-like@1",
        "-f",
        f"{script}@1",
        "-D",
        f"rows={rows}",
        "-l",
        "--log-prefix",
        str(logdir / "tx"),
        DB,
    ]
    process = subprocess.Popen(command, cwd=logdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _running[tag] = process
    return logdir


_running: dict[str, subprocess.Popen[str]] = {}


def wait_pgbench(tag: str) -> str:
    process = _running.pop(tag)
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"pgbench {tag} failed: {err.strip()[-800:]}")
    return out


def latencies(logdir: Path, start: float | None = None, end: float | None = None) -> list[float]:
    """Per-transaction latencies (ms) from pgbench's logs, optionally only those that ended in [start, end].
    Log line: client_id transaction_no time script_no time_epoch time_us [schedule_lag]; time is in us."""
    values = []
    for log in logdir.glob("tx*"):
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) < 6 or parts[2] == "skipped":
                continue
            ended = int(parts[4]) + int(parts[5]) / 1e6
            if (start is None or ended >= start) and (end is None or ended <= end):
                values.append(int(parts[2]) / 1000)
    return values


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[94] if len(values) >= 20 else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=200_000, help="sales rows in the seed")
    parser.add_argument("--scale", type=int, default=10, help="pgbench -i scale factor")
    parser.add_argument("--rate", type=int, default=200, help="pgbench transactions per second (-R)")
    parser.add_argument(
        "--baseline-seconds",
        type=int,
        default=15,
        help="the window before the maintenance that is the baseline",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of the wall-time comparison"
    )
    parser.add_argument("--latency-rounds", type=int, default=3, help="pgbench runs with the maintenance")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-dbm-"))
    server = PostgresServer(durable=True, settings={"shared_buffers": "128MB"})
    server.start()
    try:
        configure(server, workdir)
        print(f"PostgreSQL on {server.host}:{server.port}; seeding {args.rows} sales rows ...", flush=True)
        reseed(server, args.rows)
        subprocess.run(
            [
                shutil.which("pgbench") or "pgbench",
                "-i",
                "-q",
                "-s",
                str(args.scale),
                "-h",
                server.host,
                "-p",
                str(server.port),
                "-U",
                server.user,
                DB,
            ],
            check=True,
            capture_output=True,
        )

        # 1. wall time: our steps vs the same statements with psql, alternating on identical data
        ours, theirs, single = [], [], []
        statements: list[str] = []
        for round_no in range(args.rounds):
            reseed(server, args.rows)
            wall, results = run_steps(SQL_STEPS)
            ours.append(wall)
            statements = [s for name in SQL_STEPS for s in results[name]["details"].get("statements", [])]
            reseed(server, args.rows)
            theirs.append(psql_statements(server, statements))
            reseed(server, args.rows)
            single.append(psql_statements(server, statements, one_session=True))
            print(
                f"round {round_no + 1}: steps {ours[-1]:.2f} s, psql per statement {theirs[-1]:.2f} s, "
                f"psql one session {single[-1]:.2f} s",
                flush=True,
            )

        # 2. latency: one pgbench run per round; its baseline is the BASELINE_SECONDS just before the
        # maintenance starts, the comparison the transactions that ran while it ran. Adjacent windows of one
        # run see the same neighbours on a shared machine; separate runs minutes apart did not (a neighbour's
        # build made one baseline 10x slower than the next).
        seconds = 3 + args.baseline_seconds + int(statistics.median(ours) * 2) + 10
        pairs = []
        for round_no in range(args.latency_rounds):
            reseed(server, args.rows)
            tag = f"load{round_no}"
            load_dir = pgbench(server, workdir, tag, seconds=seconds, rate=args.rate, rows=args.rows)
            time.sleep(3 + args.baseline_seconds)  # the load settles, then the baseline window
            m_start = time.time()
            full_wall, full_results = run_steps(STEPS)
            m_end = time.time()
            wait_pgbench(tag)
            baseline = latencies(load_dir, m_start - args.baseline_seconds, m_start)
            during = latencies(load_dir, m_start, m_end)
            pairs.append(
                {
                    "baseline_p95": round(p95(baseline), 2),
                    "baseline_transactions": len(baseline),
                    "during_maintenance_p95": round(p95(during), 2),
                    "during_transactions": len(during),
                    "ratio": round(p95(during) / p95(baseline), 2),
                    "maintenance_seconds": round(full_wall, 2),
                }
            )
            print(f"latency round {round_no + 1}: {pairs[-1]}", flush=True)
        failed = {k: v["status"] for k, v in full_results.items() if v["status"] == "FAILED"}

        report = {
            "rows": args.rows,
            "pgbench": {"scale": args.scale, "rate_tps": args.rate, "clients": 4},
            "latency_ms": {
                "rounds": pairs,
                "median_ratio": round(statistics.median(pair["ratio"] for pair in pairs), 2),
                "goal": 1.5,
            },
            "load_seconds": seconds,
            "steps_under_load": {k: v["summary"] for k, v in full_results.items()},
            "failed_steps": failed,
            "wall_seconds": {
                "steps": [round(x, 3) for x in ours],
                "psql": [round(x, 3) for x in theirs],
                "psql_one_session": [round(x, 3) for x in single],
                "ratio_of_medians": round(statistics.median(ours) / statistics.median(theirs), 3),
                "ratio_to_one_session": round(statistics.median(ours) / statistics.median(single), 3),
                "goal": 1.1,
                "statements": statements,
                "session": GENTLE_SESSION,
            },
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
        wall_report = report["wall_seconds"]
        ratios = ", ".join(
            f"{pair['during_maintenance_p95']} / {pair['baseline_p95']} ms = {pair['ratio']}x"
            for pair in pairs
        )
        print(
            f"\np95 latency during maintenance / baseline: {ratios}; median "
            f"{report['latency_ms']['median_ratio']}x (goal <= 1.5x)\n"
            f"wall time: steps median {statistics.median(ours):.2f} s, psql median {statistics.median(theirs):.2f} s: "
            f"{wall_report['ratio_of_medians']}x (goal <= 1.1x); against one psql session "
            f"{statistics.median(single):.2f} s: {wall_report['ratio_to_one_session']}x\n"
            f"written to {RESULTS.relative_to(ROOT)}"
        )
        return 0
    finally:
        for process in _running.values():
            process.kill()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
