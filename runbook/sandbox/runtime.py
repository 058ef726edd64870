"""The sandbox: the real ASL on moto's Step Functions interpreter, the real handlers in-process, moto as AWS,
the Kubernetes API simulator as the cluster, a real PostgreSQL, all on one scaled clock.

    with Sandbox(load_scenario("bad-deploy")) as sandbox:
        arn = sandbox.start("p1-service-down", event)
        for event in sandbox.watch(arn): ...

Nothing here is a code path of the product: the steps run exactly as on AWS, against other endpoints.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from functions import catalog
from functions.core import clock as step_clock
from functions.core.clients import client, reset_clients
from functions.core.config import CONFIG_ENV, get_settings, parse_settings
from runbook.sandbox.clock import ScaledClock
from runbook.sandbox.moto_patches import InProcessLambda, patched
from runbook.sandbox.scenarios import Scenario

REPO = Path(__file__).resolve().parents[2]
STATEMACHINES = REPO / "statemachines"
ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION_PREFIX = "runbook-autopilot-"
LEVELS = ("L1", "L2", "L3", "management")
LOCK_TABLE = "runbook-autopilot-locks"
TERMINAL = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace every ``${Name}``; an unknown placeholder is an error, as it is for the CDK app."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"ASL placeholder ${{{name}}} has no value")
        return values[name]

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", one, text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Message:
    level: str
    subject: str
    body: str


@dataclass
class Sandbox:
    scenario: Scenario
    scale: float = 60.0
    workdir: Path | None = None
    _stack: list[Callable[[], None]] = field(default_factory=list)

    # --- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        while self._stack:
            undo = self._stack.pop()
            with contextlib.suppress(Exception):  # tear-down goes on whatever one piece says
                undo()

    def _start(self) -> None:
        from moto import mock_aws

        from runbook.sandbox.kube_sim import KubeSimulator

        self._env_before = {k: os.environ.get(k) for k in self._env_keys()}
        self._stack.append(self._restore_env)
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "sandbox",
                "AWS_SECRET_ACCESS_KEY": "sandbox",
                "AWS_SESSION_TOKEN": "sandbox",
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "1",
                "POWERTOOLS_METRICS_NAMESPACE": "RunbookAutopilotSandbox",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "ERROR"),
                # EMF metrics go to stdout, where CloudWatch reads them on Lambda; here they would clutter the view
                "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        if self.workdir is None:
            tmp = tempfile.TemporaryDirectory(prefix="runbook-sandbox-")
            self._stack.append(tmp.cleanup)
            self.workdir = Path(tmp.name)

        self.clock = ScaledClock(self.scale, start=self.scenario.clock_start(), running=False)
        step_clock.set_clock(self.clock.now)
        self._stack.append(step_clock.reset_clock)

        mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        mock.start()
        self._stack.append(mock.stop)
        self._forget_cached_clients()
        self._stack.append(self._forget_cached_clients)

        self.kube = KubeSimulator(clock=self.clock.now)
        self.kube_url = self.kube.start()
        self._stack.append(self.kube.stop)
        self._stack.append(get_settings.cache_clear)
        self._clusters: set[str] = set()
        self._target_groups: dict[str, str] = {}
        self._vpc = client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self._shared_values = self._create_topics_and_secret()

        self.lambdas = InProcessLambda(self._handler_for)
        patch = patched(lambdas=self.lambdas, sleep_scale=self.clock.real_seconds, targets=self._targets_for)
        patch.__enter__()

        def unpatch() -> None:
            patch.__exit__(None, None, None)

        self._stack.append(unpatch)
        self._create_functions_and_machines()
        self.load(self.scenario)

    def load(self, scenario: Scenario) -> None:
        """Put a scenario's world in place: the cluster, the database, the configuration; a clean record.

        Functions, state machines and topics stay, so one sandbox can run many scenarios in turn.
        """
        from runbook.sandbox.kube_sim import point_cluster_at

        self.scenario = scenario
        self.clock.reset(scenario.clock_start())
        self.kube.load(scenario.world)
        self.kube.mutations.clear()
        values = {"sim": self.kube_url, **self._shared_values}
        values |= self._start_database()
        for cluster in scenario.clusters:
            if cluster not in self._clusters:
                client("eks").create_cluster(
                    name=cluster,
                    roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-cluster",
                    resourcesVpcConfig={"subnetIds": []},
                )
                point_cluster_at(cluster, self.kube_url)
                self._clusters.add(cluster)
        for name in scenario.target_groups:
            if name not in self._target_groups:
                self._target_groups[name] = client("elbv2").create_target_group(
                    Name=f"{name}-tg"[:32],
                    Protocol="HTTP",
                    Port=8080,
                    VpcId=self._vpc,
                    TargetType="ip",
                    HealthCheckPath="/health",
                )["TargetGroups"][0]["TargetGroupArn"]
            values[f"target_group:{name}"] = self._target_groups[name]
        settings = parse_settings(scenario.render_config(values))
        assert self.workdir is not None
        config_file = self.workdir / "autopilot_config.json"
        config_file.write_text(json.dumps(settings.model_dump(mode="json"), indent=2))
        os.environ[CONFIG_ENV] = str(config_file)
        get_settings.cache_clear()
        self._forget_cached_clients()
        self.settings = settings
        self._bind_target_groups()
        self.drain_messages()
        self.messages.clear()
        self.lambdas.invocations.clear()
        # a new world holds no locks
        for item in client("dynamodb").scan(TableName=LOCK_TABLE).get("Items", []):
            client("dynamodb").delete_item(TableName=LOCK_TABLE, Key={"target": item["target"]})

    @staticmethod
    def _forget_cached_clients() -> None:
        """Clients cached per process (AWS, Kubernetes per cluster, secrets) point at the previous world."""
        from functions.adapters import kubernetes, postgres

        reset_clients()
        kubernetes.reset()
        postgres.forget_secrets()

    def _env_keys(self) -> list[str]:
        return [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_PROFILE",
            "POWERTOOLS_TRACE_DISABLED",
            "POWERTOOLS_METRICS_NAMESPACE",
            "POWERTOOLS_LOG_LEVEL",
            "POWERTOOLS_METRICS_DISABLED",
            CONFIG_ENV,
            "LOCK_TABLE",
            "PGUSER",
            "PGPASSWORD",
            *[f"TOPIC_ARN_{level.upper()}" for level in LEVELS],
        ]

    def _restore_env(self) -> None:
        for key, value in self._env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    # --- the world ---------------------------------------------------------------------------------------
    def _start_database(self) -> dict[str, str]:
        if self.scenario.database == "down":
            # Nothing listens on this port: the connection is refused, as for a database that is down.
            return {"pg_host": "127.0.0.1", "pg_port": str(_free_port())}
        from runbook.sandbox.postgres import seed, shared_server

        server = shared_server()
        dbname = self.scenario.database_name
        seed(server, dbname, rows=self.scenario.seed_rows)
        return {"pg_host": server.host, "pg_port": str(server.port), "pg_user": server.user}

    def _create_topics_and_secret(self) -> dict[str, str]:
        values: dict[str, str] = {}
        self._queues: dict[str, str] = {}
        for level in LEVELS:
            topic = client("sns").create_topic(Name=f"runbook-autopilot-{level.lower()}")["TopicArn"]
            queue = client("sqs").create_queue(QueueName=f"sandbox-{level.lower()}")["QueueUrl"]
            queue_arn = client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
            os.environ[f"TOPIC_ARN_{level.upper()}"] = topic
            values[f"topic:{level}"] = topic
            self._queues[level] = queue
        self.messages: list[Message] = []
        client("dynamodb").create_table(
            TableName=LOCK_TABLE,
            KeySchema=[{"AttributeName": "target", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "target", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        os.environ["LOCK_TABLE"] = LOCK_TABLE
        values["secret:db"] = client("secretsmanager").create_secret(
            Name="sandbox/sales-db",
            SecretString=json.dumps(
                {"username": "postgres", "password": "sandbox-not-secret", "engine": "postgres"}
            ),
        )["ARN"]
        return values

    def _bind_target_groups(self) -> None:
        self._bindings: dict[str, tuple[str, dict[str, str]]] = {}
        for name, service in self.settings.services.items():
            if service.target_group_arn:
                self._bindings[service.target_group_arn] = (service.namespace, self.settings.selector(name))

    def _targets_for(self, target_group_arn: str) -> dict[str, bool] | None:
        binding = self._bindings.get(target_group_arn)
        if binding is None:
            return None
        result: dict[str, bool] = self.kube.pod_ips(*binding)
        return result

    # --- functions and machines -------------------------------------------------------------------------
    def _handler_for(self, function_name: str) -> Callable[[Any, Any], Any]:
        step = catalog.STEPS[function_name.removeprefix(FUNCTION_PREFIX)]
        module_name, _, attr = step.handler.rpartition(".")
        handler: Callable[[Any, Any], Any] = getattr(import_module(module_name), attr)
        return handler

    def _create_functions_and_machines(self) -> None:
        role = client("iam").create_role(
            RoleName="runbook-autopilot-sandbox",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w") as archive:
            archive.writestr("README.txt", "The sandbox runs the repository's handlers in-process.")
        arns: dict[str, str] = {}
        # Warm every handler (and the Kubernetes client) while the clock stands still, as provisioned Lambda
        # functions are: a cold import would otherwise count as minutes of simulated incident time.
        for step in catalog.STEPS.values():
            self._handler_for(FUNCTION_PREFIX + step.name)
        import_module("kubernetes.client")
        for step in catalog.STEPS.values():
            arns[step.placeholder] = client("lambda").create_function(
                FunctionName=FUNCTION_PREFIX + step.name,
                Runtime="python3.13",
                Role=role,
                Handler=step.handler,
                Code={"ZipFile": package.getvalue()},
                Timeout=step.timeout_seconds,
                MemorySize=step.memory_mb,
                Architectures=["arm64"],
            )["FunctionArn"]
        self.machines: dict[str, str] = {}
        for book in catalog.RUNBOOKS.values():
            path = STATEMACHINES / book.asl_file
            if not path.exists():
                continue
            definition = substitute(path.read_text(), arns | self.scenario.extra_placeholders())
            self.machines[book.name] = client("stepfunctions").create_state_machine(
                name=f"runbook-autopilot-{book.name}",
                definition=definition,
                roleArn=role,
                type="STANDARD",
            )["stateMachineArn"]

    # --- running -----------------------------------------------------------------------------------------
    def start(self, runbook: str, payload: dict[str, Any], *, name: str | None = None) -> str:
        if runbook not in self.machines:
            raise KeyError(
                f"runbook {runbook!r} has no state machine here; known: {', '.join(sorted(self.machines))}"
            )
        name = name or f"{runbook}-{int(time.time() * 1000)}"
        self.clock.resume()
        return str(
            client("stepfunctions").start_execution(
                stateMachineArn=self.machines[runbook], name=name, input=json.dumps(payload)
            )["executionArn"]
        )

    def watch(
        self, execution_arn: str, *, poll: float = 0.05, timeout: float = 600.0
    ) -> Iterator[dict[str, Any]]:
        """Yield history events as they happen, until the execution ends."""
        seen = 0
        deadline = time.monotonic() + timeout
        sfn = client("stepfunctions")
        while True:
            events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
            for event in events[seen:]:
                yield event
                if event["type"] in TERMINAL:
                    return
            seen = len(events)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} did not finish within {timeout:.0f}s of real time")
            time.sleep(poll)

    def run(self, runbook: str, payload: dict[str, Any]) -> Run:
        arn = self.start(runbook, payload)
        started = time.monotonic()
        sim_started = self.clock.now()
        events = list(self.watch(arn))
        description = client("stepfunctions").describe_execution(executionArn=arn)
        return Run(
            arn=arn,
            events=events,
            description=description,
            wall_seconds=time.monotonic() - started,
            simulated_seconds=self.clock.now() - sim_started,
            messages=self.drain_messages(),
        )

    def drain_messages(self) -> list[Message]:
        """SNS messages delivered to the topics' SQS subscriptions since the last call."""
        sqs = client("sqs")
        for level, queue in self._queues.items():
            while True:
                batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
                if not batch:
                    break
                for item in batch:
                    envelope = json.loads(item["Body"])
                    self.messages.append(
                        Message(level, envelope.get("Subject", ""), envelope.get("Message", ""))
                    )
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=item["ReceiptHandle"])
        return list(self.messages)


@dataclass
class Run:
    arn: str
    events: list[dict[str, Any]]
    description: dict[str, Any]
    wall_seconds: float
    simulated_seconds: float
    messages: list[Message]

    @property
    def status(self) -> str:
        return str(self.description["status"])

    @property
    def output(self) -> dict[str, Any]:
        raw = self.description.get("output")
        return json.loads(raw) if raw else {}

    @property
    def states_entered(self) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.events if "stateEnteredEventDetails" in e]

    @property
    def error(self) -> str | None:
        for event in reversed(self.events):
            details = event.get("executionFailedEventDetails")
            if details:
                return str(details.get("error"))
        return None
