"""ELBv2 target health (``aws elbv2 describe-target-health``)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.clients import client
from functions.core.errors import InvalidInput, TransientError

_TRANSIENT = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalFailure",
}


def target_health(target_group_arn: str) -> list[dict[str, Any]]:
    """Every registered target with its state, reason and description."""
    try:
        response = client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in _TRANSIENT:
            raise TransientError(f"elbv2 {code}") from error
        if code in ("TargetGroupNotFound", "ValidationError"):
            raise InvalidInput(f"target group {target_group_arn}: {code}") from error
        raise
    except BotoCoreError as error:
        raise TransientError(f"elbv2: {error}") from error
    return [
        {
            "id": item["Target"]["Id"],
            "port": item["Target"].get("Port"),
            "state": item["TargetHealth"].get("State"),
            "reason": item["TargetHealth"].get("Reason"),
            "description": item["TargetHealth"].get("Description"),
        }
        for item in response.get("TargetHealthDescriptions", [])
    ]
