"""cdk-nag wiring: the AwsSolutions pack, and acknowledgements that each carry their reason."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept one cdk-nag finding (``RuleId`` or ``RuleId[FindingId]``) on ``scope`` and below, with why."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def add_nag(app: cdk.App) -> None:
    """Run the AwsSolutions checks on synth; a finding not acknowledged fails the synth."""
    from cdk_nag import AwsSolutionsChecks

    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
