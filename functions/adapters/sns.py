"""Publish to the escalation topics on SNS, within SNS's limits.

The topic of a level comes from the environment: ``TOPIC_ARN_<LEVEL>`` (``TOPIC_ARN_L1``, ``TOPIC_ARN_L2``,
``TOPIC_ARN_MANAGEMENT``), set by the CDK app and by the sandbox.
"""

from __future__ import annotations

import os
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.clients import client
from functions.core.errors import ConfigurationError, TransientError

# SNS: a subject is under 100 characters, one line, no control characters; a message at most 256 KiB.
MAX_SUBJECT_CHARS = 99
MAX_MESSAGE_BYTES = 256 * 1024
TRUNCATION_NOTE = "\n\n[truncated to fit SNS's 256 KiB message limit]\n"
_TRANSIENT_CODES = frozenset(
    {"Throttling", "ThrottlingException", "InternalError", "InternalFailure", "KMSThrottling"}
)


def topic_arn(topic_level: str) -> str:
    """The ARN of the topic of ``topic_level`` (``L1`` -> ``$TOPIC_ARN_L1``)."""
    name = "TOPIC_ARN_" + re.sub(r"[^A-Z0-9]", "_", topic_level.upper())
    arn = os.environ.get(name)
    if not arn:
        raise ConfigurationError(f"no SNS topic for level {topic_level}: set {name}")
    return arn


def fit_subject(subject: str) -> str:
    """One line of printable text under 100 characters (SNS refuses anything else)."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in subject).split())
    if len(line) > MAX_SUBJECT_CHARS:
        line = line[: MAX_SUBJECT_CHARS - 1].rstrip() + "…"
    return line or "(no subject)"


def fit_message(message: str) -> str:
    """``message`` cut on a character boundary to at most 256 KiB of UTF-8, saying that it was cut."""
    data = message.encode("utf-8")
    if len(data) <= MAX_MESSAGE_BYTES:
        return message
    room = MAX_MESSAGE_BYTES - len(TRUNCATION_NOTE.encode("utf-8"))
    return data[:room].decode("utf-8", errors="ignore") + TRUNCATION_NOTE


def publish(topic_level: str, subject: str, message: str, *, dry_run: bool) -> dict[str, Any]:
    """Publish ``message`` on the topic of ``topic_level``; in a dry run, say what would be published."""
    arn = topic_arn(topic_level)
    fitted_subject, fitted_message = fit_subject(subject), fit_message(message)
    result: dict[str, Any] = {
        "topic_arn": arn,
        "subject": fitted_subject,
        "bytes": len(fitted_message.encode("utf-8")),
        "truncated": fitted_message != message,
    }
    if dry_run:
        return {**result, "dry_run": True, "message_id": None}
    try:
        response = client("sns").publish(TopicArn=arn, Subject=fitted_subject, Message=fitted_message)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _TRANSIENT_CODES:
            raise TransientError(f"SNS {code} publishing to {arn}") from None
        raise
    except BotoCoreError as error:
        raise TransientError(f"SNS unreachable: {type(error).__name__}") from None
    return {**result, "dry_run": False, "message_id": response.get("MessageId")}
