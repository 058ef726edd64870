"""The incident update follows the runbook book's communication template; pages stay within SNS's limits."""

from __future__ import annotations

import pytest

from functions.core.errors import InvalidInput
from functions.logic import p1_steps
from functions.logic.incident import escalation_page, incident_update
from tests.fixtures.envelopes import p1_envelope


def envelope(dry_run=False, service="sales-service"):
    return p1_envelope(dry_run=dry_run, service=service)


def update(status, **kw):
    return incident_update(
        envelope(**kw),
        status=status,
        lines=["Pods: 0/3 ready"],
        now_iso="2026-12-03T09:43:00Z",
        deadline_minutes=15,
        update_interval_minutes=15,
        user_impact="Orders fail.",
        commander="SRE On-Call",
    )


def test_an_update_has_every_field_of_the_template():
    subject, body = update("INVESTIGATING")

    assert subject == "[INVESTIGATING] P1 Service Outage: sales-service (P1-20261203-094107-abc123)"
    lines = body.splitlines()
    assert lines[0] == "INCIDENT UPDATE - P1 Service Outage"
    for field in (
        "Status: INVESTIGATING",
        "Start Time: 2026-12-03T09:41:07Z",
        "User Impact: Orders fail.",
        "- Pods: 0/3 ready",
        "- ETA for resolution: by 09:56 UTC (runbook time limit 15 min)",
        "Next Update: 09:58 UTC or at the next phase change",
        "Communication Channel: #incident-p1-20261203-094107-abc123",
    ):
        assert field in lines
    assert any(line.startswith("Services Affected: sales-service") for line in lines)
    assert any(line.startswith("Incident Commander: SRE On-Call") for line in lines)


def test_a_resolved_update_says_when_and_plans_no_next_update():
    _, body = update("RESOLVED")

    assert "- ETA for resolution: resolved at 09:43 UTC (2 min after the start)" in body
    assert "Next Update: none planned (incident resolved)" in body


def test_dry_run_is_marked():
    subject, body = update("IDENTIFIED", dry_run=True)

    assert subject.startswith("[IDENTIFIED] [DRY RUN]")
    assert body.startswith("INCIDENT UPDATE - P1 Service Outage [DRY RUN]")


def test_an_escalation_subject_fits_sns_and_has_no_line_breaks():
    reason = "every runbook option failed (C ROLLBACK, A RESTART)\n" + "x" * 300

    subject, body = escalation_page(
        envelope(service="a" * 60),
        level="L2",
        reason=reason,
        findings=["f"],
        tried=["ROLLBACK", "RESTART"],
        now_iso="2026-12-03T10:00:07Z",
    )

    assert len(subject) <= 100 and "\n" not in subject
    assert "Incident: P1-20261203-094107-abc123, open 19 min" in body
    assert "Options tried: ROLLBACK, RESTART" in body


def test_escalation_to_an_unknown_level_is_refused_and_publishes_nothing():
    sent = []

    with pytest.raises(InvalidInput, match="level must be one of"):
        p1_steps.escalate({}, envelope(), None, lambda *a, **k: sent.append(a) or {}, level="L9; rm -rf /")
    assert sent == []
