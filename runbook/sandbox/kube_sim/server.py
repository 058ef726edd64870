"""The HTTP face of the simulated cluster: real Kubernetes API paths, JSON, Status errors and EKS-style auth."""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from functions.core import clock as core_clock
from runbook.sandbox.kube_sim import tables
from runbook.sandbox.kube_sim.cluster import (
    ApiError,
    Cluster,
    DeployRuntime,
    default_deployment_spec,
    iso,
    matches_selector,
    not_found,
)
from runbook.sandbox.kube_sim.patch import PatchError, apply_patch
from runbook.sandbox.kube_sim.world import load_world

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format marker, not a secret
TOKEN_LIFETIME = 15 * 60  # what the EKS authenticator accepts after X-Amz-Date, whatever X-Amz-Expires says
CLOCK_SKEW = 5 * 60

# resource -> (group, version, kind, namespaced, short names)
RESOURCES: dict[str, tuple[str, str, str, bool, list[str]]] = {
    "pods": ("", "v1", "Pod", True, ["po"]),
    "services": ("", "v1", "Service", True, ["svc"]),
    "events": ("", "v1", "Event", True, ["ev"]),
    "namespaces": ("", "v1", "Namespace", False, ["ns"]),
    "deployments": ("apps", "v1", "Deployment", True, ["deploy"]),
    "replicasets": ("apps", "v1", "ReplicaSet", True, ["rs"]),
    "networkpolicies": ("networking.k8s.io", "v1", "NetworkPolicy", True, ["netpol"]),
}
WRITABLE = {"deployments", "networkpolicies", "pods", "services"}
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _qualified(resource: str) -> str:
    group = RESOURCES[resource][0]
    return f"{resource}.{group}" if group else resource


def _status(error: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": error.message,
        "reason": error.reason,
        "code": error.code,
    }
    if error.details:
        body["details"] = error.details
    return body


def _invalid(resource: str, name: str, field: str, message: str) -> ApiError:
    kind = RESOURCES[resource][2]
    group = RESOURCES[resource][0]
    return ApiError(
        422,
        "Invalid",
        f'{kind}.{group or "core"} "{name}" is invalid: {field}: {message}',
        {"name": name, "group": group, "kind": kind, "causes": [{"field": field, "message": message}]},
    )


def _conflict(resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "group": RESOURCES[resource][0], "kind": resource},
    )


def parse_label_selector(text: str) -> Callable[[dict[str, str]], bool]:
    """``a=b,c!=d,e in (f,g),h notin (i),j,!k``."""
    terms: list[tuple[str, str, frozenset[str]]] = []  # key, operator, values
    for raw_term in re.findall(r"[^,(]+(?:\([^)]*\))?", text or ""):
        term = raw_term.strip()
        match = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if not term:
            continue
        if match:
            key, op, values = match.groups()
            terms.append((key, op, frozenset(v.strip() for v in values.split(","))))
        elif "!=" in term:
            key, value = term.split("!=", 1)
            terms.append((key.strip(), "notin", frozenset([value.strip()])))
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            terms.append((key.strip(), "in", frozenset([value.strip()])))
        elif term.startswith("!"):
            terms.append((term[1:].strip(), "absent", frozenset()))
        else:
            terms.append((term, "present", frozenset()))

    def matches(labels: dict[str, str]) -> bool:
        for key, op, values in terms:
            if op == "in" and labels.get(key) not in values:
                return False
            if op == "notin" and labels.get(key) in values:
                return False
            if (op == "present") != (key in labels) and op in ("present", "absent"):
                return False
        return True

    return matches


def parse_field_selector(text: str) -> Callable[[dict[str, Any]], bool]:
    """``metadata.name=x,involvedObject.kind=Pod,status.phase!=Running``."""
    checks: list[tuple[list[str], str, bool]] = []
    for term in (text or "").split(","):
        if not term.strip():
            continue
        negate = "!=" in term
        path, value = term.replace("==", "=").split("!=" if negate else "=", 1)
        checks.append((path.strip().split("."), value.strip(), negate))

    def matches(obj: dict[str, Any]) -> bool:
        for path, value, negate in checks:
            node: Any = obj
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            if (str(node if node is not None else "") == value) == negate:
                return False
        return True

    return matches


