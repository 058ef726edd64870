"""The one factory for AWS clients: standard retries, region-aware, cached per process.

Tests and the sandbox change where clients point (moto, ``AWS_ENDPOINT_URL_*``), never the code using them.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=20)
_lock = threading.Lock()  # boto3's default session is not safe to create clients from in parallel


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@lru_cache(maxsize=32)
def _cached(service: str, region_name: str) -> Any:
    with _lock:
        return boto3.session.Session().client(service, region_name=region_name, config=_CONFIG)


def client(service: str, region_name: str | None = None) -> Any:
    """A cached boto3 client for ``service``."""
    return _cached(service, region_name or region())


def reset_clients() -> None:
    """Forget cached clients (tests and the sandbox call this when they start a new world)."""
    _cached.cache_clear()
