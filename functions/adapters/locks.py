"""One active runbook per target: a DynamoDB item written with a condition, expiring on its own.

Table (created by the CDK app, by the sandbox in moto): partition key ``target`` (S); ``expires_at`` (N, epoch
seconds) is also the table's TTL attribute, so an execution that died without releasing frees it anyway.
"""

from __future__ import annotations

import os
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.clients import client
from functions.core.errors import ConfigurationError, TargetLocked, TransientError

LOCK_TABLE_ENV = "LOCK_TABLE"
_TRANSIENT = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def _table() -> str:
    name = os.environ.get(LOCK_TABLE_ENV)
    if not name:
        raise ConfigurationError(f"no lock table: set {LOCK_TABLE_ENV}")
    return name


def _call(operation: str, **kwargs: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = getattr(client("dynamodb"), operation)(TableName=_table(), **kwargs)
        return result
    except ClientError as error:
        if error.response["Error"]["Code"] in _TRANSIENT:
            raise TransientError(f"dynamodb {error.response['Error']['Code']}") from error
        raise
    except BotoCoreError as error:
        raise TransientError(f"dynamodb: {error}") from error


def acquire(target: str, owner: str, *, now: float, ttl_seconds: int, note: str) -> dict[str, Any]:
    """Take the lock for ``owner``; taking it again as the same owner (a retry) succeeds.

    Raises ``TargetLocked`` naming the holder, after recording the duplicate on the holder's item.
    """
    item = {
        "target": {"S": target},
        "owner": {"S": owner},
        "acquired_at": {"N": str(int(now))},
        "expires_at": {"N": str(int(now + ttl_seconds))},
        "note": {"S": note[:500]},
        "duplicates": {"N": "0"},
    }
    try:
        _call(
            "put_item",
            Item=item,
            ConditionExpression="attribute_not_exists(#t) OR expires_at < :now OR #o = :owner",
            ExpressionAttributeNames={"#t": "target", "#o": "owner"},
            ExpressionAttributeValues={":now": {"N": str(int(now))}, ":owner": {"S": owner}},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        holder = _record_duplicate(target, note)
        raise TargetLocked(
            f"{target} is locked by {holder.get('owner', '?')} until {holder.get('expires_at', '?')} "
            f"({holder.get('note', '')}); duplicate #{holder.get('duplicates', '?')} recorded"
        ) from None
    return {"target": target, "owner": owner, "expires_at": int(now + ttl_seconds)}


def _record_duplicate(target: str, note: str) -> dict[str, str]:
    try:
        result = _call(
            "update_item",
            Key={"target": {"S": target}},
            UpdateExpression="ADD duplicates :one SET last_duplicate = :note",
            ConditionExpression="attribute_exists(#t)",
            ExpressionAttributeNames={"#t": "target"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":note": {"S": note[:500]}},
            ReturnValues="ALL_NEW",
        )
    except ClientError:
        return {}  # released in between: the duplicate is still a duplicate of a run that just ended
    return {key: next(iter(value.values())) for key, value in result.get("Attributes", {}).items()}


def release(target: str, owner: str) -> bool:
    """Release the lock if ``owner`` holds it; True when released, False when it was not held (a retry)."""
    try:
        _call(
            "delete_item",
            Key={"target": {"S": target}},
            ConditionExpression="#o = :owner",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":owner": {"S": owner}},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def holder(target: str) -> dict[str, str] | None:
    item = _call("get_item", Key={"target": {"S": target}}, ConsistentRead=True).get("Item")
    return {key: next(iter(value.values())) for key, value in item.items()} if item else None
