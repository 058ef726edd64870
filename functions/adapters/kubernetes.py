"""Kubernetes operations the runbooks need, each the equivalent of one kubectl command.

``kubectl rollout restart`` / ``scale`` / ``rollout undo`` / ``rollout status --watch=false`` semantics, on
the official Python client (imported lazily: it costs ~3 s, so only steps that talk to a cluster pay it).
Responses are read as plain JSON (``_preload_content=False``) and summarised into ``kube_types`` models.

Mutations are idempotent under retry: restart is keyed by its ``at`` timestamp, scale by its target, undo by
``from_revision`` (the revision the caller saw). Dry runs send no mutating request at all: they read the
state and report what would change. API errors map to the named errors: 404 → DeploymentNotFound,
409 → re-read and retry, 429/5xx/timeouts → TransientError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from functions.adapters.kube_types import (
    Change,
    ContainerSummary,
    PodSummary,
    PodUsage,
    Revision,
    RolloutStatus,
)
from functions.core.errors import (
    DeploymentNotFound,
    NoRolloutHistory,
    RunbookError,
    TransientError,
    UnsafeToProceed,
)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
# kubectl keeps these from the Deployment and copies every other annotation from the target ReplicaSet
ANNOTATIONS_TO_SKIP = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
REQUEST_TIMEOUT = (3.05, 15)  # connect, read: well inside a step's Lambda timeout
CONFLICT_ATTEMPTS = 4


class KubeApiError(RunbookError):
    """The API refused the request for a reason retrying will not fix (401/403/400/422...)."""


class _Conflict(Exception):
    """409 (or a failed resourceVersion test): re-read and try again."""


def _selector_text(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _int(value: Any) -> int:
    return int(value or 0)


def _revision(obj: dict[str, Any]) -> int | None:
    text = (obj.get("metadata", {}).get("annotations") or {}).get(REVISION)
    return int(text) if text and text.isdigit() else None


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    clean = json.loads(json.dumps(template))
    labels = (clean.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return clean


def _images(template: dict[str, Any]) -> list[str]:
    return [c.get("image", "") for c in (template.get("spec") or {}).get("containers") or []]


def _quantity(value: Any) -> float:
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(str(value)))


class KubeOps:
    """Operations on one cluster, through a ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client as k8s

        self.api_client = api_client
        self.apps = k8s.AppsV1Api(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.custom = k8s.CustomObjectsApi(api_client)

    # ----- plumbing ----------------------------------------------------------------------------
    def _call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        missing: str | None = None,
        absent: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """Call the client, return the JSON body; map errors.

        ``missing``: the DeploymentNotFound message for a 404. ``absent``: statuses that mean "not there"
        (the call returns None).
        """
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            response = fn(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
            return json.loads(response.data or b"null")
        except ApiException as error:
            status = int(error.status or 0)
            reason = self._reason(error)
            if status in absent:
                return None
            if status == 404 and missing is not None:
                raise DeploymentNotFound(missing) from None
            if status == 409:
                raise _Conflict(reason) from None
            if status == 429 or status >= 500 or status == 0:
                raise TransientError(f"Kubernetes API {status}: {reason}") from None
            raise KubeApiError(f"Kubernetes API {status}: {reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise TransientError(f"Kubernetes API unreachable: {error}") from None

    @staticmethod
    def _reason(error: Any) -> str:
        try:
            return str(json.loads(error.body).get("message") or error.reason)
        except (TypeError, ValueError, AttributeError):
            return str(error.reason)

    def _deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return dict(
            self._call(
                self.apps.read_namespaced_deployment,
                name,
                namespace,
                missing=f"deployment {namespace}/{name} not found",
            )
        )

    def _owned_replicasets(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        """kubectl's GetAllReplicaSets: by the Deployment's selector, then only those it controls."""
        meta = deployment["metadata"]
        selector = (deployment["spec"].get("selector") or {}).get("matchLabels") or {}
        listing = self._call(
            self.apps.list_namespaced_replica_set, meta["namespace"], label_selector=_selector_text(selector)
        )
        owned = []
        for rs in listing.get("items") or []:
            for ref in rs["metadata"].get("ownerReferences") or []:
                if ref.get("controller") and ref.get("uid") == meta["uid"]:
                    owned.append(rs)
        return owned

    # ----- reads -------------------------------------------------------------------------------
    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        """The Deployment as the API returns it (JSON); raises DeploymentNotFound."""
        return self._deployment(namespace, name)

    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[PodSummary]:
        listing = self._call(
            self.core.list_namespaced_pod, namespace, label_selector=_selector_text(selector)
        )
        return [self._pod_summary(pod) for pod in listing.get("items") or []]

    @staticmethod
    def _pod_summary(pod: dict[str, Any]) -> PodSummary:
        meta, status = pod["metadata"], pod.get("status") or {}
        containers = []
        for cs in status.get("containerStatuses") or []:
            state = cs.get("state") or {}
            kind = next((k for k in ("running", "waiting", "terminated") if k in state), "unknown")
            last = (cs.get("lastState") or {}).get("terminated") or {}
            containers.append(
                ContainerSummary(
                    name=cs["name"],
                    image=cs.get("image", ""),
                    ready=bool(cs.get("ready")),
                    restart_count=_int(cs.get("restartCount")),
                    state=kind,
                    waiting_reason=(state.get("waiting") or {}).get("reason"),
                    last_termination_reason=last.get("reason"),
                    last_exit_code=last.get("exitCode"),
                    last_finished_at=last.get("finishedAt"),
                )
            )
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        return PodSummary(
            name=meta["name"],
            phase=status.get("phase", "Unknown"),
            ready=ready,
            restart_count=sum(c.restart_count for c in containers),
            waiting_reasons=[c.waiting_reason for c in containers if c.waiting_reason],
            containers=containers,
            pod_template_hash=(meta.get("labels") or {}).get(HASH_LABEL),
            created_at=meta.get("creationTimestamp"),
            ip=status.get("podIP"),
            terminating=bool(meta.get("deletionTimestamp")),
            node=(pod.get("spec") or {}).get("nodeName"),
        )

    def rollout_history(self, namespace: str, name: str) -> list[Revision]:
        """The Deployment's revisions (only ReplicaSets it controls), oldest first."""
        deployment = self._deployment(namespace, name)
        revisions = []
        for rs in self._owned_replicasets(deployment):
            number = _revision(rs)
            if number is None:
                continue
            meta = rs["metadata"]
            template = rs["spec"].get("template") or {}
            revisions.append(
                Revision(
                    revision=number,
                    replicaset=meta["name"],
                    created_at=meta.get("creationTimestamp"),
                    images=_images(template),
                    replicas=_int(rs["spec"].get("replicas")),
                    ready_replicas=_int((rs.get("status") or {}).get("readyReplicas")),
                    pod_template_hash=(meta.get("labels") or {}).get(HASH_LABEL),
                    change_cause=(meta.get("annotations") or {}).get(CHANGE_CAUSE),
                )
            )
        return sorted(revisions, key=lambda r: r.revision)

    def rollout_status(self, namespace: str, name: str) -> RolloutStatus:
        """``kubectl rollout status --watch=false``: counters count only once the generation is observed."""
        deployment = self._deployment(namespace, name)
        return self.status_of(deployment)

    @staticmethod
    def status_of(deployment: dict[str, Any]) -> RolloutStatus:
        """The verdict kubectl's DeploymentStatusViewer gives for this Deployment object."""
        name = deployment["metadata"]["name"]
        spec, status = deployment["spec"], deployment.get("status") or {}
        generation = _int(deployment["metadata"].get("generation"))
        observed = _int(status.get("observedGeneration"))
        desired = _int(spec.get("replicas", 1))
        replicas = _int(status.get("replicas"))
        updated = _int(status.get("updatedReplicas"))
        ready = _int(status.get("readyReplicas"))
        available = _int(status.get("availableReplicas"))
        progressing = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"),
            None,
        )
        state = "WAITING"
        if generation > observed:
            message = "Waiting for deployment spec update to be observed..."
        elif progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            state, message = "FAILED", f'deployment "{name}" exceeded its progress deadline'
        elif updated < desired:
            message = (
                f'Waiting for deployment "{name}" rollout to finish: '
                f"{updated} out of {desired} new replicas have been updated..."
            )
        elif replicas > updated:
            message = (
                f'Waiting for deployment "{name}" rollout to finish: '
                f"{replicas - updated} old replicas are pending termination..."
            )
        elif available < updated:
            message = (
                f'Waiting for deployment "{name}" rollout to finish: '
                f"{available} of {updated} updated replicas are available..."
            )
        else:
            state, message = "DONE", f'deployment "{name}" successfully rolled out'
        return RolloutStatus(
            state=state,
            message=message,
            generation=generation,
            observed_generation=observed,
            desired=desired,
            updated=updated,
            ready=ready,
            available=available,
            revision=_revision(deployment),
        )

    def pod_metrics(self, namespace: str, selector: dict[str, str]) -> list[PodUsage] | None:
        """CPU and memory per pod from metrics.k8s.io, with requests/limits; None without a metrics API."""
        usage = self._call(
            self.custom.list_namespaced_custom_object,
            "metrics.k8s.io",
            "v1beta1",
            namespace,
            "pods",
            label_selector=_selector_text(selector),
            # no metrics-server (404), not allowed to read it (403), its APIService down (503)
            absent=(404, 403, 503),
        )
        if usage is None:
            return None
        specs = {
            pod["metadata"]["name"]: pod
            for pod in (
                self._call(
                    self.core.list_namespaced_pod, namespace, label_selector=_selector_text(selector)
                ).get("items")
                or []
            )
        }
        result = []
        for item in usage.get("items") or []:
            name = item["metadata"]["name"]
            cpu = sum(_quantity((c.get("usage") or {}).get("cpu", 0)) for c in item.get("containers") or [])
            memory = sum(
                _quantity((c.get("usage") or {}).get("memory", 0)) for c in item.get("containers") or []
            )
            request_cpu: float | None = None
            limit_memory: int | None = None
            pod = specs.get(name)
            if pod is not None:
                resources = [c.get("resources") or {} for c in pod["spec"].get("containers") or []]
                cpu_requests = [r.get("requests", {}).get("cpu") for r in resources]
                memory_limits = [r.get("limits", {}).get("memory") for r in resources]
                if all(cpu_requests):
                    request_cpu = round(sum(_quantity(v) for v in cpu_requests) * 1000, 3)
                if all(memory_limits):
                    limit_memory = int(sum(_quantity(v) for v in memory_limits))
            result.append(
                PodUsage(
                    name=name,
                    cpu_millicores=round(cpu * 1000, 3),
                    memory_bytes=int(memory),
                    cpu_request_millicores=request_cpu,
                    memory_limit_bytes=limit_memory,
                )
            )
        return sorted(result, key=lambda u: u.name)

    # ----- changes -----------------------------------------------------------------------------
    def _retrying(self, what: str, attempt: Callable[[], Change]) -> Change:
        """Run ``attempt`` again (it re-reads the state) when the API reports a conflict."""
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                return attempt()
            except _Conflict:
                continue
        raise TransientError(f"{what}: the object kept changing underneath ({CONFLICT_ATTEMPTS} conflicts)")

    def restart(self, namespace: str, name: str, *, at: str, dry_run: bool) -> Change:
        """``kubectl rollout restart``: stamp ``restartedAt`` on the pod template (strategic merge patch).

        ``at`` (an ISO timestamp) is the idempotency key: a retry that finds it already set changes nothing.
        """
        return self._retrying(
            f"restart {namespace}/{name}", lambda: self._restart_once(namespace, name, at=at, dry_run=dry_run)
        )

    def _restart_once(self, namespace: str, name: str, *, at: str, dry_run: bool) -> Change:
        deployment = self._deployment(namespace, name)
        if deployment["spec"].get("paused"):
            raise UnsafeToProceed(
                f"deployment {namespace}/{name} is paused; a restart would not roll (resume it first)"
            )
        annotations = deployment["spec"]["template"].get("metadata", {}).get("annotations") or {}
        previous = annotations.get(RESTARTED_AT)
        before = {"restartedAt": previous, "revision": _revision(deployment)}
        after = {"restartedAt": at}
        if previous == at:
            return Change(
                action="restart",
                namespace=namespace,
                name=name,
                dry_run=dry_run,
                changed=False,
                before=before,
                after=after,
                summary=f"deployment {namespace}/{name} was already restarted at {at}",
            )
        if not dry_run:
            patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
            self._call(
                self.apps.patch_namespaced_deployment,
                name,
                namespace,
                patch,
                _content_type="application/strategic-merge-patch+json",
                missing=f"deployment {namespace}/{name} not found",
            )
        verb = "would restart" if dry_run else "restarted"
        return Change(
            action="restart",
            namespace=namespace,
            name=name,
            dry_run=dry_run,
            changed=True,
            before=before,
            after=after,
            summary=f"{verb} deployment {namespace}/{name} (restartedAt {previous or 'unset'} -> {at})",
        )

    def scale(self, namespace: str, name: str, replicas: int, *, dry_run: bool) -> Change:
        """``kubectl scale --replicas``: a merge patch on the scale subresource; at N already → unchanged."""
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        return self._retrying(
            f"scale {namespace}/{name}", lambda: self._scale_once(namespace, name, replicas, dry_run=dry_run)
        )

    def _scale_once(self, namespace: str, name: str, replicas: int, *, dry_run: bool) -> Change:
        missing = f"deployment {namespace}/{name} not found"
        current = self._call(self.apps.read_namespaced_deployment_scale, name, namespace, missing=missing)
        old = _int((current.get("spec") or {}).get("replicas"))
        before, after = {"replicas": old}, {"replicas": replicas}
        if old == replicas:
            return Change(
                action="scale",
                namespace=namespace,
                name=name,
                dry_run=dry_run,
                changed=False,
                before=before,
                after=after,
                summary=f"deployment {namespace}/{name} already has {replicas} replicas",
            )
        if not dry_run:
            self._call(
                self.apps.patch_namespaced_deployment_scale,
                name,
                namespace,
                {"spec": {"replicas": replicas}},
                _content_type="application/merge-patch+json",
                missing=missing,
            )
        verb = "would scale" if dry_run else "scaled"
        return Change(
            action="scale",
            namespace=namespace,
            name=name,
            dry_run=dry_run,
            changed=True,
            before=before,
            after=after,
            summary=f"{verb} deployment {namespace}/{name} from {old} to {replicas} replicas",
        )

    def undo(
        self,
        namespace: str,
        name: str,
        *,
        to_revision: int = 0,
        dry_run: bool,
        from_revision: int | None = None,
    ) -> Change:
        """``kubectl rollout undo [--to-revision]``, with kubectl's algorithm and patch.

        ``from_revision``: the revision the caller decided to leave. If the Deployment is no longer at it
        (a retry after success, or someone else acted), nothing is changed — rolling back "to the previous
        revision" twice would otherwise return to the bad one.
        """
        return self._retrying(
            f"roll back {namespace}/{name}",
            lambda: self._undo_once(namespace, name, to_revision, dry_run, from_revision),
        )

    def _undo_once(
        self, namespace: str, name: str, to_revision: int, dry_run: bool, from_revision: int | None
    ) -> Change:
        deployment = self._deployment(namespace, name)
        current_revision = _revision(deployment)
        current_template = deployment["spec"]["template"]
        current_images = _images(current_template)
        before: dict[str, Any] = {"revision": current_revision, "images": current_images}
        if deployment["spec"].get("paused"):
            raise UnsafeToProceed(
                f"deployment {namespace}/{name} is paused; kubectl refuses to roll back a paused deployment"
            )
        if from_revision is not None and current_revision != from_revision:
            return Change(
                action="undo",
                namespace=namespace,
                name=name,
                dry_run=dry_run,
                changed=False,
                before=before,
                after=before,
                summary=f"deployment {namespace}/{name} is at revision {current_revision}, "
                f"no longer {from_revision}: already rolled back (or changed by someone else)",
            )
        target = self._target_replicaset(deployment, to_revision)
        target_revision = _revision(target)
        template = _without_hash(target["spec"]["template"])
        target_images = _images(template)
        after: dict[str, Any] = {
            "revision": target_revision,
            "images": target_images,
            "replicaset": target["metadata"]["name"],
        }
        if _without_hash(current_template) == template:
            return Change(
                action="undo",
                namespace=namespace,
                name=name,
                dry_run=dry_run,
                changed=False,
                before=before,
                after=after,
                summary=f"deployment {namespace}/{name} already runs the template of revision {target_revision}",
            )
        annotations = {
            k: v
            for k, v in (deployment["metadata"].get("annotations") or {}).items()
            if k in ANNOTATIONS_TO_SKIP
        }
        annotations.update(
            {
                k: v
                for k, v in (target["metadata"].get("annotations") or {}).items()
                if k not in ANNOTATIONS_TO_SKIP
            }
        )
        if not dry_run:
            patch = [
                # our guard: the state we decided on is the state we change (kubectl has no such test)
                {
                    "op": "test",
                    "path": "/metadata/resourceVersion",
                    "value": deployment["metadata"]["resourceVersion"],
                },
                {"op": "replace", "path": "/spec/template", "value": template},
                {"op": "replace", "path": "/metadata/annotations", "value": annotations},
            ]
            try:
                self._call(
                    self.apps.patch_namespaced_deployment,
                    name,
                    namespace,
                    patch,
                    _content_type="application/json-patch+json",
                    missing=f"deployment {namespace}/{name} not found",
                )
            except KubeApiError as error:
                if re.search(r"\b422\b", str(error)) and "test" in str(error):
                    raise _Conflict(str(error)) from None
                raise
        verb = "would roll back" if dry_run else "rolled back"
        return Change(
            action="undo",
            namespace=namespace,
            name=name,
            dry_run=dry_run,
            changed=True,
            before=before,
            after=after,
            summary=f"{verb} deployment {namespace}/{name} from revision {current_revision} "
            f"({', '.join(current_images)}) to revision {target_revision} ({', '.join(target_images)})",
        )

    def _target_replicaset(self, deployment: dict[str, Any], to_revision: int) -> dict[str, Any]:
        """kubectl's deploymentRevision: the given revision, or the second newest."""
        name = deployment["metadata"]["name"]
        if to_revision < 0:
            raise NoRolloutHistory(f"unable to find specified revision {to_revision} in history")
        ranked = sorted(
            ((_revision(rs), rs) for rs in self._owned_replicasets(deployment) if _revision(rs) is not None),
            key=lambda pair: pair[0] or 0,
        )
        if to_revision > 0:
            for number, rs in ranked:
                if number == to_revision:
                    return rs
            raise NoRolloutHistory(f"unable to find specified revision {to_revision} in history of {name}")
        if len(ranked) < 2:
            raise NoRolloutHistory(f'no rollout history found for deployment "{name}"')
        return ranked[-2][1]


@lru_cache(maxsize=16)
def kube_for_cluster(cluster: str) -> KubeOps:
    """Operations on the EKS cluster ``cluster`` (one client per cluster per process)."""
    from functions.adapters import eks_auth

    return KubeOps(eks_auth.api_client(cluster))


def reset() -> None:
    """Forget cached clients (the sandbox, when it loads a new world)."""
    from functions.adapters import eks_auth

    kube_for_cluster.cache_clear()
    eks_auth.reset()
