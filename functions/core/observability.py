"""Powertools Logger and Tracer, created once, and the decorator every handler wears."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.core.results import StepResult

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "runbook-autopilot")
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def _count(step: str, status: str) -> None:
    # single_metric flushes its own EMF record: no state shared between invocations (or sandbox threads)
    if is_metrics_disabled():
        return
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "RunbookAutopilot")
    with single_metric(name="StepResult", unit=MetricUnit.Count, value=1, namespace=namespace) as metric:
        metric.add_dimension(name="step", value=step)
        metric.add_dimension(name="status", value=status)


def step_handler(func: Callable[[dict[str, Any]], StepResult]) -> Handler:
    """Wrap a step: structured logs with the Lambda context, a trace segment, a metric, the result contract.

    ``func`` takes the event and returns a ``StepResult``; named errors propagate so Step Functions sees
    their class name as the error.
    """
    step = func.__module__.rsplit(".", 1)[-1]

    @functools.wraps(func)
    def wrapper(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            result = func(event)
        except Exception as error:
            logger.warning("step raised %s: %s", type(error).__name__, error)
            _count(step, type(error).__name__)
            raise
        logger.info(result.summary, extra={"status": result.status.value})
        _count(step, result.status.value)
        return result.to_state()

    traced = tracer.capture_lambda_handler(wrapper, capture_response=False)
    return logger.inject_lambda_context(traced, clear_state=True)
