"""Incident communication: the runbook book's "INCIDENT UPDATE" template and the escalation page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from functions.core.clock import parse_iso
from functions.core.envelope import Envelope

UpdateStatus = Literal["INVESTIGATING", "IDENTIFIED", "MONITORING", "RESOLVED"]
TITLES = {"P1": "P1 Service Outage", "P2": "P2 High Error Rate", "P3": "P3 High Response Time"}
SUBJECT_LIMIT = 100  # SNS subject: at most 100 printable ASCII characters, no line breaks


def _hhmm(iso: str) -> str:
    return parse_iso(iso).strftime("%H:%M UTC")


def subject_line(text: str) -> str:
    clean = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in text).strip()
    return clean[:SUBJECT_LIMIT]


def channel(envelope: Envelope) -> str:
    assert envelope.incident is not None
    return f"#incident-{envelope.incident.id.lower()}"


def incident_update(
    envelope: Envelope,
    *,
    status: UpdateStatus,
    lines: list[str],
    now_iso: str,
    deadline_minutes: int,
    update_interval_minutes: int,
    user_impact: str,
    commander: str,
    next_update: str | None = None,
) -> tuple[str, str]:
    """Subject and body of one update, in the runbook book's template. ``next_update`` replaces the planned
    next update when this run will send none (it ended, or it handed the incident over)."""
    incident = envelope.incident
    target = envelope.target
    assert incident is not None and target is not None
    title = TITLES.get(incident.severity, f"{incident.severity} Incident")
    started = parse_iso(incident.started_at)
    due = started + timedelta(minutes=deadline_minutes)
    now = parse_iso(now_iso)
    if status == "RESOLVED":
        eta = f"resolved at {_hhmm(now_iso)} ({(now - started).total_seconds() / 60:.0f} min after the start)"
        next_update = "none planned (incident resolved)"
    else:
        eta = f"by {due.strftime('%H:%M UTC')} (runbook time limit {deadline_minutes} min)"
        next_update = next_update or (
            f"{(now + timedelta(minutes=update_interval_minutes)).strftime('%H:%M UTC')} or at the next phase change"
        )
    dry = " [DRY RUN]" if envelope.options.dry_run else ""
    body = "\n".join(
        [
            f"INCIDENT UPDATE - {title}{dry}",
            "",
            f"Status: {status}",
            f"Start Time: {incident.started_at}",
            f"Services Affected: {target.service} (namespace {target.namespace}, cluster {target.cluster}, "
            f"environment {target.environment})",
            f"User Impact: {user_impact if status != 'RESOLVED' else f'none now (was: {user_impact})'}",
            "",
            "Current Status:",
            *[f"- {line}" for line in lines],
            f"- ETA for resolution: {eta}",
            "",
            f"Next Update: {next_update}",
            "",
            f"Incident Commander: {commander} (automated by Runbook Autopilot, run {incident.id})",
            f"Communication Channel: {channel(envelope)}",
        ]
    )
    subject = subject_line(f"[{status}]{dry} {title}: {target.service} ({incident.id})")
    return subject, body


def escalation_page(
    envelope: Envelope, *, level: str, reason: str, findings: list[str], tried: list[str], now_iso: str
) -> tuple[str, str]:
    """The page sent to the next level when the runbook cannot resolve the incident."""
    incident = envelope.incident
    target = envelope.target
    assert incident is not None and target is not None
    minutes = (parse_iso(now_iso) - parse_iso(incident.started_at)).total_seconds() / 60
    dry = " [DRY RUN]" if envelope.options.dry_run else ""
    body = "\n".join(
        [
            f"ESCALATION to {level}{dry} - {TITLES.get(incident.severity, incident.severity)}",
            "",
            f"Service: {target.service} (namespace {target.namespace}, cluster {target.cluster}, "
            f"environment {target.environment})",
            f"Incident: {incident.id}, open {minutes:.0f} min (since {incident.started_at})",
            f"Why escalated: {reason}",
            f"Trigger: {envelope.trigger.kind} {envelope.trigger.source}",
            "",
            "Findings:",
            *[f"- {line}" for line in findings],
            "",
            "Options tried: "
            + (", ".join(tried) if tried else "none (the runbook left the service unchanged)"),
            f"Communication Channel: {channel(envelope)}",
        ]
    )
    subject = subject_line(f"[ESCALATION {level}]{dry} {target.service}: {reason}")
    return subject, body


def finding_lines(findings: dict[str, Any]) -> list[str]:
    """One line per investigation finding, in the runbook's order."""
    order = ["health", "targets", "pods", "history", "resources", "dependencies"]
    labels = {
        "health": "Health endpoints",
        "targets": "Load balancer",
        "pods": "Pods",
        "history": "Rollout history",
        "resources": "Resource usage",
        "dependencies": "Dependencies",
    }
    lines = []
    for key in order:
        item = findings.get(key)
        if isinstance(item, dict) and "summary" in item:
            lines.append(f"{labels[key]} [{item.get('status')}]: {item['summary']}")
    return lines
