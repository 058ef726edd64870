"""Powertools Logger, Tracer and Metrics, created once, and the decorator every handler wears."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.core.results import StepResult

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "runbook-autopilot")
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(
    service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "RunbookAutopilot")
)

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def step_handler(func: Callable[[dict[str, Any]], StepResult]) -> Handler:
    """Wrap a step: structured logs with the Lambda context, a trace segment, and the result contract.

    ``func`` takes the event and returns a ``StepResult``; named errors propagate so Step Functions sees
    their class name as the error.
    """

    @functools.wraps(func)
    def wrapper(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        result = func(event)
        logger.info(result.summary, extra={"status": result.status.value})
        metrics.add_dimension(name="step", value=func.__module__.rsplit(".", 1)[-1])
        metrics.add_metric(
            name=f"Step{result.status.value.title().replace('_', '')}", unit=MetricUnit.Count, value=1
        )
        return result.to_state()

    traced = tracer.capture_lambda_handler(wrapper, capture_response=False)
    logged = logger.inject_lambda_context(traced, clear_state=True)
    return metrics.log_metrics(logged)  # type: ignore[no-any-return]
