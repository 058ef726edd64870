"""Step: the maintenance report, stored (S3 or a file) and published on SNS; also the abort and failure
notification."""

from __future__ import annotations

from typing import Any

from functions.adapters import reports, sns
from functions.core.observability import step_handler
from functions.core.results import Status, StepResult
from functions.handlers.db_common import db_step
from functions.logic.db_maintenance import error_of, outcome_of, render_report, report_key

REPORT_TOPIC_LEVEL = "L1"  # the on-call reads maintenance reports; a failure pages no one beyond them


@step_handler
def lambda_handler(event: dict[str, Any]) -> StepResult:
    step = db_step("DbPublishReport", event)
    now = step.now()
    subject, body = render_report(event, step.db.dbname, step.settings.environment, now)
    location = reports.store_report(report_key(event, now), body)
    # A dry run stores its report (what the person asked to see) but sends nothing, as every dry run: a drill
    # on AWS must not page the on-call with a FAILED maintenance.
    published = sns.publish(
        REPORT_TOPIC_LEVEL, subject, body + f"\nStored at {location}\n", dry_run=step.dry_run
    )
    outcome = outcome_of(event)
    return StepResult(
        status=Status.OK if outcome.startswith("COMPLETED") else Status.FAILED,
        summary=f"{subject} (report: {location})",
        details={
            "outcome": outcome,
            "error": error_of(event),
            "location": location,
            "subject": published["subject"],
            "message_id": published.get("message_id"),
            "truncated": published["truncated"],
        },
    )
