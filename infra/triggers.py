"""What starts a runbook: alarm state changes (EventBridge rules) and schedules (EventBridge Scheduler, UTC)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import TimeZone
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"


def alarm_pattern(alarm_names: Sequence[str]) -> dict[str, Any]:
    """The event pattern, as CloudFormation writes it, of a rule for these alarms entering ALARM."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": [ALARM_DETAIL_TYPE],
        "detail": {"alarmName": list(alarm_names), "state": {"value": ["ALARM"]}},
    }


def schedule_input(schedule: str, runbook: str) -> dict[str, object]:
    """What a scheduled run starts with: the shape of EventBridge's "Scheduled Event", which the first steps
    accept, filled by the scheduler with the time the run was due, the schedule's ARN and the attempt's id."""
    return {
        "version": "0",
        "id": "<aws.scheduler.execution-id>",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "<aws.scheduler.scheduled-time>",
        "resources": ["<aws.scheduler.schedule-arn>"],
        "detail": {"schedule": schedule, "runbook": runbook},
    }


class AlarmTrigger(Construct):
    """Starts ``state_machine`` with the whole alarm event when one of ``alarm_names`` goes to ALARM.

    Metric and composite alarms send the same detail-type, so one rule covers both.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        alarm_names: Sequence[str],
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        pattern = alarm_pattern(alarm_names)
        self.rule = events.Rule(
            self,
            "Rule",
            description=description[:512],
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
            ),
        )
        # No input given: the target receives the event itself, which the first step normalizes.
        self.rule.add_target(targets.SfnStateMachine(state_machine))


class ScheduledStart(Construct):
    """Starts ``state_machine`` on an EventBridge Scheduler cron expression evaluated in UTC."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        expression: str,
        schedule: str,
        runbook: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description=f"{schedule}: start {runbook} ({expression} UTC)",
            schedule=scheduler.ScheduleExpression.expression(expression, TimeZone.ETC_UTC),
            target=scheduler_targets.StepFunctionsStartExecution(
                state_machine,
                input=scheduler.ScheduleTargetInput.from_object(schedule_input(schedule, runbook)),
            ),
        )
