"""The deployment's own values (account-specific ids), read from CDK context (cdk.json or ``-c key=value``).

Everything about services, contacts and schedules lives in the typed configuration file instead; this holds
only what differs per AWS account: where the functions run and how the app finds the configuration.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from constructs import Node

from functions.core.errors import ConfigurationError
from infra.names import DEFAULT_STACK_NAME

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = "config/autopilot.example.yaml"


@dataclass(frozen=True)
class VpcPlacement:
    """The VPC and private subnets for functions that reach RDS or a private EKS endpoint."""

    vpc_id: str
    availability_zones: tuple[str, ...]
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeployContext:
    config_path: Path
    stack_name: str = DEFAULT_STACK_NAME
    vpc: VpcPlacement | None = None
    eks_endpoint_private: bool = True  # Kubernetes steps go into the VPC (when one is given)
    health_urls_private: bool = False  # HTTP-probing steps go into the VPC (when one is given)
    log_retention_days: int = 30

    @classmethod
    def from_node(cls, node: Node) -> DeployContext:
        def get(key: str) -> Any:
            return node.try_get_context(key)

        config = get("config") or DEFAULT_CONFIG
        path = Path(config)
        if not path.is_absolute():
            path = ROOT / path
        if not path.exists():
            raise ConfigurationError(f"context config: {config} does not exist (cdk synth -c config=PATH)")
        stack_name = str(get("stackName") or DEFAULT_STACK_NAME)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,100}", stack_name):
            raise ConfigurationError(f"context stackName: {stack_name!r} is not a CloudFormation stack name")
        return cls(
            config_path=path,
            stack_name=stack_name,
            vpc=_vpc(get),
            eks_endpoint_private=_flag(get("eksEndpointPrivate"), "eksEndpointPrivate", default=True),
            health_urls_private=_flag(get("healthUrlsPrivate"), "healthUrlsPrivate", default=False),
            log_retention_days=_int(get("logRetentionDays"), "logRetentionDays", default=30),
        )


def _list(value: Any, key: str) -> tuple[str, ...]:
    """Lists come from cdk.json as JSON arrays and from ``-c`` as JSON text or comma-separated text."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else [part.strip() for part in text.split(",")]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigurationError(f"context {key}: expected a list of ids, got {value!r}")
    return tuple(value)


def _flag(value: Any, key: str, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise ConfigurationError(f"context {key}: expected true or false, got {value!r}")


def _int(value: Any, key: str, *, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"context {key}: expected a whole number, got {value!r}") from None


def _vpc(get: Any) -> VpcPlacement | None:
    vpc_id = get("vpcId")
    if not vpc_id:
        return None
    if not re.fullmatch(r"vpc-[0-9a-f]{8,17}", str(vpc_id)):
        raise ConfigurationError(f"context vpcId: {vpc_id!r} is not a VPC id (vpc-...)")
    zones = _list(get("vpcAvailabilityZones"), "vpcAvailabilityZones")
    subnets = _list(get("vpcPrivateSubnetIds"), "vpcPrivateSubnetIds")
    groups = _list(get("vpcSecurityGroupIds"), "vpcSecurityGroupIds")
    if not subnets:
        raise ConfigurationError("context vpcPrivateSubnetIds: required with vpcId (the functions' subnets)")
    if len(zones) != len(subnets):
        raise ConfigurationError(
            "context vpcAvailabilityZones: give one zone per subnet in vpcPrivateSubnetIds, in the same order"
        )
    for subnet in subnets:
        if not re.fullmatch(r"subnet-[0-9a-f]{8,17}", subnet):
            raise ConfigurationError(f"context vpcPrivateSubnetIds: {subnet!r} is not a subnet id")
    for group in groups:
        if not re.fullmatch(r"sg-[0-9a-f]{8,17}", group):
            raise ConfigurationError(f"context vpcSecurityGroupIds: {group!r} is not a security group id")
    return VpcPlacement(str(vpc_id), zones, subnets, groups)
