"""The simulated cluster: the object store, the pod lifecycle per fault profile, and the controllers.

Time is whatever the clock says (the sandbox's scaled clock). Nothing runs in the background: before every
request the server calls ``sync(now)``, which replays every moment something changed since the last request
(a pod became ready or crashed, a generation was observed, a progress deadline passed) and runs the
Deployment and ReplicaSet controllers at each of them, so the outcome does not depend on how often anyone
polls. Everything happens under one lock.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

FaultKind = Literal["healthy", "crashloop", "imagepull", "slow_start", "crash_after"]
FAULT_KINDS: tuple[str, ...] = ("healthy", "crashloop", "imagepull", "slow_start", "crash_after")

CREATE_SECONDS = 1.0  # scheduling + sandbox + image present: Pending (ContainerCreating) this long
READY_SECONDS = 2.0  # a healthy container passes its readiness probe this long after the pod was created
RUN_BEFORE_CRASH = 2.0  # a crash-looping container runs this long before it exits again
OBSERVE_LAG = 1.0  # the Deployment controller sees a new generation this long after the write
BACKOFF_MAX = 300.0  # kubelet's CrashLoopBackOff cap

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
# Annotations the controller does not copy from a Deployment to its ReplicaSets (nor kubectl back on undo).
SKIP_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s SafeEncodeString: no vowels, no look-alikes


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Fault:
    """How containers of one image behave. ``seconds``: slow_start → ready after; crash_after → crash after."""

    kind: FaultKind = "healthy"
    seconds: float = 0.0


@dataclass
class PodRuntime:
    start: float
    ip: str
    stuck: bool = False  # a deadlocked container: Running, never ready, no restarts (a restart cures it)


@dataclass
class DeployRuntime:
    observe_at: float = 0.0  # the controller acts on the current generation from this moment
    progress_at: float = 0.0  # last time the rollout made progress (Progressing lastUpdateTime)
    load_rps: float = 0.0
    pod_capacity_rps: float = 0.0


@dataclass
class PodState:
    phase: str
    ready: bool
    running: bool
    waiting_reason: str | None
    restarts: int
    running_since: float | None
    last_terminated: tuple[float, float] | None  # started, finished
    has_ip: bool


@dataclass
class ApiError(Exception):
    """An error the API server answers with a Status object."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def not_found(resource: str, name: str) -> ApiError:
    group, _, kind = resource.partition(".")[::-1] if "." in resource else ("", "", resource)
    plural = resource.split(".", maxsplit=1)[0]
    return ApiError(
        404,
        "NotFound",
        f'{resource} "{name}" not found',
        {"name": name, "group": group if kind else "", "kind": plural},
    )


def template_hash(template: dict[str, Any]) -> str:
    """Stable for identical templates (the pod-template-hash label itself is ignored)."""
    canonical = json.dumps(strip_hash(template), sort_keys=True, separators=(",", ":"))
    number = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        number, rest = divmod(number, len(_SAFE_ALPHABET))
        chars.append(_SAFE_ALPHABET[rest])
    return "".join(chars)


def strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(template)
    labels = clean.get("metadata", {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return clean


def resolve_int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value)


def matches_selector(labels: dict[str, str], selector: dict[str, Any]) -> bool:
    """A LabelSelector object (matchLabels, matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def default_template(template: dict[str, Any]) -> dict[str, Any]:
    """The API server's defaulting of a pod template (idempotent, so template hashes stay stable)."""
    tpl = copy.deepcopy(template)
    tpl.setdefault("metadata", {})
    tpl["metadata"].setdefault("creationTimestamp", None)
    spec = tpl.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in spec.get("containers") or []:
        image = str(container.get("image", ""))
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
    return tpl


def default_deployment_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    spec["template"] = default_template(spec.get("template") or {})


def parse_cpu_millis(text: Any) -> float:
    value = str(text)
    if value.endswith("m"):
        return float(value[:-1])
    return float(value) * 1000


_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9}


def parse_memory_bytes(text: Any) -> float:
    value = str(text)
    for unit, factor in _MEMORY_UNITS.items():
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


