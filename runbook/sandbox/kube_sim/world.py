"""Build a simulated cluster from a scenario's ``kubernetes`` section (see the package docstring for the schema)."""

from __future__ import annotations

import copy
from typing import Any

from runbook.sandbox.kube_sim.cluster import (
    FAULT_KINDS,
    READY_SECONDS,
    REVISION,
    Cluster,
    DeployRuntime,
    Fault,
    default_deployment_spec,
    default_template,
    iso,
    template_hash,
)

CHANGE_CAUSE = "kubernetes.io/change-cause"


class WorldError(ValueError):
    """The world description is invalid."""


def parse_fault(image: str, value: Any) -> Fault:
    """``crashloop`` or ``{fault: crash_after, seconds: 120}``."""
    if isinstance(value, str):
        value = {"fault": value}
    if not isinstance(value, dict) or value.get("fault") not in FAULT_KINDS:
        raise WorldError(f"images.{image}: fault must be one of {', '.join(FAULT_KINDS)}")
    seconds = float(value.get("seconds", 0))
    if value["fault"] in ("slow_start", "crash_after") and seconds <= 0:
        raise WorldError(f"images.{image}: {value['fault']} needs seconds > 0")
    return Fault(value["fault"], seconds)


def _template(dep: dict[str, Any], revision: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    name = dep["name"]
    container: dict[str, Any] = {"name": dep.get("container", name), "image": revision["image"]}
    if dep.get("port"):
        container["ports"] = [{"containerPort": int(dep["port"]), "protocol": "TCP"}]
    env = revision.get("env") or dep.get("env")
    if env:
        container["env"] = [{"name": k, "value": str(v)} for k, v in env.items()]
    if dep.get("resources"):
        container["resources"] = copy.deepcopy(dep["resources"])
    template: dict[str, Any] = {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container]}}
    if revision.get("restarted_at"):
        template["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": revision["restarted_at"]}
    return default_template(template)


