"""cdk-nag wiring: the AwsSolutions pack, and acknowledgements that each carry their reason."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept one cdk-nag finding (``RuleId`` or ``RuleId[FindingId]``) on ``scope`` and below, with why."""
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule} needs a written reason, not {reason!r}")
    # cdk-nag's findings are validation rules of the plugin "AwsSolutions"; the prefix says so.
    full_id = rule if "::" in rule.split("[", maxsplit=1)[0] else f"AwsSolutions::{rule}"
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=full_id, reason=reason))


def add_nag(app: cdk.App) -> None:
    """Run the AwsSolutions checks on synth; a finding not acknowledged fails the synth."""
    from cdk_nag import AwsSolutionsChecks

    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
