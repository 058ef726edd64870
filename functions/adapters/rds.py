"""RDS reads for the runbooks: the newest restore point of an instance."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.clients import client
from functions.core.clock import to_iso
from functions.core.errors import ConfigurationError, TransientError

_TRANSIENT_CODES = frozenset({"Throttling", "ThrottlingException", "InternalFailure", "ServiceUnavailable"})


def _call(operation: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return getattr(client("rds"), operation)(**kwargs)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _TRANSIENT_CODES:
            raise TransientError(f"RDS {code} on {operation}") from None
        if code == "DBInstanceNotFound":
            raise ConfigurationError(f"RDS instance {kwargs.get('DBInstanceIdentifier')} not found") from None
        raise
    except BotoCoreError as error:
        raise TransientError(f"RDS unreachable: {type(error).__name__}") from None


def latest_backup(instance_id: str) -> dict[str, Any]:
    """The instance's automated-backup state (retention, latest restorable time) and its newest available
    snapshot (manual or automated), timestamps as ISO strings."""
    instances = _call("describe_db_instances", DBInstanceIdentifier=instance_id)["DBInstances"]
    if not instances:
        raise ConfigurationError(f"RDS instance {instance_id} not found")
    instance = instances[0]
    restorable = instance.get("LatestRestorableTime")
    snapshots = []
    paginator_kwargs: dict[str, Any] = {"DBInstanceIdentifier": instance_id}
    while True:
        page = _call("describe_db_snapshots", **paginator_kwargs)
        snapshots += [s for s in page.get("DBSnapshots", []) if s.get("Status") == "available"]
        if not page.get("Marker"):
            break
        paginator_kwargs["Marker"] = page["Marker"]
    newest = max(snapshots, key=lambda s: s.get("SnapshotCreateTime") or datetime.min, default=None)
    return {
        "instance": instance_id,
        "status": instance.get("DBInstanceStatus"),
        "retention_days": int(instance.get("BackupRetentionPeriod") or 0),
        "latest_restorable_time": to_iso(restorable) if isinstance(restorable, datetime) else None,
        "latest_snapshot_id": newest.get("DBSnapshotIdentifier") if newest else None,
        "latest_snapshot_time": to_iso(newest["SnapshotCreateTime"])
        if newest and newest.get("SnapshotCreateTime")
        else None,
    }
