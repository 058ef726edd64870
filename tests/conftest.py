"""Shared fixtures. Each fixture family lives in tests/fixtures/<family>.py and is registered here."""

from __future__ import annotations

import os

import pytest

# Never let a test reach a real AWS account, whatever the developer's shell holds.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "RunbookAutopilotTest",
        "POWERTOOLS_DEV": "false",
    }
)
os.environ.pop("AWS_PROFILE", None)

pytest_plugins: list[str] = ["tests.fixtures.postgres", "tests.fixtures.kube"]


@pytest.fixture
def lambda_context():
    """A Lambda context with the fields Powertools reads."""
    from dataclasses import dataclass

    @dataclass
    class FakeLambdaContext:
        function_name: str = "test-step"
        memory_limit_in_mb: int = 256
        invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-step"
        aws_request_id: str = "00000000-0000-0000-0000-000000000000"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 60_000

    return FakeLambdaContext()
