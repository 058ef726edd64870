"""Scenario files: a world for the sandbox (the cluster, the database, what the runbook should do with it).

A scenario is YAML in ``runbook/sandbox/scenarios/``. Its ``config`` is merged over the sandbox's base
configuration (``runbook/sandbox/sandbox-config.yaml``, the same schema as the AWS deployment's), and
``{placeholders}`` in it are filled when the sandbox has started: ``{sim}`` (the cluster simulator's URL),
``{pg_host}``/``{pg_port}`` (the PostgreSQL server), ``{target_group:NAME}``, ``{secret:db}``, ``{topic:L2}``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from functions.core.clock import parse_iso

SCENARIO_DIR = Path(__file__).with_name("scenarios")
BASE_CONFIG = Path(__file__).with_name("sandbox-config.yaml")
REPO = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ScenarioError(ValueError):
    """The scenario is unknown or invalid."""


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(over)


@dataclass
class Scenario:
    name: str
    description: str
    world: dict[str, Any]
    config: dict[str, Any]
    event: str | None = None
    database: str = "up"
    database_name: str = "sales_db"
    seed_rows: int = 2_000  # P1 only needs the database to answer; db-maintenance scenarios ask for more
    expect: dict[str, Any] = field(default_factory=dict)
    start_at: str | None = None

    def clock_start(self) -> float | None:
        """The simulated clock starts just after the scenario's alarm fired (EventBridge delivers in seconds)."""
        if self.start_at:
            return parse_iso(self.start_at).timestamp()
        if self.event:
            return event_time(json.loads((REPO / self.event).read_text()))
        return None

    @property
    def clusters(self) -> list[str]:
        return sorted({service["cluster"] for service in self.config.get("services", {}).values()})

    @property
    def target_groups(self) -> list[str]:
        return sorted(
            name for name, s in self.config.get("services", {}).items() if s.get("target_group_arn")
        )

    def render_config(self, values: dict[str, str]) -> dict[str, Any]:
        def fill(node: Any) -> Any:
            if isinstance(node, dict):
                return {key: fill(value) for key, value in node.items()}
            if isinstance(node, list):
                return [fill(value) for value in node]
            if isinstance(node, str):

                def one(match: re.Match[str]) -> str:
                    if match.group(1) not in values:
                        raise ScenarioError(f"scenario {self.name}: no value for {{{match.group(1)}}}")
                    return values[match.group(1)]

                text = re.sub(r"\{([a-z_]+(?::[A-Za-z0-9_-]+)?)\}", one, node)
                return int(text) if node.strip() in ("{pg_port}",) else text
            return node

        rendered: dict[str, Any] = fill(self.config)
        return rendered

    def extra_placeholders(self) -> dict[str, str]:
        return {}


def event_time(event: Any) -> float | None:
    """When a run started by ``event`` begins: 20 s after an alarm's transition (EventBridge's delivery), at a
    scheduled event's time; None for a person's request (now)."""
    if not isinstance(event, dict):
        return None
    stamp = (
        event.get("detail", {}).get("state", {}).get("timestamp")
        if isinstance(event.get("detail"), dict)
        else None
    )
    try:
        if isinstance(stamp, str):
            return parse_iso(re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", stamp)).timestamp() + 20
        if event.get("detail-type") == "Scheduled Event" and isinstance(event.get("time"), str):
            return parse_iso(event["time"]).timestamp() + 5
    except ValueError:
        return None  # a malformed time: the runbook itself rejects the event, with its reason
    return None


def scenario_names() -> list[str]:
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A scenario by name (``runbook/sandbox/scenarios/<name>.yaml``) or by path; every mistake is a
    ``ScenarioError`` naming the file and the field."""
    path = Path(name_or_path)
    if not path.suffix:
        if not _NAME.fullmatch(name_or_path):
            raise ScenarioError(f"{name_or_path!r} is not a scenario name")
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ScenarioError(f"unknown scenario {name_or_path!r}; known: {', '.join(scenario_names())}")
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ScenarioError(f"{path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("world"), dict):
        raise ScenarioError(f"{path}: a scenario is a mapping with a 'world' mapping (the cluster)")
    base = yaml.safe_load(BASE_CONFIG.read_text())

    def field_of(key: str, kind: type, default: Any) -> Any:
        value = data.get(key, default)
        if value is not None and not isinstance(value, kind):
            raise ScenarioError(f"{path}: {key} must be {kind.__name__}, not {value!r}")
        return value

    database = field_of("database", str, "up")
    if database not in ("up", "down"):
        raise ScenarioError(f"{path}: database must be up or down, not {database!r}")
    seed_rows = field_of("seed_rows", int, 2_000)
    if not 0 < seed_rows <= 5_000_000:
        raise ScenarioError(f"{path}: seed_rows must be between 1 and 5000000")
    start_at = field_of("start_at", str, None)
    if start_at is not None:
        try:
            parse_iso(start_at)
        except ValueError:
            raise ScenarioError(f"{path}: start_at {start_at!r} is not an ISO 8601 time") from None
    event = field_of("event", str, None)
    if event is not None and not (REPO / event).is_file():
        raise ScenarioError(f"{path}: event {event} does not exist")
    return Scenario(
        name=path.stem,
        description=str(data.get("description", "")).strip(),
        world=data["world"],
        config=_merge(base, field_of("config", dict, None) or {}),
        event=event,
        database=database,
        database_name=field_of("database_name", str, "sales_db"),
        seed_rows=seed_rows,
        expect=field_of("expect", dict, None) or {},
        start_at=start_at,
    )
