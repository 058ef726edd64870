"""SNS's limits on what the runbooks publish: subject and message size."""

from __future__ import annotations

import pytest

from functions.adapters import sns
from functions.core.errors import ConfigurationError


def test_a_subject_is_one_printable_line_under_100_characters():
    subject = sns.fit_subject("[production] DB\nmaintenance\t" + "x" * 200)

    assert "\n" not in subject and "\t" not in subject
    assert len(subject) == 99
    assert subject.startswith("[production] DB maintenance xxx") and subject.endswith("…")


def test_a_message_is_cut_to_256_kib_on_a_character_boundary_and_says_so():
    message = "é" * 200_000  # 400,000 bytes of UTF-8

    fitted = sns.fit_message(message)

    assert len(fitted.encode("utf-8")) <= 256 * 1024
    assert fitted.endswith(sns.TRUNCATION_NOTE)
    assert sns.fit_message("short") == "short"


def test_a_level_without_a_topic_is_a_configuration_error(monkeypatch):
    monkeypatch.delenv("TOPIC_ARN_L3", raising=False)

    with pytest.raises(ConfigurationError, match="TOPIC_ARN_L3"):
        sns.publish("L3", "s", "m", dry_run=True)


def test_a_dry_run_publish_says_what_would_be_sent(monkeypatch):
    monkeypatch.setenv("TOPIC_ARN_L1", "arn:aws:sns:us-east-1:123456789012:l1")

    result = sns.publish("L1", "subject", "message", dry_run=True)

    assert result == {
        "topic_arn": "arn:aws:sns:us-east-1:123456789012:l1",
        "subject": "subject",
        "bytes": 7,
        "truncated": False,
        "dry_run": True,
        "message_id": None,
    }