def check_token(header: str, now: float) -> str | None:
    """None when the bearer token is an acceptable EKS token, else why not."""
    if not header.startswith("Bearer "):
        return "no bearer token"
    token = header[len("Bearer ") :].strip()
    if not token.startswith(TOKEN_PREFIX):
        return f"token does not start with {TOKEN_PREFIX}"
    encoded = token[len(TOKEN_PREFIX) :]
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError:
        return "token is not base64url"
    parsed = urlparse(url)
    query = {k.lower(): v[0] for k, v in parse_qs(parsed.query).items()}
    if parsed.scheme != "https" or not re.fullmatch(
        r"sts(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?", parsed.netloc
    ):
        return "token URL is not an STS endpoint"
    if query.get("action") != "GetCallerIdentity":
        return "token URL is not GetCallerIdentity"
    if "x-k8s-aws-id" not in query.get("x-amz-signedheaders", "").split(";"):
        return "x-k8s-aws-id is not a signed header"
    if not query.get("x-amz-signature") or not query.get("x-amz-credential"):
        return "token URL is not signed"
    try:
        signed = datetime.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        int(query["x-amz-expires"])
    except (KeyError, ValueError):
        return "token URL lacks X-Amz-Date or X-Amz-Expires"
    if now > signed + TOKEN_LIFETIME:
        return "token expired"
    if signed > now + CLOCK_SKEW:
        return "token signed in the future"
    return None


