"""Where reports are kept: S3 on AWS (``REPORTS_BUCKET``), a directory in the sandbox (``REPORTS_DIR``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.clients import client
from functions.core.errors import ConfigurationError, TransientError

DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".sandbox" / "reports"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,500}$")


def store_report(key: str, body: str, *, content_type: str = "text/markdown; charset=utf-8") -> str:
    """Store ``body`` under ``key`` (``db-maintenance/2026-12-06T020000Z.md``) and return where it is:
    ``s3://bucket/key`` when ``REPORTS_BUCKET`` is set, else a file under ``REPORTS_DIR``."""
    if not _KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"report key {key!r} is not a plain relative path")
    bucket = os.environ.get("REPORTS_BUCKET")
    if bucket:
        try:
            # no encryption header: the bucket's default encryption (SSE-S3 or KMS) applies
            client("s3").put_object(
                Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType=content_type
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"):
                raise TransientError(f"S3 {code} storing report {key}") from None
            raise ConfigurationError(f"cannot store report in s3://{bucket}/{key}: {code}") from None
        except BotoCoreError as error:
            raise TransientError(f"S3 unreachable: {type(error).__name__}") from None
        return f"s3://{bucket}/{key}"
    path = Path(os.environ.get("REPORTS_DIR") or DEFAULT_DIR) / key
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"cannot write report {path} (set REPORTS_BUCKET on AWS): {error}") from None
    return str(path)
