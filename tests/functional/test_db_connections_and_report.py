"""Idle-session cleanup, the report and the failure path, against a real PostgreSQL (and moto for SNS/S3).

Idle ages: the cleanup compares each session's ``state_change`` with the step's clock
(``functions.core.clock``). Tests pin that clock two hours ahead instead of waiting two hours; the sessions,
their ``state_change`` and the terminations are real.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta
from pathlib import Path

import boto3
import psycopg
import pytest
from moto import mock_aws

from functions.core.clients import reset_clients
from functions.core.errors import DatabaseUnavailable
from functions.handlers import (
    db_check_database,
    db_cleanup_connections,
    db_publish_report,
    db_start_maintenance,
)

pytestmark = pytest.mark.postgres


def connect(db, app):
    conn = psycopg.connect(
        f"host={db.host} port={db.port} dbname={db.dbname} user=postgres application_name={app}",
        autocommit=True,
    )
    conn.execute("SELECT 1")  # now idle, state_change = the end of this statement
    return conn


def state_change(observer, pid):
    return observer.execute("SELECT state_change FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]


@pytest.fixture
def aws(monkeypatch, tmp_path):
    with mock_aws():
        reset_clients()
        topic = boto3.client("sns").create_topic(Name="l1")["TopicArn"]
        monkeypatch.setenv("TOPIC_ARN_L1", topic)
        monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
        monkeypatch.delenv("REPORTS_BUCKET", raising=False)
        yield topic
    reset_clients()


def sent(topic):
    from moto.sns.models import sns_backends

    return sns_backends["123456789012"]["us-east-1"].topics[topic].sent_notifications


def test_only_sessions_idle_over_two_hours_are_terminated_and_protected_ones_survive(
    pg_database, use_db_settings, pinned_clock, lambda_context
):
    use_db_settings(pg_database, exclude_applications=["test-observer", "batch-exempt"])
    observer = connect(pg_database, "test-observer")
    exempt = connect(pg_database, "batch-exempt")
    older = connect(pg_database, "app-older")
    time.sleep(1.0)  # the two sessions' state_change must differ: the clock is pinned between them
    newer = connect(pg_database, "app-newer")
    t_older = state_change(observer, older.info.backend_pid)
    t_newer = state_change(observer, newer.info.backend_pid)
    # Two hours after the older session went idle, plus half the gap: older > 2 h, 1 h < newer < 2 h.
    pinned_clock(t_older + timedelta(hours=2) + (t_newer - t_older) / 2)
    state = db_start_maintenance.lambda_handler({}, lambda_context)["details"]

    result = db_cleanup_connections.lambda_handler(state, lambda_context)

    terminated = {row["pid"] for row in result["details"]["terminated"]}
    reported = {row["pid"] for row in result["details"]["idle_over_report"]}
    protected = {row["pid"]: row["protected"] for row in result["details"]["protected"]}
    assert result["status"] == "CHANGED"
    assert older.info.backend_pid in terminated
    assert newer.info.backend_pid not in terminated and newer.info.backend_pid in reported
    assert protected[exempt.info.backend_pid] == "application batch-exempt is excluded"
    assert observer.info.backend_pid in protected
    assert f"pids {older.info.backend_pid}" in result["summary"]
    with pytest.raises(psycopg.OperationalError):
        older.execute("SELECT 1")
    assert newer.execute("SELECT 1").fetchone() == (1,)
    assert observer.execute("SELECT 1").fetchone() == (1,)
    assert exempt.execute("SELECT 1").fetchone() == (1,)
    for conn in (observer, exempt, newer, older):
        conn.close()


def test_a_dry_run_cleanup_lists_what_it_would_terminate_and_terminates_nothing(
    pg_database, use_db_settings, pinned_clock, lambda_context
):
    use_db_settings(pg_database, exclude_applications=["test-observer"])
    observer = connect(pg_database, "test-observer")
    idle = connect(pg_database, "app-idle")
    pinned_clock(state_change(observer, idle.info.backend_pid) + timedelta(hours=3))
    state = db_start_maintenance.lambda_handler({"dry_run": True}, lambda_context)["details"]

    result = db_cleanup_connections.lambda_handler(state, lambda_context)

    assert result["status"] == "DRY_RUN"
    assert f"SELECT pg_terminate_backend({idle.info.backend_pid})" in result["details"]["statements"]
    assert result["details"]["terminated"] == []
    assert idle.execute("SELECT 1").fetchone() == (1,)
    observer.close()
    idle.close()


def test_the_server_down_is_a_named_error_and_the_report_says_so_on_sns(
    pg_server, pg_database, use_db_settings, aws, lambda_context
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    use_db_settings(pg_database.model_copy(update={"port": closed_port, "connect_timeout_seconds": 2}))
    state = db_start_maintenance.lambda_handler({}, lambda_context)["details"]

    with pytest.raises(DatabaseUnavailable, match="Connection refused") as raised:
        db_check_database.lambda_handler(state, lambda_context)
    # What the ASL's Catch hands the report step: {"Error": <class name>, "Cause": <Lambda's error JSON>}
    cause = json.dumps({"errorMessage": str(raised.value), "errorType": "DatabaseUnavailable"})
    failed = dict(state, failure={"Error": type(raised.value).__name__, "Cause": cause})
    result = db_publish_report.lambda_handler(failed, lambda_context)

    (_id, body, subject, *_rest) = sent(aws)[0]
    assert result["status"] == "FAILED"
    assert subject == f"[test] DB maintenance {pg_database.dbname}: FAILED, 1 findings"
    assert "step failed: DatabaseUnavailable: cannot connect to" in body
    assert result["details"]["location"].endswith("-failed.md")


def test_a_completed_run_is_reported_with_steps_sizes_and_findings(
    pg_database, use_db_settings, aws, lambda_context
):
    use_db_settings(pg_database)
    state = db_start_maintenance.lambda_handler({}, lambda_context)["details"]
    state["results"] = {
        "backup": {"status": "SKIPPED", "summary": "backups not verified", "details": {}},
        "database": {
            "status": "OK",
            "summary": "ok",
            "details": {"sizes": [{"name": pg_database.dbname, "bytes": 9000000}]},
        },
        "vacuum": {
            "status": "CHANGED",
            "summary": "vacuumed 1 of 1 tables",
            "details": {
                "duration_seconds": 1.25,
                "tables": [
                    {
                        "table": "public.sales",
                        "bytes_before": 4096000,
                        "bytes_after": 4000000,
                        "dead_before": 500,
                        "dead_after": 0,
                    }
                ],
                "statements": ['VACUUM (ANALYZE) "public"."sales"'],
            },
        },
        "post_checks": {
            "status": "OK",
            "summary": "ok",
            "details": {"database": pg_database.dbname, "bytes": 8000000},
        },
    }

    result = db_publish_report.lambda_handler(state, lambda_context)

    (_id, body, subject, *_rest) = sent(aws)[0]
    assert result["status"] == "OK"
    assert subject.endswith("COMPLETED_WITH_FINDINGS, 1 findings")
    assert "| VACUUM ANALYZE | CHANGED | 1.2 s | vacuumed 1 of 1 tables |" in body
    assert "- table public.sales: 3.9 MB -> 3.8 MB, dead tuples 500 -> 0" in body
    assert f"- database {pg_database.dbname}: 8.6 MB -> 7.6 MB" in body
    assert Path(result["details"]["location"]).read_text() in body


def test_on_aws_the_report_is_stored_in_the_reports_bucket(
    pg_database, use_db_settings, aws, lambda_context, monkeypatch
):
    boto3.client("s3").create_bucket(Bucket="runbook-reports")
    monkeypatch.setenv("REPORTS_BUCKET", "runbook-reports")
    use_db_settings(pg_database)
    state = db_start_maintenance.lambda_handler({"dry_run": True}, lambda_context)["details"]

    result = db_publish_report.lambda_handler(state, lambda_context)

    location = result["details"]["location"]
    assert location.startswith("s3://runbook-reports/db-maintenance/") and location.endswith("-completed.md")
    key = location.removeprefix("s3://runbook-reports/")
    stored = boto3.client("s3").get_object(Bucket="runbook-reports", Key=key)["Body"].read().decode()
    assert stored.startswith(f"# Database maintenance of {pg_database.dbname} (test): COMPLETED")