def load_world(cluster: Cluster, world: dict[str, Any], now: float) -> None:
    """Replace the cluster's contents with ``world``, settled as of ``now``."""
    for store in cluster.objects.values():
        store.clear()
    cluster.pod_rt.clear()
    cluster.deploy_rt.clear()
    cluster.faults = {image: parse_fault(image, v) for image, v in (world.get("images") or {}).items()}
    cluster.metrics_api = bool(world.get("metrics_api", True))
    cluster.synced_at = now
    for ns in ["default", "kube-system", *(world.get("namespaces") or [])]:
        cluster.ensure_namespace(ns, now - 86400 * 30)
    for dep in world.get("deployments") or []:
        _load_deployment(cluster, dep, now)
    for extra in world.get("replicasets") or []:
        _load_replicaset(cluster, extra, now)
    for policy in world.get("network_policies") or []:
        obj = copy.deepcopy(policy)
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "default")
        cluster.ensure_namespace(ns, now)
        meta.update(cluster.new_meta(meta["name"], ns, now, meta.get("labels"), meta.get("annotations")))
        obj.update({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"})
        cluster.put("networkpolicies", obj)
    cluster.sync(now)


def _load_deployment(cluster: Cluster, dep: dict[str, Any], now: float) -> None:
    try:
        name, ns = dep["name"], dep.get("namespace", "default")
        revisions = dep["revisions"]
    except KeyError as missing:
        raise WorldError(f"deployments: {missing} is required") from None
    if not revisions:
        raise WorldError(f"deployments.{name}: at least one revision is required")
    cluster.ensure_namespace(ns, now - 86400 * 30)
    selector = dict(dep.get("selector") or dep.get("labels") or {"app": name})
    labels = {**selector, **(dep.get("labels") or {})}
    numbers = [int(r.get("revision", i + 1)) for i, r in enumerate(revisions)]
    current_number = int(dep.get("current", numbers[-1]))
    if current_number not in numbers:
        raise WorldError(f"deployments.{name}: current revision {current_number} is not listed")
    templates = [_template(dep, r, labels) for r in revisions]
    if len({template_hash(t) for t in templates}) != len(templates):
        raise WorldError(f"deployments.{name}: two revisions have the same pod template (vary image or env)")
    current_index = numbers.index(current_number)
    current = revisions[current_index]
    deployed_at = now - float(current.get("age_minutes", 60)) * 60
    oldest = now - max(float(r.get("age_minutes", 60)) for r in revisions) * 60
    replicas = int(dep.get("replicas", 1))

    annotations = {REVISION: str(current_number)}
    if current.get("change_cause"):
        annotations[CHANGE_CAUSE] = current["change_cause"]
    meta = cluster.new_meta(name, ns, oldest, labels, annotations)
    meta["generation"] = len(revisions)
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": selector},
        "template": templates[current_index],
        "progressDeadlineSeconds": int(dep.get("progress_deadline_seconds", 600)),
    }
    if dep.get("paused"):
        spec["paused"] = True
    if dep.get("strategy"):
        spec["strategy"] = copy.deepcopy(dep["strategy"])
    default_deployment_spec(spec)
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": spec,
        "status": {},
    }
    load = dep.get("load") or {}
    cluster.deploy_rt[meta["uid"]] = DeployRuntime(
        observe_at=deployed_at,
        progress_at=deployed_at,
        load_rps=float(load.get("rps", 0)),
        pod_capacity_rps=float(load.get("pod_capacity_rps", 0)),
    )
    cluster.put("deployments", deployment)
    if dep.get("service", True):
        cluster.put(
            "services", _service(cluster, name, ns, selector, port=int(dep.get("port") or 8080), at=oldest)
        )

    for revision, number, template in zip(revisions, numbers, templates, strict=True):
        at = now - float(revision.get("age_minutes", 60)) * 60
        rs = cluster.create_replicaset(
            deployment, template, number, at, replicas if number == current_number else 0
        )
        rs_annotations = rs["metadata"]["annotations"]
        rs_annotations.pop(CHANGE_CAUSE, None)
        if revision.get("change_cause"):
            rs_annotations[CHANGE_CAUSE] = revision["change_cause"]
        if number == current_number:
            stuck = int(dep.get("stuck_pods", 0))
            for index in range(replicas):
                cluster.create_pod(rs, deployed_at, stuck=index < stuck)

    # settle the status as a finished (or, for images that never become ready, a stuck) rollout
    fault = cluster.faults.get(current["image"], Fault())
    never_ready = fault.kind in ("crashloop", "imagepull") or (
        fault.kind == "crash_after" and fault.seconds <= READY_SECONDS
    )
    rs_name = f"{name}-{template_hash(templates[current_index])}"
    deadline = spec["progressDeadlineSeconds"]
    conditions = []
    if spec.get("paused"):
        conditions.append(_condition("Unknown", "DeploymentPaused", "Deployment is paused", deployed_at))
    elif never_ready and now - deployed_at > deadline:
        stamp = deployed_at + deadline
        conditions.append(
            _condition(
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                stamp,
            )
        )
    elif never_ready:
        conditions.append(
            _condition("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.', deployed_at)
        )
    else:
        stamp = deployed_at + max(READY_SECONDS, fault.seconds if fault.kind == "slow_start" else 0)
        conditions.append(
            _condition(
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                stamp,
            )
        )
    cluster.update_deployment_status(deployment, now)  # counters first, so that they read as no progress
    deployment["status"]["conditions"] = [
        c for c in deployment["status"]["conditions"] if c["type"] != "Progressing"
    ] + conditions


def _service(
    cluster: Cluster, name: str, namespace: str, selector: dict[str, str], *, port: int, at: float
) -> dict[str, Any]:
    ip = f"172.20.{len(cluster.objects['services']) // 250}.{len(cluster.objects['services']) % 250 + 10}"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": cluster.new_meta(name, namespace, at, dict(selector)),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "clusterIP": ip,
            "clusterIPs": [ip],
            "ports": [{"name": "http", "port": 80, "targetPort": port, "protocol": "TCP"}],
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    }


def _condition(status: str, reason: str, message: str, at: float) -> dict[str, Any]:
    return {
        "type": "Progressing",
        "status": status,
        "lastUpdateTime": iso(at),
        "lastTransitionTime": iso(at),
        "reason": reason,
        "message": message,
    }


def _load_replicaset(cluster: Cluster, extra: dict[str, Any], now: float) -> None:
    """A ReplicaSet that belongs to another Deployment (or to none), e.g. with overlapping labels."""
    ns = extra.get("namespace", "default")
    cluster.ensure_namespace(ns, now)
    labels = dict(extra.get("labels") or {})
    owner_name = extra.get("owner")
    owner = cluster.get("deployments", ns, owner_name) if owner_name else None
    if owner_name and owner is None:
        _load_deployment(
            cluster,
            {
                "name": owner_name,
                "namespace": ns,
                "selector": labels,
                "replicas": 0,
                "revisions": [{"image": extra.get("image", "busybox:1.36"), "age_minutes": 600}],
            },
            now,
        )
        owner = cluster.get("deployments", ns, owner_name)
    template = _template(
        {"name": extra.get("container", "app")},
        {"image": extra.get("image", "busybox:1.36"), "env": extra.get("env")},
        labels,
    )
    digest = template_hash(template)
    template["metadata"]["labels"]["pod-template-hash"] = digest
    meta = cluster.new_meta(
        extra.get("name", f"{owner_name or 'orphan'}-{digest}"),
        ns,
        now - float(extra.get("age_minutes", 60)) * 60,
        template["metadata"]["labels"],
        {REVISION: str(extra.get("revision", 1))},
    )
    meta["generation"] = 1
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {
            "replicas": int(extra.get("replicas", 0)),
            "selector": {"matchLabels": template["metadata"]["labels"]},
            "template": template,
        },
        "status": {"replicas": 0},
    }
    cluster.put("replicasets", rs)