def _crashloop(elapsed: float) -> tuple[int, bool, float, float | None]:
    """Crash loop ``elapsed`` seconds after the first crash: restarts, running now, since, last crash."""
    restarts, moment, backoff, last_crash = 0, 0.0, 10.0, 0.0
    while True:
        restart_at = moment + backoff
        if restart_at > elapsed:
            return restarts, False, last_crash, last_crash
        restarts += 1
        if elapsed < restart_at + RUN_BEFORE_CRASH:
            return restarts, True, restart_at, last_crash
        moment = last_crash = restart_at + RUN_BEFORE_CRASH
        backoff = min(backoff * 2, BACKOFF_MAX)


class Cluster:
    """The state of one simulated cluster. Every public method expects ``lock`` to be held."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
            kind: {}
            for kind in (
                "namespaces",
                "deployments",
                "replicasets",
                "pods",
                "services",
                "events",
                "networkpolicies",
            )
        }
        self.faults: dict[str, Fault] = {}
        self.pod_rt: dict[str, PodRuntime] = {}  # by pod uid
        self.deploy_rt: dict[str, DeployRuntime] = {}  # by deployment uid
        self.metrics_api = True
        self.synced_at = clock()
        self._rv = itertools.count(1000)
        self._ips = itertools.count(10)

    # ----- store ---------------------------------------------------------------------------------
    def next_rv(self) -> str:
        return str(next(self._rv))

    def new_meta(
        self,
        name: str,
        namespace: str | None,
        at: float,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if namespace is not None:
            meta["namespace"] = namespace
        meta.update(
            {"uid": str(uuid.uuid4()), "resourceVersion": self.next_rv(), "creationTimestamp": iso(at)}
        )
        if labels:
            meta["labels"] = dict(labels)
        if annotations:
            meta["annotations"] = dict(annotations)
        return meta

    def put(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[kind][(meta.get("namespace", ""), meta["name"])] = obj

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects[kind].get((namespace, name))

    def items(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        found = [obj for (ns, _), obj in self.objects[kind].items() if namespace in (None, ns)]
        return sorted(found, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def delete(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects[kind].pop((namespace, name), None)
        if obj is not None and kind == "pods":
            self.pod_rt.pop(obj["metadata"]["uid"], None)
        return obj

    def ensure_namespace(self, name: str, at: float) -> None:
        if self.get("namespaces", "", name) is None:
            self.put(
                "namespaces",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": self.new_meta(name, None, at, {"kubernetes.io/metadata.name": name}),
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
            )

    def record_event(
        self, obj: dict[str, Any], reason: str, message: str, at: float, type_: str = "Normal"
    ) -> None:
        meta = obj["metadata"]
        name = f"{meta['name']}.{uuid.uuid4().hex[:16]}"
        self.put(
            "events",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": self.new_meta(name, meta["namespace"], at),
                "involvedObject": {
                    "apiVersion": obj["apiVersion"],
                    "kind": obj["kind"],
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta["uid"],
                    "resourceVersion": meta["resourceVersion"],
                },
                "reason": reason,
                "message": message,
                "source": {"component": "deployment-controller"},
                "firstTimestamp": iso(at),
                "lastTimestamp": iso(at),
                "count": 1,
                "type": type_,
                "eventTime": None,
                "reportingComponent": "deployment-controller",
                "reportingInstance": "",
            },
        )

    # ----- ownership ---------------------------------------------------------------------------
    @staticmethod
    def controller_uid(obj: dict[str, Any]) -> str | None:
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("controller"):
                return str(ref["uid"])
        return None

    def owned_replicasets(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deployment["metadata"]["uid"]
        ns = deployment["metadata"]["namespace"]
        return [rs for rs in self.items("replicasets", ns) if self.controller_uid(rs) == uid]

    def owned_pods(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        uid = rs["metadata"]["uid"]
        return [p for p in self.items("pods", rs["metadata"]["namespace"]) if self.controller_uid(p) == uid]

    @staticmethod
    def revision_of(obj: dict[str, Any]) -> int:
        try:
            return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
        except ValueError:
            return 0

    # ----- pods --------------------------------------------------------------------------------
    def fault_of(self, pod: dict[str, Any]) -> Fault:
        containers = pod["spec"].get("containers") or [{}]
        return self.faults.get(str(containers[0].get("image", "")), Fault())

    def pod_state(self, pod: dict[str, Any], at: float) -> PodState:
        rt = self.pod_rt[pod["metadata"]["uid"]]
        fault = self.fault_of(pod)
        age = at - rt.start
        if age < CREATE_SECONDS:
            return PodState("Pending", False, False, "ContainerCreating", 0, None, None, False)
        up = rt.start + CREATE_SECONDS
        if rt.stuck:
            return PodState("Running", False, True, None, 0, up, None, True)
        if fault.kind == "imagepull":
            reason = "ErrImagePull" if age < CREATE_SECONDS + 5 else "ImagePullBackOff"
            return PodState("Pending", False, False, reason, 0, None, None, True)
        if fault.kind in ("healthy", "slow_start"):
            ready_after = READY_SECONDS if fault.kind == "healthy" else max(fault.seconds, READY_SECONDS)
            return PodState("Running", age >= ready_after, True, None, 0, up, None, True)
        crash_at = CREATE_SECONDS + RUN_BEFORE_CRASH if fault.kind == "crashloop" else fault.seconds
        crash_at = max(crash_at, CREATE_SECONDS)
        if age < crash_at:
            return PodState("Running", age >= READY_SECONDS, True, None, 0, up, None, True)
        restarts, running, since, last_crash = _crashloop(age - crash_at)
        first_start = up if restarts == 0 else rt.start + crash_at + since - RUN_BEFORE_CRASH
        last = (first_start, rt.start + crash_at + (last_crash or 0.0))
        if running:
            return PodState("Running", False, True, None, restarts, rt.start + crash_at + since, last, True)
        return PodState("Running", False, False, "CrashLoopBackOff", restarts, None, last, True)

    def pod_ready_changes(self, pod: dict[str, Any]) -> list[float]:
        """Moments this pod's readiness may change (the controller must look again then)."""
        rt = self.pod_rt[pod["metadata"]["uid"]]
        fault = self.fault_of(pod)
        if rt.stuck or fault.kind in ("imagepull", "crashloop"):
            return []
        if fault.kind == "slow_start":
            return [rt.start + max(fault.seconds, READY_SECONDS)]
        moments = [rt.start + READY_SECONDS]
        if fault.kind == "crash_after":
            moments.append(rt.start + max(fault.seconds, CREATE_SECONDS))
        return moments

    def render_pod_status(self, pod: dict[str, Any], at: float) -> dict[str, Any]:
        rt = self.pod_rt[pod["metadata"]["uid"]]
        state = self.pod_state(pod, at)
        container = pod["spec"]["containers"][0]
        cstate: dict[str, Any]
        if state.running:
            cstate = {"running": {"startedAt": iso(state.running_since or rt.start)}}
        else:
            message = {
                "CrashLoopBackOff": f"back-off restarting failed container {container['name']} in pod "
                f"{pod['metadata']['name']}_{pod['metadata']['namespace']}",
                "ImagePullBackOff": f'Back-off pulling image "{container["image"]}"',
                "ErrImagePull": f'failed to pull and unpack image "{container["image"]}": not found',
            }.get(state.waiting_reason or "", "")
            cstate = {"waiting": {"reason": state.waiting_reason}}
            if message:
                cstate["waiting"]["message"] = message
        last_state: dict[str, Any] = {}
        if state.last_terminated:
            started, finished = state.last_terminated
            last_state = {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": iso(started),
                    "finishedAt": iso(finished),
                    "containerID": f"containerd://{uuid.uuid5(uuid.NAMESPACE_OID, pod['metadata']['uid']).hex}",
                }
            }
        ready = "True" if state.ready else "False"
        start = iso(rt.start)
        conditions: list[dict[str, Any]] = [
            {"type": "PodReadyToStartContainers", "status": "True" if state.has_ip else "False"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": ready},
            {"type": "ContainersReady", "status": ready},
            {"type": "PodScheduled", "status": "True"},
        ]
        for condition in conditions:
            condition.update({"lastProbeTime": None, "lastTransitionTime": start})
        status: dict[str, Any] = {
            "phase": state.phase,
            "conditions": conditions,
            "hostIP": "10.0.0.10",
            "hostIPs": [{"ip": "10.0.0.10"}],
            "startTime": start,
            "qosClass": "Burstable" if container.get("resources") else "BestEffort",
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": ""
                    if state.phase == "Pending"
                    else f"{container['image'].split(':')[0]}@sha256:{hashlib.sha256(container['image'].encode()).hexdigest()}",
                    "ready": state.ready,
                    "started": state.running,
                    "restartCount": state.restarts,
                    "state": cstate,
                    "lastState": last_state,
                }
            ],
        }
        if state.has_ip:
            status["podIP"] = rt.ip
            status["podIPs"] = [{"ip": rt.ip}]
        return status

    def create_pod(self, rs: dict[str, Any], at: float, *, stuck: bool = False) -> dict[str, Any]:
        meta = rs["metadata"]
        template = rs["spec"]["template"]
        suffix = uuid.uuid4().hex[:5].translate(str.maketrans("aeiou0136", "bcdfg2457"))
        name = f"{meta['name']}-{suffix}"
        pod_meta = self.new_meta(
            name,
            meta["namespace"],
            at,
            template["metadata"].get("labels"),
            template["metadata"].get("annotations"),
        )
        pod_meta["generateName"] = f"{meta['name']}-"
        pod_meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        spec = copy.deepcopy(template["spec"])
        spec["nodeName"] = "sim-node-1"
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        n = next(self._ips)
        self.pod_rt[pod_meta["uid"]] = PodRuntime(at, f"10.1.{n // 250}.{n % 250 + 2}", stuck)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}
        pod["status"] = self.render_pod_status(pod, at)
        self.put("pods", pod)
        return pod

    # ----- controllers -------------------------------------------------------------------------
    def sync(self, now: float) -> None:
        """Run the controllers at every moment something changed since the last sync, then at ``now``."""
        moment = self.synced_at
        for _ in range(100_000):  # a guard, not a limit a real world reaches
            upcoming = [m for m in self._moments() if moment < m <= now]
            if not upcoming:
                break
            moment = min(upcoming)
            self._reconcile(moment)
        self._reconcile(now)
        self.synced_at = max(self.synced_at, now)

    def _moments(self) -> Iterable[float]:
        for pod in self.objects["pods"].values():
            yield from self.pod_ready_changes(pod)
        for deployment in self.objects["deployments"].values():
            drt = self.deploy_rt[deployment["metadata"]["uid"]]
            yield drt.observe_at
            deadline = deployment["spec"].get("progressDeadlineSeconds")
            progressing = self._condition(deployment, "Progressing")
            if (
                deadline is not None
                and progressing
                and progressing["reason"]
                in (
                    "ReplicaSetUpdated",
                    "NewReplicaSetCreated",
                    "FoundNewReplicaSet",
                )
            ):
                yield drt.progress_at + deadline + 0.001

    def _reconcile(self, at: float) -> None:
        for _ in range(20):  # controllers react to each other at once, as the real ones do within ms
            changed = False
            for deployment in list(self.objects["deployments"].values()):
                changed |= self._sync_deployment(deployment, at)
            for rs in list(self.objects["replicasets"].values()):
                changed |= self._sync_replicaset(rs, at)
            if not changed:
                break
        for pod in self.objects["pods"].values():
            status = self.render_pod_status(pod, at)
            if status != pod.get("status"):
                pod["status"] = status
                pod["metadata"]["resourceVersion"] = self.next_rv()
        for rs in self.objects["replicasets"].values():
            self._update_rs_status(rs, at)
        for deployment in self.objects["deployments"].values():
            self.update_deployment_status(deployment, at)

    def _rs_counts(self, rs: dict[str, Any], at: float) -> tuple[int, int]:
        pods = self.owned_pods(rs)
        ready = sum(1 for p in pods if self.pod_state(p, at).ready)
        return len(pods), ready

    def _sync_replicaset(self, rs: dict[str, Any], at: float) -> bool:
        want = int(rs["spec"].get("replicas", 0))
        pods = self.owned_pods(rs)
        if len(pods) < want:
            for _ in range(want - len(pods)):
                self.create_pod(rs, at)
            return True
        if len(pods) > want:
            # the ReplicaSet controller deletes not-ready pods first, then the youngest
            def rank(pod: dict[str, Any]) -> tuple[bool, float]:
                return (self.pod_state(pod, at).ready, -self.pod_rt[pod["metadata"]["uid"]].start)

            for pod in sorted(pods, key=rank)[: len(pods) - want]:
                self.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
            return True
        return False

    def _update_rs_status(self, rs: dict[str, Any], at: float) -> None:
        total, ready = self._rs_counts(rs, at)
        status: dict[str, Any] = {
            "replicas": total,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if total:
            status["fullyLabeledReplicas"] = total
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        if status != rs.get("status"):
            rs["status"] = status
            rs["metadata"]["resourceVersion"] = self.next_rv()

    def _scale_rs(self, deployment: dict[str, Any], rs: dict[str, Any], replicas: int, at: float) -> bool:
        old = int(rs["spec"].get("replicas", 0))
        if old == replicas:
            return False
        rs["spec"]["replicas"] = replicas
        annotations = rs["metadata"].setdefault("annotations", {})
        annotations[DESIRED_REPLICAS] = str(deployment["spec"]["replicas"])
        annotations[MAX_REPLICAS] = str(deployment["spec"]["replicas"] + self._surge(deployment)[0])
        rs["metadata"]["generation"] = rs["metadata"].get("generation", 1) + 1
        rs["metadata"]["resourceVersion"] = self.next_rv()
        direction = "up" if replicas > old else "down"
        self.record_event(
            deployment,
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} from {old} to {replicas}",
            at,
        )
        return True

    @staticmethod
    def _surge(deployment: dict[str, Any]) -> tuple[int, int]:
        spec = deployment["spec"]
        desired = int(spec["replicas"])
        rolling = spec["strategy"].get("rollingUpdate") or {}
        surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
        unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable

    def create_replicaset(
        self, deployment: dict[str, Any], template: dict[str, Any], revision: int, at: float, replicas: int
    ) -> dict[str, Any]:
        meta = deployment["metadata"]
        digest = template_hash(template)
        tpl = copy.deepcopy(template)
        tpl["metadata"].setdefault("labels", {})[HASH_LABEL] = digest
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in SKIP_ANNOTATIONS}
        annotations.update(
            {
                DESIRED_REPLICAS: str(deployment["spec"]["replicas"]),
                MAX_REPLICAS: str(deployment["spec"]["replicas"] + self._surge(deployment)[0]),
                REVISION: str(revision),
            }
        )
        selector = copy.deepcopy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
        rs_meta = self.new_meta(f"{meta['name']}-{digest}", meta["namespace"], at, tpl["metadata"]["labels"])
        rs_meta["annotations"] = annotations
        rs_meta["generation"] = 1
        rs_meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": rs_meta,
            "spec": {"replicas": replicas, "selector": selector, "template": tpl},
            "status": {"replicas": 0, "observedGeneration": 1},
        }
        self.put("replicasets", rs)
        return rs

    def _sync_deployment(self, deployment: dict[str, Any], at: float) -> bool:
        drt = self.deploy_rt[deployment["metadata"]["uid"]]
        if at < drt.observe_at:
            return False  # the controller has not seen this generation yet
        spec = deployment["spec"]
        desired = int(spec["replicas"])
        all_rs = self.owned_replicasets(deployment)
        template = strip_hash(spec["template"])
        new_rs = next((rs for rs in all_rs if strip_hash(rs["spec"]["template"]) == template), None)
        old_rs = [rs for rs in all_rs if rs is not new_rs]
        changed = False
        if spec.get("paused"):
            if new_rs is not None and all(int(rs["spec"].get("replicas", 0)) == 0 for rs in old_rs):
                changed |= self._scale_rs(deployment, new_rs, desired, at)
            return changed
        max_old = max((self.revision_of(rs) for rs in old_rs), default=0)
        if new_rs is None:
            new_rs = self.create_replicaset(deployment, spec["template"], max_old + 1, at, 0)
            drt.progress_at = at
            self._set_condition(
                deployment,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{new_rs["metadata"]["name"]}"',
                at,
            )
            changed = True
        elif self.revision_of(new_rs) <= max_old:
            # an old template came back (rollout undo): the controller reuses its ReplicaSet
            annotations = new_rs["metadata"].setdefault("annotations", {})
            previous = annotations.get(REVISION)
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
            if previous:
                history.append(previous)
            annotations[REVISION_HISTORY] = ",".join(history)
            annotations[REVISION] = str(max_old + 1)
            for key, value in (deployment["metadata"].get("annotations") or {}).items():
                if key not in SKIP_ANNOTATIONS:
                    annotations[key] = value
            new_rs["metadata"]["resourceVersion"] = self.next_rv()
            drt.progress_at = at
            self._set_condition(
                deployment,
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                f'Found new replica set "{new_rs["metadata"]["name"]}"',
                at,
            )
            changed = True
        revision = new_rs["metadata"]["annotations"][REVISION]
        dep_annotations = deployment["metadata"].setdefault("annotations", {})
        if dep_annotations.get(REVISION) != revision:
            dep_annotations[REVISION] = revision
            deployment["metadata"]["resourceVersion"] = self.next_rv()
        old_rs.sort(key=lambda rs: rs["metadata"]["creationTimestamp"])
        if spec["strategy"].get("type") == "Recreate":
            changed |= self._recreate(deployment, new_rs, old_rs, at)
        else:
            changed |= self._rolling(deployment, new_rs, old_rs, desired, at)
        changed |= self._cleanup(deployment, old_rs)
        return changed

    def _recreate(
        self, deployment: dict[str, Any], new_rs: dict[str, Any], old_rs: list[dict[str, Any]], at: float
    ) -> bool:
        changed = False
        for rs in old_rs:
            changed |= self._scale_rs(deployment, rs, 0, at)
        if any(self.owned_pods(rs) for rs in old_rs):
            return changed
        return self._scale_rs(deployment, new_rs, int(deployment["spec"]["replicas"]), at) or changed

    def _rolling(
        self,
        deployment: dict[str, Any],
        new_rs: dict[str, Any],
        old_rs: list[dict[str, Any]],
        desired: int,
        at: float,
    ) -> bool:
        """The real controller's reconcileNewReplicaSet and reconcileOldReplicaSets."""
        surge, max_unavailable = self._surge(deployment)
        new_replicas = int(new_rs["spec"].get("replicas", 0))
        all_rs = [new_rs, *old_rs]

        def spec_total() -> int:
            return sum(int(rs["spec"].get("replicas", 0)) for rs in all_rs)

        if new_replicas > desired:
            return self._scale_rs(deployment, new_rs, desired, at)
        if new_replicas < desired:
            room = desired + surge - spec_total()
            if room > 0:
                return self._scale_rs(deployment, new_rs, min(new_replicas + room, desired), at)
        if sum(int(rs["spec"].get("replicas", 0)) for rs in old_rs) == 0:
            return False
        min_available = desired - max_unavailable
        _, new_ready = self._rs_counts(new_rs, at)
        new_unavailable = int(new_rs["spec"].get("replicas", 0)) - new_ready
        max_scaled_down = spec_total() - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        changed = False
        # first drop old pods that are not available anyway (they count against nothing)
        for rs in old_rs:
            if max_scaled_down <= 0:
                break
            replicas = int(rs["spec"].get("replicas", 0))
            _, ready = self._rs_counts(rs, at)
            unhealthy = min(max_scaled_down, replicas - ready)
            if unhealthy > 0:
                changed |= self._scale_rs(deployment, rs, replicas - unhealthy, at)
                max_scaled_down -= unhealthy
        available = sum(self._rs_counts(rs, at)[1] for rs in all_rs)
        budget = available - min_available
        for rs in old_rs:
            if budget <= 0:
                break
            replicas = int(rs["spec"].get("replicas", 0))
            step = min(replicas, budget)
            if step > 0:
                changed |= self._scale_rs(deployment, rs, replicas - step, at)
                budget -= step
        return changed

    def _cleanup(self, deployment: dict[str, Any], old_rs: list[dict[str, Any]]) -> bool:
        limit = deployment["spec"].get("revisionHistoryLimit")
        if limit is None:
            return False
        idle = [rs for rs in old_rs if int(rs["spec"].get("replicas", 0)) == 0 and not self.owned_pods(rs)]
        idle.sort(key=self.revision_of)
        changed = False
        for rs in idle[: max(0, len(idle) - int(limit))]:
            self.delete("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
            changed = True
        return changed

    @staticmethod
    def _condition(deployment: dict[str, Any], kind: str) -> dict[str, Any] | None:
        for condition in (deployment.get("status") or {}).get("conditions") or []:
            if condition["type"] == kind:
                return dict(condition)
        return None

    def _set_condition(  # noqa: PLR0917 - the condition's own fields, in their usual order
        self, deployment: dict[str, Any], kind: str, status: str, reason: str, message: str, at: float
    ) -> None:
        conditions = deployment.setdefault("status", {}).setdefault("conditions", [])
        current = next((c for c in conditions if c["type"] == kind), None)
        stamp = iso(at)
        if current is None:
            conditions.append(
                {
                    "type": kind,
                    "status": status,
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp,
                    "reason": reason,
                    "message": message,
                }
            )
            conditions.sort(key=lambda c: c["type"])  # Available before Progressing, as kubectl shows
            return
        if current["status"] != status:
            current["lastTransitionTime"] = stamp
        if (current["status"], current["reason"], current["message"]) != (status, reason, message):
            current["lastUpdateTime"] = stamp
        current.update({"status": status, "reason": reason, "message": message})

    def update_deployment_status(self, deployment: dict[str, Any], at: float) -> None:
        drt = self.deploy_rt[deployment["metadata"]["uid"]]
        if at < drt.observe_at:
            return
        before = copy.deepcopy(deployment.get("status") or {})
        spec = deployment["spec"]
        desired = int(spec["replicas"])
        all_rs = self.owned_replicasets(deployment)
        template = strip_hash(spec["template"])
        new_rs = next((rs for rs in all_rs if strip_hash(rs["spec"]["template"]) == template), None)
        total = ready = updated = 0
        spec_total = sum(int(rs["spec"].get("replicas", 0)) for rs in all_rs)
        for rs in all_rs:
            count, ready_count = self._rs_counts(rs, at)
            total += count
            ready += ready_count
            if rs is new_rs:
                updated = count
        status = deployment.setdefault("status", {})
        status["observedGeneration"] = deployment["metadata"]["generation"]
        counters = {
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, spec_total - ready),
        }
        for key, value in counters.items():  # the API omits zero counters
            if value:
                status[key] = value
            else:
                status.pop(key, None)
        _, max_unavailable = self._surge(deployment)
        if ready >= desired - max_unavailable:
            self._set_condition(
                deployment,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                at,
            )
        else:
            self._set_condition(
                deployment,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                at,
            )
        rs_name = new_rs["metadata"]["name"] if new_rs else deployment["metadata"]["name"]
        progressing = self._condition(deployment, "Progressing")
        if spec.get("paused"):
            self._set_condition(
                deployment, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", at
            )
        elif progressing and progressing["reason"] == "NewReplicaSetAvailable" and total == updated:
            pass  # a finished rollout stays finished, even if its pods die later (as in a real cluster)
        elif updated == desired and total == desired and ready == desired and new_rs is not None:
            self._set_condition(
                deployment,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                at,
            )
        elif (
            self._made_progress(before, counters)
            or progressing is None
            or progressing["reason"] == "DeploymentPaused"
        ):
            drt.progress_at = at
            self._set_condition(
                deployment,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                at,
            )
            for condition in status["conditions"]:
                if condition["type"] == "Progressing":
                    condition["lastUpdateTime"] = iso(at)
        elif (
            progressing["reason"] != "ProgressDeadlineExceeded"
            and spec.get("progressDeadlineSeconds") is not None
            and at > drt.progress_at + int(spec["progressDeadlineSeconds"])
        ):
            self._set_condition(
                deployment,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                at,
            )
        if status != before:
            deployment["metadata"]["resourceVersion"] = self.next_rv()

    @staticmethod
    def _made_progress(before: dict[str, Any], counters: dict[str, int]) -> bool:
        old_before = before.get("replicas", 0) - before.get("updatedReplicas", 0)
        old_now = counters["replicas"] - counters["updatedReplicas"]
        return (
            counters["updatedReplicas"] > before.get("updatedReplicas", 0)
            or old_now < old_before
            or counters["readyReplicas"] > before.get("readyReplicas", 0)
            or counters["availableReplicas"] > before.get("availableReplicas", 0)
        )

    # ----- writes from the API -----------------------------------------------------------------
    def spec_written(self, deployment: dict[str, Any], old_spec: dict[str, Any], at: float) -> None:
        """A client changed a Deployment: bump generation when the spec changed; the controller lags."""
        if deployment["spec"] != old_spec:
            deployment["metadata"]["generation"] = deployment["metadata"].get("generation", 1) + 1
            drt = self.deploy_rt[deployment["metadata"]["uid"]]
            drt.observe_at = at + OBSERVE_LAG
            if deployment["spec"].get("paused") != old_spec.get("paused") or deployment["spec"][
                "template"
            ] != old_spec.get("template"):
                drt.progress_at = at + OBSERVE_LAG
        deployment["metadata"]["resourceVersion"] = self.next_rv()

    # ----- load, health and metrics ------------------------------------------------------------
    def pods_for(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        return [
            p
            for p in self.items("pods", namespace)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]

    def deployment_load(self, deployment: dict[str, Any], at: float) -> tuple[int, float, float]:
        """Ready pods, offered load, capacity of the ready pods."""
        drt = self.deploy_rt[deployment["metadata"]["uid"]]
        ns = deployment["metadata"]["namespace"]
        pods = [
            p
            for p in self.items("pods", ns)
            if matches_selector(p["metadata"].get("labels") or {}, deployment["spec"]["selector"])
        ]
        ready = sum(1 for p in pods if self.pod_state(p, at).ready)
        return ready, drt.load_rps, ready * drt.pod_capacity_rps

    def service_health(self, namespace: str, name: str, at: float) -> tuple[int, dict[str, Any]]:
        deployment = self.get("deployments", namespace, name)
        if deployment is None:
            return 404, {"status": "unknown", "reason": f"no deployment {namespace}/{name}"}
        ready, load, capacity = self.deployment_load(deployment, at)
        body: dict[str, Any] = {
            "service": name,
            "ready_pods": ready,
            "load_rps": load,
            "capacity_rps": capacity,
        }
        if ready == 0:
            return 503, {**body, "status": "unavailable", "reason": "no ready pods"}
        if self.deploy_rt[deployment["metadata"]["uid"]].pod_capacity_rps > 0 and load > capacity:
            return 503, {
                **body,
                "status": "overloaded",
                "reason": f"load {load:g} rps > capacity {capacity:g} rps",
            }
        return 200, {**body, "status": "ok"}

    def pod_metrics(self, pod: dict[str, Any], at: float) -> dict[str, Any]:
        container = pod["spec"]["containers"][0]
        resources = container.get("resources") or {}
        request_cpu = parse_cpu_millis((resources.get("requests") or {}).get("cpu", "100m"))
        limit_cpu = parse_cpu_millis((resources.get("limits") or {}).get("cpu", request_cpu * 2))
        limit_mem = parse_memory_bytes((resources.get("limits") or {}).get("memory", "256Mi"))
        state = self.pod_state(pod, at)
        cpu = 1.0
        memory = limit_mem * 0.15
        if state.ready:
            owner = self._deployment_of(pod)
            if owner is not None:
                ready, load, capacity = self.deployment_load(owner, at)
                per_pod_capacity = capacity / ready if ready else 0
                if per_pod_capacity > 0:
                    utilisation = load / capacity
                    cpu = max(5.0, min(limit_cpu, request_cpu * utilisation))
                    memory = limit_mem * min(0.95, 0.35 + 0.4 * min(utilisation, 1.5))
                else:
                    cpu = request_cpu * 0.05
        elif state.running:
            cpu = request_cpu * 0.02
        return {
            "kind": "PodMetrics",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {
                "name": pod["metadata"]["name"],
                "namespace": pod["metadata"]["namespace"],
                "labels": pod["metadata"].get("labels") or {},
                "creationTimestamp": iso(at),
            },
            "timestamp": iso(at),
            "window": "30s",
            "containers": [
                {
                    "name": container["name"],
                    "usage": {"cpu": f"{round(cpu * 1_000_000)}n", "memory": f"{round(memory / 1024)}Ki"},
                }
            ],
        }

    def _deployment_of(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        rs_uid = self.controller_uid(pod)
        ns = pod["metadata"]["namespace"]
        rs = next((r for r in self.items("replicasets", ns) if r["metadata"]["uid"] == rs_uid), None)
        if rs is None:
            return None
        dep_uid = self.controller_uid(rs)
        return next((d for d in self.items("deployments", ns) if d["metadata"]["uid"] == dep_uid), None)
