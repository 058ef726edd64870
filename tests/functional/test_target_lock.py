"""One active runbook per target: the DynamoDB lock on moto."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from functions.adapters import locks
from functions.core.clients import client, reset_clients
from functions.core.errors import TargetLocked, TransientError
from functions.logic.locking import acquire_lock, release_lock
from tests.fixtures.envelopes import p1_envelope

TARGET = "prod-eks/production/sales-service"


@pytest.fixture
def table(monkeypatch):
    with mock_aws():
        reset_clients()
        boto3.client("dynamodb").create_table(
            TableName="locks",
            KeySchema=[{"AttributeName": "target", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "target", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        monkeypatch.setenv("LOCK_TABLE", "locks")
        yield
    reset_clients()


def envelope(dry_run=False):
    return p1_envelope(dry_run=dry_run)


def test_a_second_run_on_the_same_target_is_refused_and_recorded(table):
    locks.acquire(TARGET, "run-a", now=1000, ttl_seconds=3600, note="first")

    with pytest.raises(TargetLocked, match="locked by run-a"):
        locks.acquire(TARGET, "run-b", now=1010, ttl_seconds=3600, note="second alarm")

    held = locks.holder(TARGET)
    assert held["owner"] == "run-a"
    assert (held["duplicates"], held["last_duplicate"]) == ("1", "second alarm")


def test_the_same_run_retrying_keeps_its_lock(table):
    locks.acquire(TARGET, "run-a", now=1000, ttl_seconds=3600, note="first")

    again = locks.acquire(TARGET, "run-a", now=1005, ttl_seconds=3600, note="retry")

    assert again["owner"] == "run-a"


def test_an_expired_lock_is_taken_over(table):
    locks.acquire(TARGET, "run-a", now=1000, ttl_seconds=60, note="died")

    taken = locks.acquire(TARGET, "run-b", now=1061, ttl_seconds=3600, note="next")

    assert taken["owner"] == "run-b"


def test_only_the_holder_releases_and_a_second_release_is_a_noop(table):
    locks.acquire(TARGET, "run-a", now=1000, ttl_seconds=3600, note="first")

    assert locks.release(TARGET, "run-b") is False
    assert locks.holder(TARGET)["owner"] == "run-a"
    assert locks.release(TARGET, "run-a") is True
    assert locks.release(TARGET, "run-a") is False
    assert locks.holder(TARGET) is None


def test_dry_runs_neither_take_nor_release(table):
    state = {"execution": "arn:exec:dry", "ttl_seconds": 3600}

    taken = acquire_lock(state, envelope(dry_run=True), locks.acquire, now=1000)
    released = release_lock(state, envelope(dry_run=True), locks.release)

    assert (taken.status, released.status) == ("SKIPPED", "SKIPPED")
    assert locks.holder(TARGET) is None


def test_steps_take_and_release_by_execution(table):
    state = {"execution": "arn:exec:1", "ttl_seconds": 3600}

    taken = acquire_lock(state, envelope(), locks.acquire, now=1000)
    released = release_lock(state, envelope(), locks.release)

    assert taken.status == "CHANGED" and taken.details["owner"] == "arn:exec:1"
    assert released.status == "CHANGED"


def test_throttling_is_transient(table):
    with Stubber(client("dynamodb")) as stub:
        stub.add_client_error("put_item", service_error_code="ProvisionedThroughputExceededException")
        with pytest.raises(TransientError):
            locks.acquire(TARGET, "run-a", now=1000, ttl_seconds=3600, note="x")
