"""The backup pre-check against RDS: moto for the stateful path, botocore's Stubber for the shapes moto does
not produce (automated backups disabled, an old snapshot, throttling)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from functions.adapters import rds
from functions.core.clients import client, reset_clients
from functions.core.config import Database
from functions.core.errors import TransientError
from functions.handlers import db_check_backup, db_start_maintenance


@pytest.fixture
def fresh_clients():
    reset_clients()
    yield
    reset_clients()


def settings_with_instance(use_db_settings):
    return use_db_settings(Database(host="db.example.test", dbname="sales_db", rds_instance_id="sales-db"))


def test_a_recent_automated_backup_passes(use_db_settings, lambda_context, fresh_clients):
    with mock_aws():
        boto3.client("rds").create_db_instance(
            DBInstanceIdentifier="sales-db",
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="admin",
            MasterUserPassword="not-a-secret-123",
            AllocatedStorage=20,
            BackupRetentionPeriod=7,
        )
        boto3.client("rds").create_db_snapshot(
            DBInstanceIdentifier="sales-db", DBSnapshotIdentifier="weekly-1"
        )
        settings_with_instance(use_db_settings)
        state = db_start_maintenance.lambda_handler({}, lambda_context)["details"]

        result = db_check_backup.lambda_handler(state, lambda_context)

    assert result["status"] == "OK"
    assert result["details"]["retention_days"] == 7
    assert result["details"]["latest_snapshot_id"] == "weekly-1"
    assert result["details"]["newest_kind"] in ("automated backup", "snapshot weekly-1")


def test_backups_disabled_and_an_old_snapshot_fail_the_pre_check(
    use_db_settings, lambda_context, fresh_clients
):
    settings_with_instance(use_db_settings)
    state = db_start_maintenance.lambda_handler({}, lambda_context)["details"]
    old = datetime.now(tz=UTC) - timedelta(days=3)
    stub = Stubber(client("rds"))
    stub.add_response(
        "describe_db_instances",
        {
            "DBInstances": [
                {
                    "DBInstanceIdentifier": "sales-db",
                    "DBInstanceStatus": "available",
                    "BackupRetentionPeriod": 0,
                }
            ]
        },
        {"DBInstanceIdentifier": "sales-db"},
    )
    stub.add_response(
        "describe_db_snapshots",
        {
            "DBSnapshots": [
                {"DBSnapshotIdentifier": "manual-1", "Status": "available", "SnapshotCreateTime": old},
                {"DBSnapshotIdentifier": "manual-2", "Status": "creating"},
            ]
        },
        {"DBInstanceIdentifier": "sales-db"},
    )

    with stub:
        result = db_check_backup.lambda_handler(state, lambda_context)

    assert result["status"] == "FAILED"
    assert result["details"]["newest_kind"] == "snapshot manual-1"
    assert result["summary"].startswith("sales-db: newest backup (snapshot manual-1) is 72.")


def test_rds_throttling_is_a_transient_error(fresh_clients):
    stub = Stubber(client("rds"))
    stub.add_client_error("describe_db_instances", service_error_code="Throttling", http_status_code=400)

    with stub, pytest.raises(TransientError, match="Throttling"):
        rds.latest_backup("sales-db")
