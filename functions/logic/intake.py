"""Turn whatever started a run into the envelope: a CloudWatch alarm event (metric or composite, exactly as
EventBridge delivers it) or a person's request. Pure: the configuration and the clock are passed in.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from functions.core.clock import parse_iso, to_iso
from functions.core.config import Settings, is_dns_label, is_dns_name
from functions.core.envelope import Envelope, Incident, Options, Target, Trigger
from functions.core.errors import InvalidInput

ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
ALARM_STATES = {"OK", "ALARM", "INSUFFICIENT_DATA"}
MANUAL_KEYS = {"service", "namespace", "cluster", "environment", "dry_run", "requested_by", "reason"}
_REQUESTER = re.compile(r"^[A-Za-z0-9@._+ -]{1,64}$")


def normalize(event: Any, settings: Settings, *, runbook: str, severity: str, now_iso: str) -> Envelope:
    """Build the envelope for ``runbook``; raise ``InvalidInput``/``UnknownService`` for anything else."""
    if not isinstance(event, dict):
        raise InvalidInput(f"the input must be a JSON object, not {type(event).__name__}")
    options = _options(event)
    if event.get("detail-type") == ALARM_DETAIL_TYPE or event.get("source") == "aws.cloudwatch":
        return _from_alarm(event, settings, runbook=runbook, severity=severity, options=options)
    if "service" in event:
        return _from_request(event, settings, runbook=runbook, severity=severity, now_iso=now_iso)
    raise InvalidInput(
        "the input is neither a CloudWatch Alarm State Change event nor a request naming a service "
        f"(keys: {', '.join(sorted(map(str, event))[:10]) or 'none'})"
    )


def _options(event: dict[str, Any]) -> Options:
    # An alarm event cannot carry options; a person replaying one (CLI --dry-run) adds "autopilot".
    extra = event.get("autopilot", {})
    if not isinstance(extra, dict) or not set(extra) <= {"dry_run"}:
        raise InvalidInput("'autopilot' may only hold {'dry_run': true|false}")
    dry_run = extra.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput("'autopilot.dry_run' must be true or false")
    return Options(dry_run=dry_run)


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise InvalidInput(f"malformed alarm event: {where}.{key} is missing")
    return mapping[key]


def _alarm_timestamp(text: str) -> str:
    # CloudWatch writes "2026-12-03T16:04:40.989+0000"; Python wants "+00:00".
    fixed = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    try:
        return to_iso(parse_iso(fixed))
    except ValueError:
        raise InvalidInput(f"malformed alarm event: timestamp {text!r} is not ISO 8601") from None


def _from_alarm(
    event: dict[str, Any], settings: Settings, *, runbook: str, severity: str, options: Options
) -> Envelope:
    if event.get("source") != "aws.cloudwatch" or event.get("detail-type") != ALARM_DETAIL_TYPE:
        raise InvalidInput(
            "malformed alarm event: source must be aws.cloudwatch with a state-change detail-type"
        )
    detail = _require(event, "detail", "event")
    alarm_name = _require(detail, "alarmName", "detail")
    state = _require(detail, "state", "detail")
    value = _require(state, "value", "detail.state")
    if not isinstance(alarm_name, str) or not alarm_name or len(alarm_name) > 255:
        raise InvalidInput("malformed alarm event: detail.alarmName must be a non-empty string")
    if value not in ALARM_STATES:
        raise InvalidInput(f"malformed alarm event: unknown alarm state {value!r}")
    previous = (
        detail.get("previousState", {}).get("value")
        if isinstance(detail.get("previousState"), dict)
        else None
    )
    started_at = _alarm_timestamp(str(_require(state, "timestamp", "detail.state")))
    composite = (
        "alarmRule" in detail.get("configuration", {})
        if isinstance(detail.get("configuration"), dict)
        else False
    )
    reason = str(state.get("reason", ""))[:500]
    trigger = Trigger(
        kind="alarm",
        source=alarm_name,
        alarm_state=value,
        previous_state=previous,
        reason=reason,
        event_id=str(event.get("id", "")) or None,
    )
    kind = "composite alarm" if composite else "alarm"
    ignore = None
    if value != "ALARM":
        ignore = f"{kind} {alarm_name} went to {value}: only ALARM starts {runbook}"
    elif previous == "ALARM":
        ignore = f"{kind} {alarm_name} is still in ALARM (a re-notification): the run it started handles it"
    if ignore:
        return Envelope(action="ignore", reason=ignore, runbook=runbook, trigger=trigger, options=options)
    service = settings.service_for_alarm(alarm_name)
    target = _target(settings, service)
    return Envelope(
        action="run",
        reason=f"{kind} {alarm_name} went from {previous or 'unknown'} to ALARM",
        runbook=runbook,
        target=target,
        trigger=trigger,
        incident=Incident(
            id=_incident_id(severity, service, started_at), severity=severity, started_at=started_at
        ),
        options=options,
    )


def _from_request(
    event: dict[str, Any], settings: Settings, *, runbook: str, severity: str, now_iso: str
) -> Envelope:
    unknown = set(event) - MANUAL_KEYS - {"autopilot"}
    if unknown:
        raise InvalidInput(f"unknown request fields: {', '.join(sorted(unknown))}")
    service = event["service"]
    if not isinstance(service, str) or not is_dns_name(service):
        raise InvalidInput(
            f"service {service!r} is not a valid name (lowercase letters, digits, '-' and '.')"
        )
    target = _target(settings, service)
    for key in ("namespace", "cluster"):
        given = event.get(key)
        if given is None:
            continue
        if not isinstance(given, str) or not is_dns_label(given):
            raise InvalidInput(f"{key} {given!r} is not a valid name")
        if given != getattr(target, key):
            raise InvalidInput(
                f"{key} {given!r} does not match the configuration of {service} ({getattr(target, key)!r})"
            )
    environment = event.get("environment")
    if environment is not None and environment != settings.environment:
        raise InvalidInput(f"environment {environment!r} is not this deployment's ({settings.environment!r})")
    dry_run = event.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput("dry_run must be true or false")
    requester = event.get("requested_by", "console")
    if not isinstance(requester, str) or not _REQUESTER.fullmatch(requester):
        raise InvalidInput("requested_by must be a short plain name")
    options = _options(event)
    reason = event.get("reason", f"started by {requester}")
    if not isinstance(reason, str):
        raise InvalidInput("reason must be text")
    return Envelope(
        action="run",
        reason=reason[:300],
        runbook=runbook,
        target=target,
        trigger=Trigger(kind="manual", source=requester),
        incident=Incident(id=_incident_id(severity, service, now_iso), severity=severity, started_at=now_iso),
        options=Options(dry_run=dry_run or options.dry_run),
    )


def _target(settings: Settings, service: str) -> Target:
    config = settings.service(service)
    return Target(
        service=service,
        namespace=config.namespace,
        cluster=config.cluster,
        deployment=settings.deployment_name(service),
        environment=settings.environment,
    )


def _incident_id(severity: str, service: str, started_at: str) -> str:
    """Stable for the same alarm transition, so a redelivered event names the same incident."""
    digest = hashlib.sha256(json.dumps([severity, service, started_at]).encode()).hexdigest()[:6]
    stamp = started_at.replace("-", "").replace(":", "").replace("T", "-").rstrip("Z")
    return f"{severity}-{stamp}-{digest}"
