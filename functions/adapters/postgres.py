"""The one PostgreSQL adapter: connections with credentials from Secrets Manager, and the readiness probe.

Credentials come from the database's Secrets Manager secret (RDS's JSON shape: ``username``, ``password``,
optionally ``host``/``port``/``dbname``) when ``secret_arn`` is configured, else from ``PGUSER`` and
``PGPASSWORD`` (the sandbox and local runs). Host, port and database name come from the configuration; the
secret's own ``host``/``port``/``dbname`` fill in only what the configuration leaves empty, so the endpoint a
runbook acts on is always the one reviewed in config. No credential ever enters a state payload or a log.

Errors: a server that cannot be reached, refuses the login or goes away is ``DatabaseUnavailable``; a server
that says "try again" (too many connections, starting up, shutting down for a restart) and Secrets Manager
throttling are ``TransientError``, which every ASL Task retries.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from functions.core.clients import client
from functions.core.config import Database
from functions.core.errors import ConfigurationError, DatabaseUnavailable, TransientError

DEFAULT_APPLICATION_NAME = "runbook-autopilot"
SECRET_CACHE_SECONDS = 300.0  # rotation is picked up within five minutes; a warm Lambda does not re-read

# SQLSTATEs where the server itself says "later": too_many_connections, cannot_connect_now (starting up or
# in recovery), admin/crash shutdown during a restart, serialization failure, deadlock, lock_not_available.
TRANSIENT_SQLSTATES = frozenset({"53300", "57P03", "57P02", "40001", "40P01", "55P03"})
# Secrets Manager error codes worth a retry.
_TRANSIENT_AWS_CODES = frozenset(
    {"ThrottlingException", "InternalServiceError", "InternalServiceErrorException", "RequestTimeout"}
)

_secret_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_secret_lock = threading.Lock()


def _read_secret(secret_arn: str) -> dict[str, Any]:
    """The secret's JSON, cached per process for ``SECRET_CACHE_SECONDS``."""
    with _secret_lock:
        cached = _secret_cache.get(secret_arn)
        if cached and time.monotonic() - cached[0] < SECRET_CACHE_SECONDS:
            return cached[1]
    try:
        response = client("secretsmanager").get_secret_value(SecretId=secret_arn)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _TRANSIENT_AWS_CODES:
            raise TransientError(f"Secrets Manager: {code} reading the database secret") from None
        raise ConfigurationError(f"cannot read the database secret {secret_arn}: {code}") from None
    except BotoCoreError as error:
        raise TransientError(f"Secrets Manager unreachable: {type(error).__name__}") from None
    try:
        value = json.loads(response.get("SecretString") or "")
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not value.get("username") or "password" not in value:
        raise ConfigurationError(f"database secret {secret_arn} is not JSON with username and password")
    with _secret_lock:
        _secret_cache[secret_arn] = (time.monotonic(), value)
    return value


def forget_secrets() -> None:
    """Drop cached secrets (tests; and after an authentication failure, to pick up a rotation)."""
    with _secret_lock:
        _secret_cache.clear()


def connection_params(db: Database) -> dict[str, Any]:
    """libpq keyword parameters for ``db``, credentials included (never log the result)."""
    params: dict[str, Any] = {"host": db.host, "port": db.port, "dbname": db.dbname}
    if db.secret_arn:
        secret = _read_secret(db.secret_arn)
        params["user"] = secret["username"]
        params["password"] = secret["password"]
        for key in ("host", "dbname"):
            params[key] = params[key] or secret.get(key)
    else:
        if os.environ.get("PGUSER"):
            params["user"] = os.environ["PGUSER"]
        if os.environ.get("PGPASSWORD"):
            params["password"] = os.environ["PGPASSWORD"]
    return params


def describe_error(error: BaseException) -> str:
    """One line about a psycopg error, without credentials (libpq messages never contain the password)."""
    sqlstate = getattr(error, "sqlstate", None)
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{text} (SQLSTATE {sqlstate})" if sqlstate else text


def translate(error: psycopg.Error, what: str) -> Exception:
    """The named error for a psycopg error: ``TransientError`` when the server asks to retry later,
    ``DatabaseUnavailable`` when the connection failed or was lost; other errors are returned unchanged."""
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate in TRANSIENT_SQLSTATES:
        return TransientError(f"{what}: {describe_error(error)}")
    if isinstance(error, psycopg.OperationalError) and (
        sqlstate is None or sqlstate.startswith(("08", "57"))
    ):
        return DatabaseUnavailable(f"{what}: {describe_error(error)}")
    if isinstance(error, psycopg.errors.InvalidAuthorizationSpecification | psycopg.errors.InvalidPassword):
        return DatabaseUnavailable(f"{what}: {describe_error(error)}")
    return error


def connect(
    db: Database,
    *,
    autocommit: bool = True,
    application_name: str = DEFAULT_APPLICATION_NAME,
    connect_timeout: int | None = None,
) -> psycopg.Connection[Any]:
    """A new connection to ``db``. Autocommit by default: maintenance statements must not run in a
    transaction, and a read that holds no transaction open cannot block VACUUM."""
    params = connection_params(db)
    where = f"{db.host}:{db.port}/{db.dbname}"
    try:
        return psycopg.connect(
            **params,
            autocommit=autocommit,
            application_name=application_name,
            connect_timeout=connect_timeout or db.connect_timeout_seconds,
        )
    except psycopg.Error as error:
        if db.secret_arn and isinstance(
            error, psycopg.errors.InvalidAuthorizationSpecification | psycopg.errors.InvalidPassword
        ):
            forget_secrets()  # the secret may have been rotated since we cached it
        named = translate(error, f"cannot connect to {where}")
        if named is error:
            named = DatabaseUnavailable(f"cannot connect to {where}: {describe_error(error)}")
        raise named from None


@contextmanager
def connection(db: Database, **kwargs: Any) -> Iterator[psycopg.Connection[Any]]:
    """``connect`` as a context manager that closes the connection and names psycopg errors."""
    conn = connect(db, **kwargs)
    try:
        yield conn
    except psycopg.Error as error:
        named = translate(error, f"{db.host}:{db.port}/{db.dbname}")
        if named is error:
            raise
        raise named from error
    finally:
        conn.close()


def ping(db: Database) -> dict[str, Any]:
    """The ``pg_isready`` of the runbooks: connect, ``SELECT 1``, and report latency and server version.

    Raises ``DatabaseUnavailable`` when the server refuses the connection or the login, times out, or does
    not answer the query (a "try again later" from the server is unavailability too, for a probe).
    """
    where = f"{db.host}:{db.port}/{db.dbname}"
    started = time.perf_counter()  # a latency: measured on the real clock, not the sandbox's scaled one
    try:
        with connect(db, application_name=f"{DEFAULT_APPLICATION_NAME}-ping") as conn:
            conn.execute("SELECT 1").fetchone()
            latency_ms = (time.perf_counter() - started) * 1000
            version = conn.info.parameter_status("server_version") or ""
            in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except TransientError as error:
        raise DatabaseUnavailable(str(error)) from None
    except psycopg.Error as error:
        raise DatabaseUnavailable(f"{where} did not answer: {describe_error(error)}") from None
    return {
        "host": db.host,
        "port": db.port,
        "dbname": db.dbname,
        "latency_ms": round(latency_ms, 2),
        "server_version": version,
        "in_recovery": bool(in_recovery and in_recovery[0]),
    }
