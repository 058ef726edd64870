"""HTTP and TCP probes: ``curl -f`` and ``redis-cli ping`` equivalents with the standard library only.

urllib keeps the import cheap and, unlike ``requests``, is not intercepted by moto in the sandbox.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

MAX_BODY = 2048


def _check_url(url: str) -> None:
    scheme = urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: only http and https URLs are probed")


def http_get(url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """GET ``url``; never raises for HTTP or network failures, reports them.

    Returns ``{"url", "ok", "status", "latency_ms", "error", "body"}``; ``ok`` is what ``curl -f`` calls success.
    """
    _check_url(url)
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    body = ""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "runbook-autopilot/probe"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            status = response.status
            body = response.read(MAX_BODY).decode("utf-8", "replace")
    except urllib.error.HTTPError as failure:
        status = failure.code
        body = failure.read(MAX_BODY).decode("utf-8", "replace") if failure.fp else ""
        error = f"HTTP {failure.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as failure:
        reason = getattr(failure, "reason", failure)
        error = f"{type(reason).__name__}: {reason}"
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    ok = status is not None and 200 <= status < 400
    return {
        "url": url,
        "ok": ok,
        "status": status,
        "latency_ms": latency_ms,
        "error": error,
        "body": body[:300],
    }


def tcp_connect(host: str, port: int, *, timeout: float = 3.0) -> dict[str, Any]:
    """Open and close a TCP connection (a RabbitMQ AMQP port, any service without a health protocol)."""
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
        error = None
    except OSError as failure:
        error = f"{type(failure).__name__}: {failure}"
    return {
        "target": f"{host}:{port}",
        "ok": error is None,
        "latency_ms": round((time.monotonic() - started) * 1000, 1),
        "error": error,
    }


def redis_ping(host: str, port: int, *, timeout: float = 3.0) -> dict[str, Any]:
    """``redis-cli ping``: send the RESP command PING and expect +PONG."""
    started = time.monotonic()
    error = None
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
        if not reply.startswith(b"+PONG"):
            error = f"unexpected reply {reply[:40]!r}"
    except OSError as failure:
        error = f"{type(failure).__name__}: {failure}"
    return {
        "target": f"{host}:{port}",
        "ok": error is None,
        "latency_ms": round((time.monotonic() - started) * 1000, 1),
        "error": error,
    }
