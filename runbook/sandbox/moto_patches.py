"""Every place the sandbox reaches into moto, in one module, so a moto upgrade breaks loudly here and nowhere else.

1. ``LambdaFunction._invoke_lambda``: moto would run the code in Docker; the sandbox calls the real handler
   in-process with a Lambda context and returns Lambda's error payload (``errorType`` = the exception's class
   name), so the ASL's Retry and Catch see the real error names.
2. ``WaitFunction._wait_interval`` and the retrier's ``time.sleep``: Wait states and retry intervals run on
   the sandbox's scaled clock.
3. ``ExecutionWorker._get_evaluation_entrypoint``: moto parses the ASL with ANTLR at every execution
   (about 1.4 s for the P1 file); the parsed program holds no execution state (that lives in the
   ``Environment``), so the sandbox parses each definition once.
4. ``ELBv2Backend.describe_target_health``: moto calls every target healthy; for target groups bound to a
   simulated Deployment the targets are its pod IPs (registered and deregistered as pods come and go, as the
   AWS Load Balancer Controller does) and their health is the pods' readiness.

``check_patch_points()`` raises ``MotoPatchPointMoved`` naming what moved; a test calls it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

PATCH_POINTS = {
    "moto.awslambda.models:LambdaFunction._invoke_lambda": ["self", "event"],
    "moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function:WaitFunction._wait_interval": [
        "self",
        "env",
        "wait_seconds",
    ],
    "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl:time": None,
    "moto.elbv2.models:ELBv2Backend.describe_target_health": ["self", "target_group_arn", "targets"],
    "moto.stepfunctions.parser.backend.execution_worker:ExecutionWorker._get_evaluation_entrypoint": ["self"],
    "moto.stepfunctions.parser.asl.parse.asl_parser:AmazonStateLanguageParser.parse": ["definition"],
    "moto.elbv2.models:FakeHealthStatus": None,
}


class MotoPatchPointMoved(RuntimeError):
    """A moto upgrade moved or changed a function the sandbox patches."""


def _resolve(point: str) -> Any:
    module_name, _, attr_path = point.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    return obj


def check_patch_points() -> None:
    """Fail loudly, naming the moved point, if moto no longer has what the sandbox patches."""
    for point, params in PATCH_POINTS.items():
        try:
            target = _resolve(point)
        except (ImportError, AttributeError) as error:
            raise MotoPatchPointMoved(
                f"moto no longer has {point} ({error}); the sandbox patches it: update runbook/sandbox/moto_patches.py"
            ) from None
        if params is not None:
            found = list(inspect.signature(target).parameters)
            if found != params:
                raise MotoPatchPointMoved(f"{point} now takes {found}, the sandbox expects {params}")


@dataclass
class LambdaContext:
    """The fields of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    log_group_name: str
    log_stream_name: str = "sandbox"
    function_version: str = "$LATEST"
    timeout_seconds: int = 60

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


@dataclass
class Invocation:
    function: str
    event: Any
    ok: bool
    result: Any


HandlerLookup = Callable[[str], Callable[[Any, Any], Any]]


class InProcessLambda:
    """Runs handlers in the calling thread; Parallel branches therefore really run side by side."""

    def __init__(self, lookup: HandlerLookup) -> None:
        self.lookup = lookup
        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()  # guards the list only, never the handler call

    def invoke(self, function: Any, event: Any) -> tuple[str, bool, str]:
        context = LambdaContext(
            function_name=function.function_name,
            memory_limit_in_mb=int(function.memory_size or 256),
            invoked_function_arn=function.function_arn,
            aws_request_id=str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{function.function_name}",
            timeout_seconds=int(function.timeout or 60),
        )
        if isinstance(event, str | bytes):
            event = json.loads(event or "{}")
        try:
            try:
                handler = self.lookup(function.function_name)
            except ImportError as error:  # what Lambda reports when the handler module does not import
                raise ImportModuleError(
                    f"Unable to import module for {function.function_name}: {error}"
                ) from error
            result = handler(event, context)
            payload, errored = json.dumps(result), False
        except Exception as error:  # Lambda turns any exception into an error payload
            payload = json.dumps(
                {
                    "errorType": _error_type(error),
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_exception(error)[-3:],
                }
            )
            errored, result = True, {"errorType": _error_type(error), "errorMessage": str(error)}
        with self._lock:
            self.invocations.append(Invocation(function.function_name, event, not errored, result))
        return payload, errored, ""  # the handlers' logs go where Powertools sends them (stdout)


class ImportModuleError(Exception):
    """Lambda's Runtime.ImportModuleError."""


def _error_type(error: BaseException) -> str:
    return "Runtime.ImportModuleError" if isinstance(error, ImportModuleError) else type(error).__name__


TargetSource = Callable[[str], dict[str, bool] | None]  # target group ARN -> {ip: ready} or None if not bound


@contextmanager
def patched(
    *,
    lambdas: InProcessLambda,
    sleep_scale: Callable[[float], float],
    targets: TargetSource,
) -> Iterator[None]:
    """Apply the patches for the duration of the block."""
    check_patch_points()
    from moto.awslambda.models import LambdaFunction
    from moto.elbv2.models import ELBv2Backend, FakeHealthStatus
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    originals = (
        LambdaFunction._invoke_lambda,
        WaitFunction._wait_interval,
        retrier_decl.time,
        ELBv2Backend.describe_target_health,
        ExecutionWorker._get_evaluation_entrypoint,
    )
    programs: dict[str, Any] = {}
    programs_lock = threading.Lock()

    def evaluation_entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with programs_lock:
            if definition not in programs:
                programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return programs[definition]

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return lambdas.invoke(self, event)

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0:
            env.program_state_event.wait(sleep_scale(wait_seconds))

    class ScaledTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(originals[2], name)

        @staticmethod
        def sleep(seconds: float) -> None:
            originals[2].sleep(sleep_scale(seconds))

    def describe_target_health(
        self: Any, target_group_arn: str, targets_asked: list[dict[str, Any]]
    ) -> list[Any]:
        pods = targets(target_group_arn)
        if pods is None:
            return originals[3](self, target_group_arn, targets_asked)
        group = self.target_groups.get(target_group_arn)
        if group is None:
            return originals[3](self, target_group_arn, targets_asked)
        stale = [{"Id": ip} for ip in list(group.targets) if ip not in pods]
        if stale:
            group.deregister(stale)
        new = [{"Id": ip, "Port": group.port} for ip in pods if ip not in group.targets]
        if new:
            group.register(new)
        result = []
        for ip, ready in sorted(pods.items()):
            if ready:
                result.append(FakeHealthStatus(ip, group.port, group.health_check_port, "healthy"))
            else:
                result.append(
                    FakeHealthStatus(
                        ip,
                        group.port,
                        group.health_check_port,
                        "unhealthy",
                        "Target.FailedHealthChecks",
                        "Health checks failed",
                    )
                )
        return result

    LambdaFunction._invoke_lambda = invoke_lambda
    WaitFunction._wait_interval = wait_interval
    retrier_decl.time = ScaledTime()
    ELBv2Backend.describe_target_health = describe_target_health
    ExecutionWorker._get_evaluation_entrypoint = evaluation_entrypoint
    # moto logs every failed state (the runbooks fail states on purpose) with its whole parse tree
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        (
            LambdaFunction._invoke_lambda,
            WaitFunction._wait_interval,
            retrier_decl.time,
            ELBv2Backend.describe_target_health,
            ExecutionWorker._get_evaluation_entrypoint,
        ) = originals
