"""Normalizing what starts a run: alarm events exactly as EventBridge delivers them, and requests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from functions.core.config import parse_settings
from functions.core.errors import InvalidInput, UnknownService
from functions.logic.intake import normalize

EVENTS = Path(__file__).resolve().parents[2] / "events"
NOW = "2026-12-03T09:41:30Z"


@pytest.fixture
def settings():
    return parse_settings(
        {
            "services": {
                "sales-service": {
                    "namespace": "production",
                    "cluster": "prod-eks",
                    "health": {"primary": "http://127.0.0.1:1/health"},
                    "alarms": ["sales-service-5xx", "sales-service-down"],
                }
            }
        }
    )


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def run(raw, settings):
    return normalize(raw, settings, runbook="p1-service-down", severity="P1", now_iso=NOW)


def test_metric_alarm_ok_to_alarm_starts_the_runbook_for_the_mapped_service(settings):
    envelope = run(event("alarm-sales-service-5xx.json"), settings)

    assert envelope.action == "run"
    assert envelope.target.model_dump() == {
        "service": "sales-service",
        "namespace": "production",
        "cluster": "prod-eks",
        "deployment": "sales-service",
        "environment": "production",
    }
    assert envelope.trigger.kind == "alarm"
    assert envelope.trigger.previous_state == "OK"
    assert envelope.incident.started_at == "2026-12-03T09:41:07Z"
    assert envelope.incident.id.startswith("P1-20261203-094107-")
    assert envelope.options.dry_run is False


def test_the_same_alarm_transition_names_the_same_incident(settings):
    first = run(event("alarm-sales-service-5xx.json"), settings)
    again = run(event("alarm-sales-service-5xx.json"), settings)

    assert first.incident.id == again.incident.id


def test_composite_alarm_starts_the_runbook_and_says_it_is_composite(settings):
    envelope = run(event("alarm-sales-service-down-composite.json"), settings)

    assert envelope.action == "run"
    assert envelope.target.service == "sales-service"
    assert envelope.reason.startswith("composite alarm sales-service-down went from OK to ALARM")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("alarm-sales-service-5xx-ok.json", "went to OK: only ALARM starts"),
        ("alarm-sales-service-5xx-realarm.json", "still in ALARM (a re-notification)"),
    ],
)
def test_states_other_than_a_new_alarm_end_without_action_saying_why(settings, name, why):
    envelope = run(event(name), settings)

    assert envelope.action == "ignore"
    assert why in envelope.reason
    assert envelope.target is None


def test_insufficient_data_ends_without_action(settings):
    raw = event("alarm-sales-service-5xx.json")
    raw["detail"]["state"]["value"] = "INSUFFICIENT_DATA"

    assert run(raw, settings).action == "ignore"


def test_manual_request_is_accepted_with_its_dry_run(settings):
    raw = event("manual-sales-service.json") | {"dry_run": True}

    envelope = run(raw, settings)

    assert envelope.action == "run"
    assert envelope.trigger.kind == "manual"
    assert envelope.trigger.source == "alice"
    assert envelope.options.dry_run is True
    assert envelope.incident.started_at == NOW


def test_a_replayed_alarm_may_carry_the_dry_run_option(settings):
    raw = event("alarm-sales-service-5xx.json") | {"autopilot": {"dry_run": True}}

    assert run(raw, settings).options.dry_run is True


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("detail"), "detail is missing"),
        (lambda e: e["detail"].pop("alarmName"), "detail.alarmName is missing"),
        (lambda e: e["detail"]["state"].pop("value"), "detail.state.value is missing"),
        (lambda e: e["detail"]["state"].update(value="BROKEN"), "unknown alarm state"),
        (lambda e: e["detail"]["state"].update(timestamp="yesterday"), "not ISO 8601"),
        (lambda e: e.update(source="aws.ec2"), "source must be aws.cloudwatch"),
        (lambda e: e.update(autopilot={"dry_run": "yes"}), "must be true or false"),
    ],
)
def test_malformed_alarm_events_are_named_errors(settings, mutate, message):
    raw = copy.deepcopy(event("alarm-sales-service-5xx.json"))
    mutate(raw)

    with pytest.raises(InvalidInput, match=message):
        run(raw, settings)


def test_an_alarm_that_maps_to_no_service_is_unknown(settings):
    raw = event("alarm-sales-service-5xx.json")
    raw["detail"]["alarmName"] = "billing-service-5xx"

    with pytest.raises(UnknownService, match="billing-service-5xx"):
        run(raw, settings)


@pytest.mark.parametrize(
    "service",
    [
        "sales-service; rm -rf /",
        "sales'; DROP TABLE sales; --",
        "$(reboot)",
        "../../etc/passwd",
        "Sales-Service",
        "",
    ],
)
def test_service_names_with_shell_or_sql_are_refused_before_any_lookup(settings, service):
    with pytest.raises(InvalidInput, match="not a valid name"):
        run({"service": service}, settings)


def test_an_unknown_but_well_formed_service_is_unknown(settings):
    with pytest.raises(UnknownService, match="analytics-service"):
        run({"service": "analytics-service"}, settings)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"namespace": "kube-system"}, "does not match the configuration"),
        ({"namespace": "prod;ls"}, "not a valid name"),
        ({"cluster": "other"}, "does not match the configuration"),
        ({"environment": "staging"}, "not this deployment's"),
        ({"dry_run": "true"}, "dry_run must be true or false"),
        ({"replicas": 100}, "unknown request fields: replicas"),
        ({"requested_by": "bob`id`"}, "short plain name"),
    ],
)
def test_request_fields_are_checked(settings, extra, message):
    with pytest.raises(InvalidInput, match=message):
        run({"service": "sales-service", **extra}, settings)


@pytest.mark.parametrize("raw", [[], "ALARM", 42, None, {}, {"detail-type": "Scheduled Event"}])
def test_anything_else_is_invalid_input(settings, raw):
    with pytest.raises(InvalidInput):
        run(raw, settings)
