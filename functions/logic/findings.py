"""Summaries of what the investigation read: raw observations in, one StepResult out. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from functions.core.clock import parse_iso
from functions.core.results import Status, StepResult


def summarize_endpoints(probes: dict[str, dict[str, Any]]) -> StepResult:
    """Health endpoints by name (primary, backup)."""
    ok = [name for name, p in probes.items() if p["ok"]]
    parts = [f"{name} {p['status'] or p['error']} ({p['latency_ms']} ms)" for name, p in probes.items()]
    status = Status.OK if len(ok) == len(probes) else (Status.DEGRADED if ok else Status.FAILED)
    return StepResult(
        status=status,
        summary=f"{len(ok)}/{len(probes)} health endpoints answer: " + ", ".join(parts),
        details={"endpoints": probes, "healthy": len(ok), "total": len(probes)},
    )


def summarize_targets(targets: list[dict[str, Any]]) -> StepResult:
    healthy = [t for t in targets if t["state"] == "healthy"]
    reasons = Counter(t["reason"] for t in targets if t["state"] != "healthy" and t.get("reason"))
    states = Counter(t["state"] for t in targets)
    status = (
        Status.OK
        if targets and len(healthy) == len(targets)
        else (Status.DEGRADED if healthy else Status.FAILED)
    )
    text = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no registered targets"
    if reasons:
        text += " (" + ", ".join(f"{r} x{n}" for r, n in reasons.most_common()) + ")"
    return StepResult(
        status=status,
        summary=f"{len(healthy)}/{len(targets)} targets healthy: {text}",
        details={
            "targets": targets[:50],
            "healthy": len(healthy),
            "total": len(targets),
            "reasons": dict(reasons),
        },
    )


def summarize_pods(pods: Sequence[Any], *, desired: int, paused: bool) -> StepResult:
    """Readiness, restarts and waiting reasons: ``phase: Running`` hides a crash loop, the containers do not."""
    ready = [p for p in pods if p.ready]
    waiting = Counter(reason for p in pods for reason in p.waiting_reasons)
    restarts = sum(p.restart_count for p in pods)
    listed = [
        {
            "name": p.name,
            "phase": p.phase,
            "ready": p.ready,
            "restarts": p.restart_count,
            "waiting": list(p.waiting_reasons),
            "hash": p.pod_template_hash,
        }
        for p in pods
    ][:30]
    text = f"{len(ready)}/{desired} ready, {len(pods)} pods, {restarts} restarts"
    if waiting:
        text += ", waiting: " + ", ".join(f"{r} x{n}" for r, n in waiting.most_common())
    if paused:
        text += ", rollout paused"
    if len(ready) >= desired and not waiting:
        status = Status.OK
    else:
        status = Status.DEGRADED if ready else Status.FAILED
    return StepResult(
        status=status,
        summary=text,
        details={
            "desired": desired,
            "ready": len(ready),
            "total": len(pods),
            "restarts": restarts,
            "waiting_reasons": dict(waiting),
            "paused": paused,
            "pods": listed,
        },
    )


def summarize_history(revisions: Sequence[Any], *, now_epoch: float) -> StepResult:
    """Current revision, the one before it, and how old the latest change is."""

    def view(rev: Any) -> dict[str, Any]:
        age = (now_epoch - parse_iso(rev.created_at).timestamp()) / 60
        return {
            "revision": rev.revision,
            "images": list(rev.images),
            "created_at": rev.created_at,
            "age_minutes": round(age, 1),
            "hash": rev.pod_template_hash,
            "replicas": rev.replicas,
            "ready_replicas": rev.ready_replicas,
            "change_cause": rev.change_cause,
        }

    if not revisions:
        return StepResult(
            status=Status.DEGRADED,
            summary="no rollout history",
            details={"revisions": [], "current": None, "previous": None},
        )
    ordered = sorted(revisions, key=lambda r: r.revision)
    current, previous = view(ordered[-1]), (view(ordered[-2]) if len(ordered) > 1 else None)
    text = f"revision {current['revision']} ({', '.join(current['images'])}) is {current['age_minutes']:.0f} min old"
    text += (
        f"; previous revision {previous['revision']} ({', '.join(previous['images'])})"
        if previous
        else "; no previous revision"
    )
    return StepResult(
        status=Status.OK,
        summary=text,
        details={
            "revisions": [view(r) for r in ordered][-10:],
            "current": current,
            "previous": previous,
            "latest_change_age_minutes": current["age_minutes"],
        },
    )


def summarize_usage(usage: Sequence[Any] | None) -> StepResult:
    """CPU and memory per pod against requests; "unavailable" is a finding, not a failure."""
    if usage is None:
        return StepResult(
            status=Status.UNAVAILABLE, summary="resource usage unavailable (no metrics API)", details={}
        )
    if not usage:
        return StepResult(
            status=Status.UNAVAILABLE,
            summary="resource usage unavailable (no pod metrics yet)",
            details={"pods": []},
        )
    rows = []
    for u in usage:
        util = (u.cpu_millicores / u.cpu_request_millicores) if u.cpu_request_millicores else None
        rows.append(
            {
                "name": u.name,
                "cpu_m": u.cpu_millicores,
                "cpu_request_m": u.cpu_request_millicores,
                "memory_mib": round(u.memory_bytes / 2**20, 1),
                "cpu_utilization": None if util is None else round(util, 3),
            }
        )
    known = [r["cpu_utilization"] for r in rows if r["cpu_utilization"] is not None]
    avg = round(sum(known) / len(known), 3) if known else 0.0
    return StepResult(
        status=Status.OK,
        summary=f"{len(rows)} pods, average CPU {avg:.0%} of requests",
        details={"pods": rows[:30], "avg_cpu_utilization": avg},
    )


def summarize_dependencies(probes: list[dict[str, Any]]) -> StepResult:
    down = [p["name"] for p in probes if not p["ok"]]
    critical = [p["name"] for p in probes if not p["ok"] and p["critical"]]
    if not probes:
        return StepResult(
            status=Status.SKIPPED,
            summary="no dependencies configured",
            details={"probes": [], "down": [], "critical_down": []},
        )
    parts = [f"{p['name']} {'up' if p['ok'] else 'DOWN: ' + str(p.get('error'))}" for p in probes]
    status = Status.FAILED if critical else (Status.DEGRADED if down else Status.OK)
    return StepResult(
        status=status,
        summary="; ".join(parts),
        details={"probes": probes, "down": down, "critical_down": critical},
    )
