"""The runbook book's SLA targets as CloudWatch alarms per service, from its Application Load Balancer metrics.

Each alarm is routed to the runbook that handles it (an EventBridge rule starts the runbook: see the stack)
or, while that runbook is not deployed, to an escalation topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from functions.core.config import Settings
from functions.core.errors import ConfigurationError


@dataclass(frozen=True)
class Route:
    runbook: str | None  # the runbook an alarm of this kind starts, once it is deployed
    topic: str  # the escalation level notified when that runbook is not deployed


# kind (see Settings.sla_alarm_names) -> route
SLA_ROUTES: dict[str, Route] = {
    "availability": Route("p1-service-down", "L1"),
    "error-rate": Route("p2-high-error-rate", "L2"),
    "latency": Route("p3-high-latency", "L2"),
    "latency-objective": Route(None, "L1"),  # the objective itself: a heads-up, not an incident
}

_LB = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:loadbalancer/(app/[^/]+/[0-9a-f]+)$"
)
_TG = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:(targetgroup/[^/]+/[0-9a-f]+)$")


def alb_dimensions(settings: Settings, name: str) -> dict[str, str] | None:
    """The ALB metric dimensions of service ``name``, or None when it has no load balancer configured."""
    service = settings.service(name)
    if not (service.load_balancer_arn and service.target_group_arn):
        return None
    lb = _LB.match(service.load_balancer_arn)
    if not lb:
        raise ConfigurationError(
            f"services.{name}.load_balancer_arn: {service.load_balancer_arn!r} is not an Application "
            "Load Balancer ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID)"
        )
    tg = _TG.match(service.target_group_arn)
    if not tg:
        raise ConfigurationError(
            f"services.{name}.target_group_arn: {service.target_group_arn!r} is not a target group ARN "
            "(arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)"
        )
    return {"LoadBalancer": lb.group(1), "TargetGroup": tg.group(1)}


class ServiceSlaAlarms(Construct):
    """Availability, p95 latency (objective and P3 trigger) and error rate alarms of one service."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        service: str,
        dimensions: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        sla = settings.sla
        names = settings.sla_alarm_names(service)
        period = cdk.Duration.minutes(sla.period_minutes)

        def alb(metric_name: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ApplicationELB",
                metric_name=metric_name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=period,
            )

        requests = alb("RequestCount")
        target_5xx = alb("HTTPCode_Target_5XX_Count")
        # The load balancer's own 5xx are published per load balancer only, so per service a down service
        # shows as no healthy target (the balancer then answers 503 without a target 5xx).
        healthy = alb("HealthyHostCount", "Minimum")

        def alarm(kind: str, description: str, **props: object) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(
                self,
                kind.title().replace("-", ""),
                alarm_name=names[kind],
                alarm_description=f"{service}: {description}",
                evaluation_periods=sla.evaluation_periods,
                **props,
            )

        self.alarms: dict[str, cloudwatch.Alarm] = {
            "availability": alarm(
                "availability",
                f"availability below {sla.availability_percent} % (P1 service down)",
                metric=cloudwatch.MathExpression(
                    expression="IF(FILL(healthy, 0) < 1, 0, 100 * (1 - FILL(t5xx, 0) / requests))",
                    using_metrics={"requests": requests, "t5xx": target_5xx, "healthy": healthy},
                    period=period,
                    label="availability %",
                ),
                threshold=sla.availability_percent,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            "error-rate": alarm(
                "error-rate",
                f"5xx error rate above {sla.error_rate_percent} % (P2 high error rate)",
                metric=cloudwatch.MathExpression(
                    expression="100 * FILL(t5xx, 0) / requests",
                    using_metrics={"requests": requests, "t5xx": target_5xx},
                    period=period,
                    label="error rate %",
                ),
                threshold=sla.error_rate_percent,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            "latency": alarm(
                "latency",
                f"p95 latency above {sla.latency_p95_p3_ms} ms (P3 high latency)",
                metric=alb("TargetResponseTime", "p95"),
                threshold=sla.latency_p95_p3_ms / 1000,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            "latency-objective": alarm(
                "latency-objective",
                f"p95 latency above the {sla.latency_p95_objective_ms} ms objective",
                metric=alb("TargetResponseTime", "p95"),
                threshold=sla.latency_p95_objective_ms / 1000,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        }
