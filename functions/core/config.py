"""The one typed configuration, read by the CDK app at synth, by every step at cold start, and by the sandbox.

A service configured once works in both places. Names that reach Kubernetes, SQL or a shell are checked
against strict patterns here, so a hostile name is refused before any step runs.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from functions.core.errors import ConfigurationError, UnknownService

# RFC 1123 label: what Kubernetes accepts for namespaces, deployments, label values we write.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# RFC 1123 subdomain (deployment and service names may contain dots).
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
# PostgreSQL identifiers we accept from config: plain, no quoting needed, no metacharacters.
SQL_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
ALARM_NAME = r"^[A-Za-z0-9 _.:/()#+=@,-]{1,255}$"

DnsLabel = Annotated[str, Field(pattern=DNS_LABEL)]
DnsName = Annotated[str, Field(pattern=DNS_SUBDOMAIN)]
SqlIdentifier = Annotated[str, Field(pattern=SQL_IDENTIFIER)]


def is_dns_label(value: str) -> bool:
    return bool(re.fullmatch(DNS_LABEL, value))


def is_dns_name(value: str) -> bool:
    return bool(re.fullmatch(DNS_SUBDOMAIN, value))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DependencyProbe(_Strict):
    """A dependency checked by the investigation: ``postgres`` (the configured database), a Redis PING,
    a TCP connect (RabbitMQ's AMQP port) or an HTTP GET that must answer 2xx."""

    name: DnsLabel
    kind: Literal["postgres", "redis", "tcp", "http"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    url: str | None = None
    database: DnsLabel | None = None  # for kind=postgres: a key of `databases`
    critical: bool = True  # a critical dependency down means: do not touch the deployment, escalate

    @model_validator(mode="after")
    def _fields_for_kind(self) -> DependencyProbe:
        if self.kind == "http" and not self.url:
            raise ValueError(f"dependency {self.name}: kind http needs url")
        if self.kind in ("redis", "tcp") and not (self.host and self.port):
            raise ValueError(f"dependency {self.name}: kind {self.kind} needs host and port")
        if self.kind == "postgres" and not self.database:
            raise ValueError(f"dependency {self.name}: kind postgres needs database")
        return self


class Database(_Strict):
    """A PostgreSQL database. Credentials live in Secrets Manager (RDS's secret JSON shape), never here."""

    host: str
    port: int = Field(default=5432, ge=1, le=65535)
    dbname: SqlIdentifier
    secret_arn: str | None = None  # JSON with username/password (and optionally host/port/dbname)
    rds_instance_id: DnsLabel | None = None
    connect_timeout_seconds: int = Field(default=5, ge=1, le=60)
    expected_replicas: list[str] = Field(default_factory=list)  # application_name / client address


class HealthUrls(_Strict):
    primary: str
    backup: str | None = None


class Service(_Strict):
    """A service the runbooks may act on."""

    namespace: DnsLabel
    cluster: DnsLabel
    deployment: DnsName | None = None  # defaults to the service name
    selector: dict[str, str] = Field(default_factory=dict)  # defaults to {"app": <name>}
    health: HealthUrls
    target_group_arn: str | None = None
    load_balancer_arn: str | None = None  # with target_group_arn: the ALB metrics the SLA alarms watch
    alarms: list[Annotated[str, Field(pattern=ALARM_NAME)]] = Field(default_factory=list)
    max_replicas: int = Field(default=10, ge=1, le=1000)
    target_cpu_utilization: float = Field(default=0.7, gt=0, le=1)  # scale-up aims at this per-pod use
    recent_change_minutes: int = Field(default=60, ge=1)  # a revision younger than this is a suspect
    dependencies: list[DependencyProbe] = Field(default_factory=list)
    user_impact: str = "Users cannot reach the service."

    @field_validator("selector")
    @classmethod
    def _selector_is_safe(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if not re.fullmatch(r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$", key):
                raise ValueError(f"selector key {key!r} is not a Kubernetes label key")
            if not re.fullmatch(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$", val):
                raise ValueError(f"selector value {val!r} is not a Kubernetes label value")
        return value


class Escalation(_Strict):
    """The escalation matrix, minutes from the incident's start, per issue type."""

    service_down: dict[str, int] = Field(
        default_factory=lambda: {"L1": 15, "L2": 30, "L3": 45, "management": 60}
    )
    performance: dict[str, int] = Field(
        default_factory=lambda: {"L1": 30, "L2": 60, "L3": 120, "management": 240}
    )
    security: dict[str, int] = Field(default_factory=lambda: {"L1": 0, "L2": 15, "L3": 30, "management": 45})
    data: dict[str, int] = Field(default_factory=lambda: {"L1": 60, "L2": 120, "L3": 240, "management": 480})
    # subscriptions per level: "email:someone@example.test" or "https://hooks.example.test/x"
    contacts: dict[Literal["L1", "L2", "L3", "management"], list[str]] = Field(default_factory=dict)
    incident_commander: str = "SRE On-Call"
    update_interval_minutes: int = Field(default=15, ge=1)

    @field_validator("contacts")
    @classmethod
    def _contacts_are_endpoints(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for level, endpoints in value.items():
            for endpoint in endpoints:
                if not (re.fullmatch(r"email:[^@\s]+@[^@\s]+", endpoint) or endpoint.startswith("https://")):
                    raise ValueError(f"contact {endpoint!r} of {level}: use email:ADDRESS or an https:// URL")
        return value


class Maintenance(_Strict):
    """Weekly database maintenance settings (the runbook book's 'Database Maintenance Runbook')."""

    database: DnsLabel | None = None  # a key of `databases`
    tables: list[str] = Field(default_factory=lambda: ["sales", "transactions", "customers", "products"])
    reindex: list[str] = Field(default_factory=list)  # schema-qualified index names
    window_minutes: int = Field(default=45, ge=1)
    backup_max_age_hours: int = Field(default=26, ge=1)
    max_active_connections: int = Field(default=50, ge=1)
    max_long_queries: int = Field(default=0, ge=0)
    long_query_seconds: int = Field(default=300, ge=1)
    idle_report_minutes: int = Field(default=60, ge=1)
    idle_terminate_minutes: int = Field(default=120, ge=1)
    exclude_roles: list[str] = Field(default_factory=list)
    exclude_applications: list[str] = Field(default_factory=list)
    lock_timeout_seconds: int = Field(default=10, ge=1)
    replication_lag_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    replication_lag_seconds: int = Field(default=300, ge=0)

    @field_validator("tables", "reindex")
    @classmethod
    def _qualified_names(cls, value: list[str]) -> list[str]:
        for name in value:
            parts = name.split(".")
            if len(parts) > 2 or not all(re.fullmatch(SQL_IDENTIFIER, part) for part in parts):
                raise ValueError(f"{name!r} is not a plain [schema.]name identifier")
        return value


# EventBridge cron: minutes hours day-of-month month day-of-week year; exactly one day field is "?".
_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")


class Schedules(_Strict):
    """EventBridge schedule expressions (UTC)."""

    db_maintenance: str = "cron(0 2 ? * SUN *)"
    daily_health_check: str = "cron(0 9 * * ? *)"

    @field_validator("db_maintenance", "daily_health_check")
    @classmethod
    def _eventbridge_cron(cls, value: str) -> str:
        match = _CRON.fullmatch(value)
        if not match:
            raise ValueError(f"{value!r} is not cron(min hour day-of-month month day-of-week year)")
        if (match.group(3) == "?") == (match.group(5) == "?"):
            raise ValueError(f"{value!r}: exactly one of day-of-month and day-of-week must be '?'")
        return value


class Sla(_Strict):
    """The runbook book's SLA targets; the CDK app makes one alarm of each per service with an ALB."""

    availability_percent: float = Field(default=99.9, gt=0, lt=100)  # below it: P1 service down
    latency_p95_objective_ms: int = Field(default=500, ge=1)  # above it: notify L1
    latency_p95_p3_ms: int = Field(default=1000, ge=1)  # above it: P3 high latency
    error_rate_percent: float = Field(default=5.0, gt=0, lt=100)  # above it: P2 high error rate
    period_minutes: int = Field(default=5, ge=1)
    evaluation_periods: int = Field(default=2, ge=1)


class Settings(_Strict):
    """The whole configuration."""

    environment: DnsLabel = "production"
    allowed_namespaces: list[DnsLabel] = Field(default_factory=lambda: ["production"])
    services: dict[DnsName, Service]
    databases: dict[DnsLabel, Database] = Field(default_factory=dict)
    escalation: Escalation = Field(default_factory=Escalation)
    maintenance: Maintenance = Field(default_factory=Maintenance)
    schedules: Schedules = Field(default_factory=Schedules)
    sla: Sla = Field(default_factory=Sla)

    @model_validator(mode="after")
    def _references_resolve(self) -> Settings:
        seen: dict[str, str] = {}
        for name, service in self.services.items():
            if service.namespace not in self.allowed_namespaces:
                raise ValueError(
                    f"services.{name}.namespace: {service.namespace!r} is not in allowed_namespaces"
                )
            for dep in service.dependencies:
                if dep.kind == "postgres" and dep.database not in self.databases:
                    raise ValueError(
                        f"services.{name}.dependencies.{dep.name}.database: "
                        f"{dep.database!r} is not a key of databases"
                    )
            for alarm in service.alarms:
                if alarm in seen:
                    raise ValueError(f"services.{name}.alarms: {alarm!r} already belongs to {seen[alarm]}")
                seen[alarm] = name
        if self.maintenance.database and self.maintenance.database not in self.databases:
            raise ValueError(f"maintenance.database: {self.maintenance.database!r} is not a key of databases")
        return self

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise UnknownService(f"service {name!r} is not configured") from None

    def sla_alarm_names(self, name: str) -> dict[str, str]:
        """The SLA alarms the CDK app creates for service ``name``, by kind."""
        kinds = ("availability", "latency-objective", "latency", "error-rate")
        return {kind: f"{self.environment}-{name}-sla-{kind}" for kind in kinds}

    def service_for_alarm(self, alarm_name: str) -> str:
        for name, service in self.services.items():
            if alarm_name in service.alarms or alarm_name in self.sla_alarm_names(name).values():
                return name
        raise UnknownService(f"alarm {alarm_name!r} is not mapped to any configured service")

    def deployment_name(self, name: str) -> str:
        return self.service(name).deployment or name

    def selector(self, name: str) -> dict[str, str]:
        return self.service(name).selector or {"app": name}


def format_validation_error(error: ValidationError) -> str:
    """One line per bad field, the field named by its dotted path."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(root)"
        lines.append(f"{path}: {item['msg']}")
    return "; ".join(lines)


def parse_settings(data: dict[str, Any]) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigurationError(f"invalid configuration: {format_validation_error(error)}") from None


def load_settings_file(path: str | Path) -> Settings:
    """Read JSON or YAML (YAML needs PyYAML, present in the CDK app and the sandbox, not in Lambda)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: the configuration must be a mapping")
    return parse_settings(data)


CONFIG_ENV = "AUTOPILOT_CONFIG_FILE"
DEFAULT_CONFIG_NAME = "autopilot_config.json"  # written into the function asset by the CDK app


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The configuration of this process, read once (cold start)."""
    path = os.environ.get(CONFIG_ENV) or str(Path(__file__).resolve().parents[2] / DEFAULT_CONFIG_NAME)
    if not Path(path).exists():
        raise ConfigurationError(f"configuration file {path} not found (set {CONFIG_ENV})")
    return load_settings_file(path)
