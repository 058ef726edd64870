"""What every database step reads from its input: the configured database, the window and dry run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from functions.core import clock
from functions.core.config import Database, Settings, get_settings
from functions.core.envelope import envelope_of
from functions.core.errors import ConfigurationError, InvalidInput
from functions.core.results import StepResult
from functions.logic.db_maintenance import (
    Pace,
    Window,
    database_key,
    skipped_past_window,
    statement_timeout_ms,
)

NO_WINDOW_STATEMENT_MS = 45_000  # diagnostics: a statement ends well inside their 60 s Lambda timeout


@dataclass(frozen=True)
class DbStep:
    """The parsed input of a database step."""

    name: str  # the catalog's step name
    settings: Settings
    key: str  # the key of `databases`
    db: Database
    dry_run: bool
    window: Window | None
    state: dict[str, Any]

    def now(self) -> datetime:
        return clock.utcnow()

    def skipped(self) -> StepResult | None:
        """SKIPPED when the step would start past the maintenance window (steps without a window never are)."""
        return skipped_past_window(self.name, self.window, self.now()) if self.window else None

    def statement_ms(self) -> int:
        """The statement_timeout of this step: its budget, and never past the window's end."""
        if self.window is None:
            return NO_WINDOW_STATEMENT_MS
        return statement_timeout_ms(self.name, self.window, self.now())

    @property
    def pace(self) -> Pace:
        return Pace(self.name, self.window, self.now)

    def on_connection(
        self, use: Callable[[Any], StepResult], *, application_name: str = "runbook-autopilot"
    ) -> StepResult:
        """``use(conn)`` on a new autocommit connection bounded by this step's statement_timeout, timed;
        psycopg errors come out named (DatabaseUnavailable, TransientError)."""
        from functions.adapters import postgres  # psycopg costs ~0.5 s to import: only steps that connect
        from functions.adapters.postgres_maintenance import set_timeouts

        def run() -> StepResult:
            with postgres.connection(self.db, application_name=application_name) as conn:
                set_timeouts(conn, statement_ms=self.statement_ms())
                return use(conn)

        return timed(run)


def db_step(name: str, event: dict[str, Any]) -> DbStep:
    """Read a database step's input: the envelope (dry run), the window, and which database.

    The database is ``event["database"]`` (a key of ``databases``), else the maintenance database; a P2/P3
    flow may instead name its target service, whose PostgreSQL dependency is then used."""
    settings = get_settings()
    envelope = envelope_of(event)
    key = event.get("database")
    if not key and envelope.target is not None and envelope.target.service in settings.services:
        service = settings.services[envelope.target.service]
        key = next((dep.database for dep in service.dependencies if dep.kind == "postgres"), None)
    key = key or database_key(settings)
    if key not in settings.databases:
        raise ConfigurationError(f"database {key!r} is not configured")
    raw_window = event.get("window")
    try:
        window = Window.model_validate(raw_window) if raw_window else None
    except ValueError as error:
        raise InvalidInput(f"the step input has a malformed window: {error}") from None
    return DbStep(
        name=name,
        settings=settings,
        key=str(key),
        db=settings.databases[str(key)],
        dry_run=envelope.options.dry_run,
        window=window,
        state=event,
    )


def timed(run: Callable[[], StepResult]) -> StepResult:
    """Run a step and add its duration (real seconds: a measurement, not the scaled clock) to the details."""
    started = time.perf_counter()
    result = run()
    details = dict(result.details, duration_seconds=round(time.perf_counter() - started, 3))
    return result.model_copy(update={"details": details})
