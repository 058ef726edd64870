"""The catalog of steps and runbooks: the one place that ties ASL placeholders, handler code, sandbox and CDK.

Each ``${<Step>FunctionArn}`` placeholder in an ASL file names a step here. The CDK app creates one Lambda
function (and one least-privilege role) per step from this table; the sandbox registers the same handlers
with moto. Adding a runbook: its ASL file, its steps here, one entry in ``RUNBOOKS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AwsNeed = Literal[
    "elb:read",  # elasticloadbalancing:DescribeTargetHealth
    "eks:describe",  # eks:DescribeCluster for the service clusters
    "sns:publish",  # the escalation topics
    "secrets:read",  # the database secrets
    "rds:read",  # rds:DescribeDBInstances / DescribeDBSnapshots
    "s3:write-reports",  # the reports bucket
    "cloudwatch:read",  # GetMetricData / DescribeAlarms
    "dynamodb:lock",  # the one-run-per-target lock table
]


@dataclass(frozen=True)
class Step:
    """One Lambda function."""

    name: str  # PascalCase; the ASL placeholder is ${<name>FunctionArn}
    handler: str  # dotted path to lambda_handler
    description: str
    timeout_seconds: int = 60
    memory_mb: int = 256
    aws: tuple[AwsNeed, ...] = ()
    kubernetes: bool = False  # talks to the cluster API (EKS access entry, RBAC group)
    database: bool = False  # opens PostgreSQL connections (VPC placement)
    http_probes: bool = False  # calls service health URLs (VPC placement when they are private)

    @property
    def placeholder(self) -> str:
        return f"{self.name}FunctionArn"


@dataclass(frozen=True)
class Runbook:
    """One state machine."""

    name: str  # kebab-case, used by the CLI: runbook run <name>
    asl_file: str  # under statemachines/
    description: str
    steps: tuple[str, ...]
    timeout_minutes: int
    triggers: tuple[
        Literal["alarm", "schedule:db_maintenance", "schedule:daily_health_check", "manual"], ...
    ] = ("manual",)
    extra_placeholders: tuple[str, ...] = field(default=())


_H = "functions.handlers"

STEPS: dict[str, Step] = {
    step.name: step
    for step in (
        Step(
            "NormalizeInput",
            f"{_H}.normalize_input.lambda_handler",
            "Turn an alarm event or a request into the run envelope",
            timeout_seconds=20,
        ),
        Step(
            "CheckHealthEndpoints",
            f"{_H}.check_health_endpoints.lambda_handler",
            "Probe the primary and backup health URLs",
            timeout_seconds=30,
            http_probes=True,
        ),
        Step(
            "CheckTargetHealth",
            f"{_H}.check_target_health.lambda_handler",
            "Read ELB target health",
            timeout_seconds=30,
            aws=("elb:read",),
        ),
        Step(
            "CheckPods",
            f"{_H}.check_pods.lambda_handler",
            "Read pod readiness, restarts and waiting reasons",
            kubernetes=True,
            aws=("eks:describe",),
        ),
        Step(
            "CheckRolloutHistory",
            f"{_H}.check_rollout_history.lambda_handler",
            "Read the Deployment's revisions and the age of the latest change",
            kubernetes=True,
            aws=("eks:describe",),
        ),
        Step(
            "CheckResourceUsage",
            f"{_H}.check_resource_usage.lambda_handler",
            "Read pod CPU and memory from the metrics API",
            kubernetes=True,
            aws=("eks:describe",),
        ),
        Step(
            "CheckDependencies",
            f"{_H}.check_dependencies.lambda_handler",
            "Probe PostgreSQL, Redis, RabbitMQ and external HTTP dependencies",
            timeout_seconds=60,
            database=True,
            http_probes=True,
            aws=("secrets:read",),
        ),
        Step(
            "AcquireTargetLock",
            f"{_H}.acquire_target_lock.lambda_handler",
            "Take the target's lock: one active runbook per target; a duplicate start ends as deduplicated",
            timeout_seconds=20,
            aws=("dynamodb:lock",),
        ),
        Step(
            "ReleaseTargetLock",
            f"{_H}.release_target_lock.lambda_handler",
            "Release the target's lock on every end path",
            timeout_seconds=20,
            aws=("dynamodb:lock",),
        ),
        Step(
            "DecideAction",
            f"{_H}.decide_action.lambda_handler",
            "Choose restart, scale up, roll back or escalate from the findings",
            timeout_seconds=10,
        ),
        Step(
            "RestartDeployment",
            f"{_H}.restart_deployment.lambda_handler",
            "kubectl rollout restart",
            kubernetes=True,
            aws=("eks:describe",),
        ),
        Step(
            "ScaleDeployment",
            f"{_H}.scale_deployment.lambda_handler",
            "kubectl scale, within the configured maximum",
            kubernetes=True,
            aws=("eks:describe",),
        ),
        Step(
            "RollbackDeployment",
            f"{_H}.rollback_deployment.lambda_handler",
            "kubectl rollout undo",
            kubernetes=True,
            aws=("eks:describe",),
        ),
        Step(
            "CheckRollout",
            f"{_H}.check_rollout.lambda_handler",
            "kubectl rollout status, once",
            kubernetes=True,
            aws=("eks:describe",),
        ),
        Step(
            "VerifyRecovery",
            f"{_H}.verify_recovery.lambda_handler",
            "Health URL answers, targets healthy, all pods ready",
            timeout_seconds=60,
            kubernetes=True,
            http_probes=True,
            aws=("eks:describe", "elb:read"),
        ),
        Step(
            "PublishIncidentUpdate",
            f"{_H}.publish_incident_update.lambda_handler",
            "Send the incident update (communication template) on SNS",
            timeout_seconds=20,
            aws=("sns:publish",),
        ),
        Step(
            "Escalate",
            f"{_H}.escalate.lambda_handler",
            "Page the next escalation level on SNS",
            timeout_seconds=20,
            aws=("sns:publish",),
        ),
        # Weekly database maintenance (timeouts: functions.logic.db_maintenance.STEP_BUDGET_SECONDS)
        Step(
            "DbStartMaintenance",
            f"{_H}.db_start_maintenance.lambda_handler",
            "Turn the Sunday schedule or a manual start into the maintenance run",
            timeout_seconds=30,
        ),
        Step(
            "DbCheckBackup",
            f"{_H}.db_check_backup.lambda_handler",
            "Newest RDS backup or snapshot is recent enough",
            timeout_seconds=120,
            aws=("rds:read",),
        ),
        Step(
            "DbCheckDatabase",
            f"{_H}.db_check_database.lambda_handler",
            "Database sizes, replication and load before maintenance",
            timeout_seconds=180,
            database=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbAnalyze",
            f"{_H}.db_analyze.lambda_handler",
            "ANALYZE VERBOSE, summarized",
            timeout_seconds=480,
            database=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbReportUnusedIndexes",
            f"{_H}.db_report_unused_indexes.lambda_handler",
            "Report indexes never scanned",
            timeout_seconds=120,
            database=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbVacuumTables",
            f"{_H}.db_vacuum_tables.lambda_handler",
            "VACUUM ANALYZE the configured tables",
            timeout_seconds=720,
            database=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbReindex",
            f"{_H}.db_reindex.lambda_handler",
            "Clean REINDEX leftovers; REINDEX CONCURRENTLY configured and bloated indexes",
            timeout_seconds=480,
            database=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbCleanupConnections",
            f"{_H}.db_cleanup_connections.lambda_handler",
            "Report idle sessions; terminate those idle over the limit",
            timeout_seconds=300,
            database=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbPostChecks",
            f"{_H}.db_post_checks.lambda_handler",
            "version(), pg_is_in_recovery() and application health after maintenance",
            timeout_seconds=180,
            database=True,
            http_probes=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbPublishReport",
            f"{_H}.db_publish_report.lambda_handler",
            "Store the maintenance report and publish it on SNS",
            timeout_seconds=120,
            aws=("s3:write-reports", "sns:publish"),
        ),
        # Database diagnostics for P2 and P3
        Step(
            "DbFindLongQueries",
            f"{_H}.db_find_long_queries.lambda_handler",
            "Queries running over the limit; terminate by policy when asked",
            timeout_seconds=60,
            database=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbFindBlockingLocks",
            f"{_H}.db_find_blocking_locks.lambda_handler",
            "Waiting and blocking sessions with their queries",
            timeout_seconds=60,
            database=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbTopStatements",
            f"{_H}.db_top_statements.lambda_handler",
            "Slowest statements by mean time from pg_stat_statements",
            timeout_seconds=60,
            database=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbCacheHitRatio",
            f"{_H}.db_cache_hit_ratio.lambda_handler",
            "Buffer cache hit ratio per database",
            timeout_seconds=60,
            database=True,
            aws=("secrets:read",),
        ),
        Step(
            "DbConnectionUsage",
            f"{_H}.db_connection_usage.lambda_handler",
            "Connections against max_connections",
            timeout_seconds=60,
            database=True,
            aws=("secrets:read",),
        ),
    )
}

RUNBOOKS: dict[str, Runbook] = {
    runbook.name: runbook
    for runbook in (
        Runbook(
            name="p1-service-down",
            asl_file="p1_service_down.asl.json",
            description="P1: Service Completely Down",
            steps=(
                "NormalizeInput",
                "AcquireTargetLock",
                "CheckHealthEndpoints",
                "CheckTargetHealth",
                "CheckPods",
                "CheckRolloutHistory",
                "CheckResourceUsage",
                "CheckDependencies",
                "DecideAction",
                "RestartDeployment",
                "ScaleDeployment",
                "RollbackDeployment",
                "CheckRollout",
                "VerifyRecovery",
                "PublishIncidentUpdate",
                "Escalate",
                "ReleaseTargetLock",
            ),
            timeout_minutes=60,
            triggers=("alarm", "manual"),
        ),
        Runbook(
            name="db-maintenance",
            asl_file="db_maintenance.asl.json",
            description="Weekly Database Maintenance (Sunday 02:00 UTC, 45 minutes)",
            steps=(
                "DbStartMaintenance",
                "DbCheckBackup",
                "DbCheckDatabase",
                "DbAnalyze",
                "DbReportUnusedIndexes",
                "DbVacuumTables",
                "DbReindex",
                "DbCleanupConnections",
                "DbPostChecks",
                "DbPublishReport",
            ),
            timeout_minutes=50,
            triggers=("schedule:db_maintenance", "manual"),
        ),
    )
}


def runbook(name: str) -> Runbook:
    try:
        return RUNBOOKS[name]
    except KeyError:
        raise KeyError(f"unknown runbook {name!r}; known: {', '.join(sorted(RUNBOOKS))}") from None
