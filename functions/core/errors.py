"""Named errors. The class name is the ASL error name the state machine routes on.

Lambda reports a raised exception as ``errorType`` = class name; Step Functions matches Retry and Catch
``ErrorEquals`` against it. Renaming a class here is an interface change for every ASL file.
"""

from __future__ import annotations


class RunbookError(Exception):
    """Base of every error a step raises on purpose."""


class InvalidInput(RunbookError):
    """The input is not an event or request this runbook accepts. Nothing was changed."""


class UnknownService(RunbookError):
    """The alarm or request names a service that is not in the configuration."""


class UnsafeToProceed(RunbookError):
    """The target is in a state where the change must not be made (a paused rollout, a namespace not allowed)."""


class DeploymentNotFound(RunbookError):
    """The Deployment does not exist."""


class NoRolloutHistory(RunbookError):
    """There is no previous revision to roll back to."""


class RolloutStuck(RunbookError):
    """The rollout exceeded its progress deadline."""


class DatabaseUnavailable(RunbookError):
    """The database did not accept a connection or a query."""


class ConfigurationError(RunbookError):
    """The configuration is missing or invalid."""


class TransientError(RunbookError):
    """A fault worth retrying: throttling, a 5xx, a timeout. The ASL retries this family."""


class TargetLocked(RunbookError):
    """Another run holds this target's lock: this start is a duplicate and ends as deduplicated."""
