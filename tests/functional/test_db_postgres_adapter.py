"""The PostgreSQL adapter against a real server: credentials, ping, named errors."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from functions.adapters import postgres
from functions.core.clients import reset_clients
from functions.core.config import Database
from functions.core.errors import ConfigurationError, DatabaseUnavailable

pytestmark = pytest.mark.postgres


@pytest.fixture
def aws():
    with mock_aws():
        reset_clients()
        postgres.forget_secrets()
        yield
    reset_clients()
    postgres.forget_secrets()


def test_ping_reports_latency_and_version_of_a_running_server(pg_database):
    result = postgres.ping(pg_database)

    assert result["dbname"] == pg_database.dbname
    assert result["server_version"].startswith("15")
    assert result["latency_ms"] >= 0
    assert result["in_recovery"] is False


def test_ping_of_a_closed_port_raises_database_unavailable(pg_server):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = Database(host="127.0.0.1", port=port, dbname="postgres", connect_timeout_seconds=2)

    with pytest.raises(DatabaseUnavailable, match="Connection refused"):
        postgres.ping(db)


def test_ping_of_a_missing_database_raises_database_unavailable(pg_server):
    db = Database(host=pg_server.host, port=pg_server.port, dbname="no_such_db")

    with pytest.raises(DatabaseUnavailable, match="no_such_db"):
        postgres.ping(db)


def test_credentials_come_from_the_secret_when_one_is_configured(aws, pg_database, monkeypatch):
    monkeypatch.delenv("PGUSER")
    arn = boto3.client("secretsmanager").create_secret(
        Name="db/sales",
        SecretString=json.dumps({"username": "postgres", "password": "s3cret", "engine": "postgres"}),
    )["ARN"]
    db = pg_database.model_copy(update={"secret_arn": arn})

    with postgres.connect(db) as conn:
        user = conn.execute("SELECT current_user").fetchone()

    assert user == ("postgres",)
    assert "password" not in json.dumps(postgres.ping(db))


def test_a_secret_without_a_password_is_a_configuration_error(aws, pg_database):
    arn = boto3.client("secretsmanager").create_secret(Name="db/bad", SecretString='{"username": "x"}')["ARN"]

    with pytest.raises(ConfigurationError, match="username and password"):
        postgres.connect(pg_database.model_copy(update={"secret_arn": arn}))


def test_connect_is_autocommit_and_named_for_the_application(pg_database):
    with postgres.connect(pg_database, application_name="runbook-test") as conn:
        name = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ).fetchone()

        assert conn.autocommit is True
        assert name == ("runbook-test",)
