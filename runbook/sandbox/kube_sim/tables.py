"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks for, with the real columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runbook.sandbox.kube_sim.cluster import parse_iso

Column = tuple[str, str, int]  # name, type, priority (1 = only with -o wide)


def human_duration(seconds: float) -> str:
    """kubectl's duration.HumanDuration."""
    s = int(max(0, seconds))
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 730:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d"


def _age(obj: dict[str, Any], now: float) -> str:
    stamp = obj["metadata"].get("creationTimestamp")
    return human_duration(now - parse_iso(stamp)) if stamp else "<unknown>"


def _images(template_spec: dict[str, Any]) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return ",".join(c["name"] for c in containers), ",".join(c.get("image", "") for c in containers)


def _selector(selector: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items())


def _deployment(obj: dict[str, Any], now: float) -> list[Any]:
    st = obj.get("status") or {}
    containers, images = _images(obj["spec"]["template"]["spec"])
    return [
        obj["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{obj['spec'].get('replicas', 0)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        _age(obj, now),
        containers,
        images,
        _selector(obj["spec"]["selector"]),
    ]


def _replicaset(obj: dict[str, Any], now: float) -> list[Any]:
    st = obj.get("status") or {}
    containers, images = _images(obj["spec"]["template"]["spec"])
    return [
        obj["metadata"]["name"],
        obj["spec"].get("replicas", 0),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        _age(obj, now),
        containers,
        images,
        _selector(obj["spec"]["selector"]),
    ]


def pod_reason(pod: dict[str, Any]) -> str:
    """The STATUS column: a waiting reason wins over the phase, as kubectl prints it."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(status.get("phase", "Unknown"))


def _pod(obj: dict[str, Any], now: float) -> list[Any]:
    status = obj.get("status") or {}
    containers = status.get("containerStatuses") or []
    ready = sum(1 for c in containers if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in containers)
    restart_text = str(restarts)
    finished = [
        c["lastState"]["terminated"]["finishedAt"]
        for c in containers
        if (c.get("lastState") or {}).get("terminated", {}).get("finishedAt")
    ]
    if restarts and finished:
        restart_text += f" ({human_duration(now - parse_iso(max(finished)))} ago)"
    return [
        obj["metadata"]["name"],
        f"{ready}/{len(obj['spec'].get('containers') or [])}",
        pod_reason(obj),
        restart_text,
        _age(obj, now),
        status.get("podIP", "<none>"),
        obj["spec"].get("nodeName", "<none>"),
        "<none>",
        "<none>",
    ]


def _service(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj["spec"]
    ports = ",".join(f"{p['port']}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    selector = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items())
    return [
        obj["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "None"),
        "<none>",
        ports or "<none>",
        _age(obj, now),
        selector or "<none>",
    ]


def _namespace(obj: dict[str, Any], now: float) -> list[Any]:
    return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", "Active"), _age(obj, now)]


def _event(obj: dict[str, Any], now: float) -> list[Any]:
    involved = obj["involvedObject"]
    return [
        human_duration(now - parse_iso(obj["lastTimestamp"])),
        obj.get("type", "Normal"),
        obj.get("reason", ""),
        f"{involved['kind'].lower()}/{involved['name']}",
        obj.get("message", ""),
    ]


def _networkpolicy(obj: dict[str, Any], now: float) -> list[Any]:
    selector = _selector(obj.get("spec", {}).get("podSelector") or {})
    return [obj["metadata"]["name"], selector or "<none>", _age(obj, now)]


def _generic(obj: dict[str, Any], now: float) -> list[Any]:
    return [obj["metadata"]["name"], _age(obj, now)]


PRINTERS: dict[str, tuple[list[Column], Callable[[dict[str, Any], float], list[Any]]]] = {
    "deployments": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _deployment,
    ),
    "replicasets": (
        [
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _replicaset,
    ),
    "pods": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        _pod,
    ),
    "services": (
        [
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        _service,
    ),
    "namespaces": ([("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)], _namespace),
    "events": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _event,
    ),
    "networkpolicies": (
        [("Name", "string", 0), ("Pod-Selector", "string", 0), ("Age", "string", 0)],
        _networkpolicy,
    ),
}


def to_table(
    resource: str, objects: list[dict[str, Any]], now: float, resource_version: str
) -> dict[str, Any]:
    columns, printer = PRINTERS.get(resource, ([("Name", "string", 0), ("Age", "string", 0)], _generic))
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": priority,
            }
            for name, kind, priority in columns
        ],
        "rows": [
            {
                "cells": printer(obj, now),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
            for obj in objects
        ],
    }
