"""Probe one configured dependency by its kind (the runbook's ``pg_isready``, ``redis-cli ping``, ``curl -f``)."""

from __future__ import annotations

from typing import Any

from functions.adapters import http_probe
from functions.core.config import DependencyProbe, Settings
from functions.core.errors import DatabaseUnavailable


def probe(dependency: DependencyProbe, settings: Settings) -> dict[str, Any]:
    if dependency.kind == "http":
        assert dependency.url is not None
        return http_probe.http_get(dependency.url, timeout=5)
    if dependency.kind == "redis":
        assert dependency.host is not None and dependency.port is not None
        return http_probe.redis_ping(dependency.host, dependency.port)
    if dependency.kind == "tcp":
        assert dependency.host is not None and dependency.port is not None
        return http_probe.tcp_connect(dependency.host, dependency.port)
    from functions.adapters import postgres  # psycopg costs ~0.5 s to import: only when a database is probed

    assert dependency.database is not None
    try:
        result = postgres.ping(settings.databases[dependency.database])
    except DatabaseUnavailable as error:
        return {"ok": False, "error": str(error), "latency_ms": None}
    return {"ok": True, "error": None, **result}