class KubeSimulator:
    """A Kubernetes API server on loopback backed by a simulated cluster (see the package docstring)."""

    def __init__(
        self,
        clock: Callable[[], float] = core_clock.now_epoch,
        *,
        require_token: bool = True,
        tls: bool = False,
    ) -> None:
        self.clock = clock
        self.require_token = require_token
        self.tls = tls
        self.ca_data = ""  # with tls: the server certificate, base64 PEM (what DescribeCluster calls CA data)
        self.cluster = Cluster(clock)
        self.mutations: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []  # (verb, path) of every API request, for tests
        self.url = ""
        self._failures: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle ---------------------------------------------------------------------------
    def start(self) -> str:
        """Serve on 127.0.0.1 (a free port); returns the base URL."""
        if self._server is not None:
            return self.url
        handler = type("BoundHandler", (_Handler,), {"sim": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        scheme = "http"
        if self.tls:
            from runbook.sandbox.kube_sim.tls import server_context

            context, self.ca_data = server_context()
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="kube-sim", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> KubeSimulator:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def load(self, world: dict[str, Any]) -> None:
        """Replace the cluster with ``world`` (settled as of now) and forget recorded mutations."""
        with self.cluster.lock:
            load_world(self.cluster, world, self.clock())
            self.mutations.clear()
            self._failures.clear()
            self.requests.clear()

    def inject_failure(
        self, code: int, *, times: int = 1, verb: str | None = None, path_contains: str = ""
    ) -> None:
        """Answer the next ``times`` matching API requests with ``code`` (a Status), changing nothing.

        For error paths: 429 throttling, 500/503 faults, 409 conflicts. Matching requests still count in
        ``requests`` and, if mutating, in ``mutations`` (with the injected code).
        """
        with self.cluster.lock:
            self._failures.append({"code": code, "times": times, "verb": verb, "path": path_contains})

    def _injected(self, verb: str, path: str) -> ApiError | None:
        for failure in self._failures:
            if failure["times"] > 0 and failure["verb"] in (None, verb) and failure["path"] in path:
                failure["times"] -= 1
                reason = {409: "Conflict", 429: "TooManyRequests", 503: "ServiceUnavailable"}.get(
                    failure["code"], "InternalError"
                )
                return ApiError(
                    failure["code"], reason, f"injected failure {failure['code']} for {verb} {path}"
                )
        return None

    # ----- views for the rest of the sandbox ---------------------------------------------------
    def _synced(self) -> float:
        now = self.clock()
        self.cluster.sync(now)
        return now

    def pod_ips(self, namespace: str, selector: dict[str, str]) -> dict[str, bool]:
        """Pod IP -> ready, for pods that have an IP (what ELB target health reflects)."""
        with self.cluster.lock:
            now = self._synced()
            result = {}
            for pod in self.cluster.pods_for(namespace, selector):
                ip = (pod.get("status") or {}).get("podIP")
                if ip:
                    result[ip] = self.cluster.pod_state(pod, now).ready
            return result

    def ready_pod_ips(self, namespace: str, selector: dict[str, str]) -> list[str]:
        return sorted(ip for ip, ready in self.pod_ips(namespace, selector).items() if ready)

    def service_health(self, namespace: str, deployment: str) -> tuple[int, dict[str, Any]]:
        """HTTP status and body of the service's health endpoint (503 when down or overloaded)."""
        with self.cluster.lock:
            return self.cluster.service_health(namespace, deployment, self._synced())

    def set_load(self, namespace: str, deployment: str, rps: float) -> None:
        """Change the offered load of a deployment (a traffic spike, or its end)."""
        with self.cluster.lock:
            obj = self.cluster.get("deployments", namespace, deployment)
            if obj is None:
                raise KeyError(f"{namespace}/{deployment}")
            self.cluster.deploy_rt[obj["metadata"]["uid"]].load_rps = rps

    def objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """A settled deep copy of the stored objects (tests compare worlds with it)."""
        with self.cluster.lock:
            self._synced()
            return copy.deepcopy(self.cluster.items(resource, namespace))

    # ----- request handling --------------------------------------------------------------------
    def handle(
        self, verb: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes | Iterator[bytes]]:
        """One API request: status code, content type, and the body (an iterator of chunks for a watch)."""
        parsed = urlparse(raw_path)
        path = unquote(parsed.path).rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        if path.startswith("/sandbox/health/"):
            parts = path.split("/")
            if len(parts) < 5:
                return self._json(
                    404, {"status": "unknown", "reason": "use /sandbox/health/NAMESPACE/DEPLOYMENT"}
                )
            code, payload = self.service_health(parts[3], parts[4])
            return self._json(code, payload)
        if self.require_token:
            problem = check_token(headers.get("authorization", ""), time.time())
            if problem:
                return self._json(401, _status(ApiError(401, "Unauthorized", f"Unauthorized: {problem}")))
        if verb == "GET" and query.get("watch") in ("true", "1"):
            with self.cluster.lock:
                self.requests.append((verb, path))
                try:
                    target = self._collection(path)
                except ApiError as error:
                    return self._json(error.code, _status(error))
            return (
                200,
                "application/json",
                self._watch(target, query, "as=Table" in headers.get("accept", "")),
            )
        with self.cluster.lock:
            self.requests.append((verb, path))
            now = self._synced()
            content_type = headers.get("content-type", "")
            decoded: Any = None
            if verb in ("POST", "PUT", "PATCH", "DELETE"):
                try:
                    decoded = json.loads(body) if body else None
                except ValueError:
                    return self._json(400, _status(ApiError(400, "BadRequest", "the body is not JSON")))
                dry_run = query.get("dryRun") == "All"
                entry = {
                    "verb": verb,
                    "path": path,
                    "content_type": content_type,
                    "body": decoded,
                    "time": now,
                }
                if dry_run:
                    entry["dry_run"] = True
                self.mutations.append(entry)
            try:
                injected = self._injected(verb, path)
                if injected is not None:
                    raise injected
                code, payload = self._route(verb, path, query, headers, decoded, now=now)
            except ApiError as error:
                code, payload = error.code, _status(error)
            except PatchError as error:
                code, payload = 422, _status(ApiError(422, "Invalid", str(error)))
            if verb in ("POST", "PUT", "PATCH", "DELETE"):
                self.mutations[-1]["code"] = code
            if isinstance(payload, str):
                return code, "text/plain", payload.encode()
            return self._json(code, payload)

    @staticmethod
    def _json(code: int, payload: Any) -> tuple[int, str, bytes]:
        return code, "application/json", json.dumps(payload).encode()

    def _route(
        self, verb: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any, *, now: float
    ) -> tuple[int, Any]:
        discovery = self._discovery(path)
        if discovery is not None:
            if verb != "GET":
                raise ApiError(405, "MethodNotAllowed", f"{verb} is not allowed on {path}")
            return 200, discovery
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if group == "metrics.k8s.io" and version == "v1beta1":
            return self._metrics(rest, query, now)
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        resource = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if resource == "namespaces" and namespace is None and len(rest) == 2:
            name = rest[1]
        spec = RESOURCES.get(resource)
        if spec is None or (spec[0], spec[1]) != (group, version):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        wants_table = "as=Table" in headers.get("accept", "")
        dry_run = query.get("dryRun") == "All"
        if name is None:
            if verb == "GET":
                return 200, self._list(resource, namespace, query, now, wants_table)
            if verb == "POST" and namespace is not None and resource in WRITABLE:
                return self._create(resource, namespace, body, now, dry_run)
            raise ApiError(405, "MethodNotAllowed", f"{verb} is not supported on {resource}")
        key_ns = namespace or ""
        if resource != "namespaces" and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        obj = self.cluster.get(resource, key_ns, name)
        if obj is None:
            raise not_found(_qualified(resource), name)
        if sub == "scale" and resource == "deployments":
            return self._scale(
                verb=verb, deployment=obj, headers=headers, body=body, now=now, dry_run=dry_run
            )
        if sub == "log" and resource == "pods" and verb == "GET":
            return 200, self._pod_log(obj, now)
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if verb == "GET":
            if wants_table:
                return 200, tables.to_table(resource, [obj], now, obj["metadata"]["resourceVersion"])
            return 200, obj
        if resource not in WRITABLE or sub == "status":
            raise ApiError(405, "MethodNotAllowed", f"{verb} is not supported on {resource}/{sub or ''}")
        if verb == "DELETE":
            return self._delete(resource, obj, dry_run)
        if verb == "PATCH":
            updated = apply_patch(headers.get("content-type", ""), obj, body)
            return self._replace(resource, obj, updated, now, dry_run)
        if verb == "PUT":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the body must be an object")
            if body.get("metadata", {}).get("name") not in (None, name):
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            return self._replace(resource, obj, body, now, dry_run)
        raise ApiError(405, "MethodNotAllowed", f"{verb} is not supported")

    # ----- watch -------------------------------------------------------------------------------
    def _collection(self, path: str) -> tuple[str, str | None]:
        """(resource, namespace) of a collection path a client may watch."""
        parts = path.strip("/").split("/")
        rest = parts[2:] if parts[:2] == ["api", "v1"] else parts[3:] if parts[0] == "apis" else []
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if len(rest) != 1 or rest[0] not in RESOURCES:
            raise ApiError(405, "MethodNotAllowed", f"watch is supported on collections only, not {path}")
        return rest[0], namespace

    def _watch(self, target: tuple[str, str | None], query: dict[str, str], table: bool) -> Iterator[bytes]:
        """Stream ADDED/MODIFIED/DELETED events by polling the simulated cluster (real seconds)."""
        resource, namespace = target
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""))
        since = int(query.get("resourceVersion") or 0)
        deadline = time.monotonic() + min(float(query.get("timeoutSeconds") or 60), 300)
        seen: dict[str, tuple[str, dict[str, Any]]] = {}
        first = True
        while time.monotonic() < deadline and self._server is not None:
            lines = []
            with self.cluster.lock:
                now = self._synced()
                current = {
                    o["metadata"]["name"] + "/" + o["metadata"].get("namespace", ""): o
                    for o in self.cluster.items(resource, namespace)
                    if labels(o["metadata"].get("labels") or {}) and fields(o)
                }
                events: list[tuple[str, dict[str, Any]]] = []
                for key, obj in current.items():
                    rv = obj["metadata"]["resourceVersion"]
                    if key not in seen:
                        if not first or since == 0 or int(rv) > since:
                            events.append(("ADDED" if since == 0 or not first else "MODIFIED", obj))
                    elif seen[key][0] != rv:
                        events.append(("MODIFIED", obj))
                for key in set(seen) - set(current):
                    events.append(("DELETED", seen[key][1]))
                seen = {
                    key: (o["metadata"]["resourceVersion"], copy.deepcopy(o)) for key, o in current.items()
                }
                for kind, obj in events:
                    shown = (
                        tables.to_table(resource, [obj], now, obj["metadata"]["resourceVersion"])
                        if table
                        else obj
                    )
                    lines.append(json.dumps({"type": kind, "object": shown}).encode() + b"\n")
            first = False
            if lines:
                yield b"".join(lines)
            time.sleep(0.05)

    # ----- reads -------------------------------------------------------------------------------
    def _list(
        self, resource: str, namespace: str | None, query: dict[str, str], now: float, table: bool
    ) -> dict[str, Any]:
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""))
        items = self.cluster.items(resource, namespace)
        if resource == "events":
            items = items + self._pod_events(namespace, now)
        items = [o for o in items if labels(o["metadata"].get("labels") or {}) and fields(o)]
        rv = self.cluster.next_rv()
        if table:
            return tables.to_table(resource, items, now, rv)
        group, version, kind, _, _ = RESOURCES[resource]
        return {
            "kind": f"{kind}List",
            "apiVersion": f"{group}/{version}" if group else version,
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    def _pod_events(self, namespace: str | None, now: float) -> list[dict[str, Any]]:
        """Warnings the kubelet would be emitting now (made on read, so they never pile up)."""
        events = []
        for pod in self.cluster.items("pods", namespace):
            status = pod.get("status") or {}
            for container in status.get("containerStatuses") or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                reason = waiting.get("reason")
                if reason == "CrashLoopBackOff":
                    event = ("BackOff", waiting.get("message", "Back-off restarting failed container"))
                elif reason in ("ImagePullBackOff", "ErrImagePull"):
                    event = ("Failed", f"Error: {reason}")
                elif status.get("phase") == "Running" and not container.get("ready"):
                    event = ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503")
                else:
                    continue
                meta = pod["metadata"]
                events.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Event",
                        "metadata": {
                            "name": f"{meta['name']}.kubelet-{event[0].lower()}",
                            "namespace": meta["namespace"],
                            "uid": f"{meta['uid'][:-8]}{event[0][:8].lower():0>8}",
                            "resourceVersion": meta["resourceVersion"],
                            "creationTimestamp": meta["creationTimestamp"],
                        },
                        "involvedObject": {
                            "apiVersion": "v1",
                            "kind": "Pod",
                            "name": meta["name"],
                            "namespace": meta["namespace"],
                            "uid": meta["uid"],
                            "fieldPath": f"spec.containers{{{container['name']}}}",
                        },
                        "reason": event[0],
                        "message": event[1],
                        "source": {"component": "kubelet", "host": "sim-node-1"},
                        "firstTimestamp": meta["creationTimestamp"],
                        "lastTimestamp": iso(now),
                        "count": max(1, int(container.get("restartCount", 0))),
                        "type": "Warning",
                        "reportingComponent": "kubelet",
                        "reportingInstance": "sim-node-1",
                    }
                )
        return events

    def _pod_log(self, pod: dict[str, Any], now: float) -> str:
        state = self.cluster.pod_state(pod, now)
        image = pod["spec"]["containers"][0]["image"]
        if state.waiting_reason in ("ImagePullBackOff", "ErrImagePull", "ContainerCreating"):
            raise ApiError(
                400,
                "BadRequest",
                f'container "{pod["spec"]["containers"][0]["name"]}" in pod "{pod["metadata"]["name"]}" is waiting '
                f"to start: {state.waiting_reason}",
            )
        lines = [f"starting {image}", "listening on :8080"]
        if state.last_terminated or state.waiting_reason == "CrashLoopBackOff":
            lines.append("FATAL: unhandled exception in request handler; exiting with status 1")
        elif not state.ready:
            lines.append("WARN: worker pool exhausted; health check failing")
        return "\n".join(lines) + "\n"

    def _metrics(self, rest: list[str], query: dict[str, str], now: float) -> tuple[int, Any]:
        if not self.cluster.metrics_api:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if rest[0] != "pods":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        labels = parse_label_selector(query.get("labelSelector", ""))
        pods = [
            p
            for p in self.cluster.items("pods", namespace)
            if labels(p["metadata"].get("labels") or {}) and (p.get("status") or {}).get("phase") == "Running"
        ]
        if len(rest) > 1:
            match = [p for p in pods if p["metadata"]["name"] == rest[1]]
            if not match:
                raise not_found("pods.metrics.k8s.io", rest[1])
            return 200, self.cluster.pod_metrics(match[0], now)
        return 200, {
            "kind": "PodMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [self.cluster.pod_metrics(p, now) for p in pods],
        }

    # ----- writes ------------------------------------------------------------------------------
    def _validate_deployment(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        name = obj["metadata"]["name"]
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise _invalid("deployments", name, "spec", "Required value")
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise _invalid("deployments", name, "spec.replicas", f"Invalid value: {replicas!r}: must be >= 0")
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        ):
            raise _invalid("deployments", name, "spec.selector", "Required value")
        if old is not None and selector != old["spec"]["selector"]:
            raise _invalid("deployments", name, "spec.selector", "Invalid value: field is immutable")
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not matches_selector(labels, selector):
            raise _invalid(
                "deployments",
                name,
                "spec.template.metadata.labels",
                "Invalid value: `selector` does not match template `labels`",
            )
        containers = (template.get("spec") or {}).get("containers") or []
        if not containers or any(not c.get("name") or not c.get("image") for c in containers):
            raise _invalid(
                "deployments", name, "spec.template.spec.containers", "Required value: name and image"
            )

    def _replace(
        self,
        resource: str,
        old: dict[str, Any],
        new: dict[str, Any],
        now: float,
        dry_run: bool,
    ) -> tuple[int, Any]:
        name = old["metadata"]["name"]
        sent_rv = (new.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise _conflict(resource, name)
        updated = copy.deepcopy(new)
        meta = updated.setdefault("metadata", {})
        for key in ("name", "namespace", "uid", "creationTimestamp", "generation", "ownerReferences"):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
        updated["apiVersion"], updated["kind"] = old["apiVersion"], old["kind"]
        if "status" in old:
            updated["status"] = copy.deepcopy(old["status"])
        if resource == "deployments":
            self._validate_deployment(updated, old)
            default_deployment_spec(updated["spec"])
        if dry_run:
            if updated.get("spec") != old.get("spec") and "generation" in meta:
                meta["generation"] += 1
            return 200, updated
        old_spec = copy.deepcopy(old.get("spec"))
        old.clear()
        old.update(updated)
        if resource == "deployments":
            self.cluster.spec_written(old, old_spec or {}, now)
        else:
            old["metadata"]["resourceVersion"] = self.cluster.next_rv()
        self.cluster.sync(now)
        return 200, old

    def _scale_object(self, deployment: dict[str, Any]) -> dict[str, Any]:
        meta = deployment["metadata"]
        selector = ",".join(
            f"{k}={v}" for k, v in deployment["spec"]["selector"].get("matchLabels", {}).items()
        )
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "creationTimestamp": meta["creationTimestamp"],
            },
            "spec": {"replicas": deployment["spec"]["replicas"]},
            "status": {"replicas": (deployment.get("status") or {}).get("replicas", 0), "selector": selector},
        }

    def _scale(
        self,
        *,
        verb: str,
        deployment: dict[str, Any],
        headers: dict[str, str],
        body: Any,
        now: float,
        dry_run: bool,
    ) -> tuple[int, Any]:
        scale = self._scale_object(deployment)
        if verb == "GET":
            return 200, scale
        if verb == "PATCH":
            content_type = headers.get("content-type", "")
            if "strategic-merge-patch" in content_type:
                content_type = "application/merge-patch+json"  # Scale has no list fields: same result
            wanted = apply_patch(content_type, scale, body)
        elif verb == "PUT" and isinstance(body, dict):
            wanted = body
        else:
            raise ApiError(405, "MethodNotAllowed", f"{verb} is not supported on deployments/scale")
        name = deployment["metadata"]["name"]
        sent_rv = (wanted.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != deployment["metadata"]["resourceVersion"]:
            raise _conflict("deployments", name)
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise _invalid("deployments", name, "spec.replicas", f"Invalid value: {replicas!r}: must be >= 0")
        if dry_run:
            scale["spec"]["replicas"] = replicas
            return 200, scale
        old_spec = copy.deepcopy(deployment["spec"])
        deployment["spec"]["replicas"] = replicas
        self.cluster.spec_written(deployment, old_spec, now)
        self.cluster.sync(now)
        return 200, self._scale_object(deployment)

    def _create(self, resource: str, namespace: str, body: Any, now: float, dry_run: bool) -> tuple[int, Any]:
        if not isinstance(body, dict) or not (body.get("metadata") or {}).get("name"):
            raise ApiError(422, "Invalid", f"{resource}: metadata.name: Required value")
        if self.cluster.get("namespaces", "", namespace) is None:
            raise not_found("namespaces", namespace)
        name = body["metadata"]["name"]
        if self.cluster.get(resource, namespace, name) is not None:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{_qualified(resource)} "{name}" already exists',
                {"name": name, "group": RESOURCES[resource][0], "kind": resource},
            )
        group, version, kind, _, _ = RESOURCES[resource]
        obj = copy.deepcopy(body)
        given = obj.get("metadata") or {}
        obj["metadata"] = self.cluster.new_meta(
            name, namespace, now, given.get("labels"), given.get("annotations")
        )
        obj["apiVersion"] = f"{group}/{version}" if group else version
        obj["kind"] = kind
        if resource == "deployments":
            self._validate_deployment(obj, None)
            default_deployment_spec(obj["spec"])
            obj["metadata"]["generation"] = 1
            obj["status"] = {}
        if dry_run:
            return 201, obj
        if resource == "deployments":
            self.cluster.deploy_rt[obj["metadata"]["uid"]] = DeployRuntime(
                observe_at=now + 1.0, progress_at=now
            )
        if resource == "pods":
            raise ApiError(405, "MethodNotAllowed", "the simulator creates pods through ReplicaSets only")
        self.cluster.put(resource, obj)
        self.cluster.sync(now)
        return 201, obj

    def _delete(self, resource: str, obj: dict[str, Any], dry_run: bool) -> tuple[int, Any]:
        meta = obj["metadata"]
        if not dry_run:
            self.cluster.delete(resource, meta.get("namespace", ""), meta["name"])
            if resource == "deployments":
                for rs in self.cluster.owned_replicasets(obj):
                    for pod in self.cluster.owned_pods(rs):
                        self.cluster.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
                    self.cluster.delete("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
        if resource in ("pods", "deployments"):
            return 200, obj
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": meta["name"],
                "group": RESOURCES[resource][0],
                "kind": resource,
                "uid": meta["uid"],
            },
        }

    # ----- discovery ---------------------------------------------------------------------------
    def _discovery(self, path: str) -> dict[str, Any] | None:
        if path == "/version":
            return {
                "major": "1",
                "minor": "32",
                "gitVersion": "v1.32.0-sim",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.23.4",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.split("://", 1)[-1]}
                ],
            }
        groups = self._groups()
        if path == "/apis":
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g, v) for g, v in groups],
            }
        for group, version in groups:
            if path == f"/apis/{group}":
                return {"kind": "APIGroup", "apiVersion": "v1", **self._group(group, version)}
            if path == f"/apis/{group}/{version}":
                return self._resource_list(group, version)
        if path == "/api/v1":
            return self._resource_list("", "v1")
        return None

    def _groups(self) -> list[tuple[str, str]]:
        groups = [("apps", "v1"), ("networking.k8s.io", "v1")]
        if self.cluster.metrics_api:
            groups.append(("metrics.k8s.io", "v1beta1"))
        return groups

    @staticmethod
    def _group(group: str, version: str) -> dict[str, Any]:
        gv = {"groupVersion": f"{group}/{version}", "version": version}
        return {"name": group, "versions": [gv], "preferredVersion": gv}

    @staticmethod
    def _resource_list(group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        if group == "metrics.k8s.io":
            resources = [
                {
                    "name": "pods",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "PodMetrics",
                    "verbs": ["get", "list"],
                }
            ]
        for name, (g, v, kind, namespaced, short) in RESOURCES.items():
            if (g, v) != (group, version):
                continue
            entry: dict[str, Any] = {
                "name": name,
                "singularName": kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ALL_VERBS if name in WRITABLE else ["get", "list", "watch"],
                "shortNames": short,
            }
            if name in ("pods", "services", "deployments", "replicasets"):
                entry["categories"] = ["all"]
            resources.append(entry)
            if name == "deployments":
                resources.append(
                    {
                        "name": "deployments/scale",
                        "singularName": "",
                        "namespaced": True,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
                resources.append(
                    {
                        "name": "deployments/status",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "Deployment",
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if name == "pods":
                resources.append(
                    {
                        "name": "pods/log",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "Pod",
                        "verbs": ["get"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }


class _Handler(BaseHTTPRequestHandler):
    sim: KubeSimulator
    protocol_version = "HTTP/1.1"  # keep-alive, as client-go and urllib3 expect

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        payload: bytes | Iterator[bytes]
        try:
            code, content_type, payload = self.sim.handle(self.command, self.path, headers, body)
        except Exception as error:  # a simulator bug must answer 500, not hang the client
            code, content_type = 500, "application/json"
            payload = json.dumps(
                _status(ApiError(500, "InternalError", f"simulator error: {error!r}"))
            ).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Audit-Id", "00000000-0000-0000-0000-000000000000")
        if isinstance(payload, bytes):
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in payload:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped watching

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``mutations`` and ``requests`` instead of a log."""
