"""EKS access: the cluster's endpoint and CA from DescribeCluster, and the bearer token ``aws eks get-token`` makes.

The token is ``k8s-aws-v1.`` + base64url (no padding) of an STS GetCallerIdentity URL presigned (60 s) with
the signed header ``x-k8s-aws-id: <cluster>``. The EKS authenticator accepts it for 15 minutes after its
X-Amz-Date; we use one for 14 and then sign a new one. Tokens are about wall-clock time, never the sandbox's
scaled clock. The ``kubernetes`` package is imported lazily, inside ``api_client`` only.
"""

from __future__ import annotations

import base64
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.signers import RequestSigner

from functions.core.clients import client, region

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format marker, not a secret
PRESIGN_SECONDS = 60
TOKEN_LIFETIME_SECONDS = 14 * 60  # EKS accepts 15; refresh a minute early
CLUSTER_ID_HEADER = "x-k8s-aws-id"


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float  # epoch seconds (wall clock)

    def fresh(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.expires_at


@dataclass(frozen=True)
class ClusterAccess:
    endpoint: str
    ca_data: str  # base64 PEM, as DescribeCluster returns it


def describe(cluster: str) -> ClusterAccess:
    """Endpoint and CA of ``cluster`` (eks:DescribeCluster through the one client factory)."""
    info = client("eks").describe_cluster(name=cluster)["cluster"]
    return ClusterAccess(
        endpoint=info["endpoint"].rstrip("/"),
        ca_data=(info.get("certificateAuthority") or {}).get("data", ""),
    )


def get_token(cluster: str, region_name: str | None = None, *, now: float | None = None) -> Token:
    """A fresh EKS bearer token for ``cluster``."""
    region_name = region_name or region()
    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials to sign the EKS token with")
    sts = client("sts", region_name)
    signer = RequestSigner(
        sts.meta.service_model.service_id,
        region_name,
        "sts",
        "v4",
        credentials,
        session.get_component("event_emitter"),
    )
    request = {
        "method": "GET",
        "url": f"https://sts.{region_name}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        "body": {},
        "headers": {CLUSTER_ID_HEADER: cluster},
        "context": {},
    }
    url = signer.generate_presigned_url(
        request, region_name=region_name, expires_in=PRESIGN_SECONDS, operation_name=""
    )
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    issued = time.time() if now is None else now
    return Token(TOKEN_PREFIX + encoded, issued + TOKEN_LIFETIME_SECONDS)


def _ca_file(ca_data: str) -> str:
    handle, path = tempfile.mkstemp(prefix="eks-ca-", suffix=".crt")
    with os.fdopen(handle, "wb") as out:
        out.write(base64.b64decode(ca_data))
    return path


def build_api_client(endpoint: str, ca_data: str, token_source: Callable[[], Token]) -> Any:
    """An ApiClient for ``endpoint`` that asks ``token_source`` for a new token whenever its token is stale."""
    from kubernetes import client as k8s

    configuration = k8s.Configuration()
    configuration.host = endpoint
    if endpoint.startswith("https://"):
        configuration.ssl_ca_cert = _ca_file(ca_data)
        configuration.verify_ssl = True
    current = [token_source()]
    configuration.api_key = {"BearerToken": current[0].value}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    token_lock = threading.Lock()

    def refresh(config: Any) -> None:  # the client calls this before every request
        with token_lock:
            if not current[0].fresh():
                current[0] = token_source()
                config.api_key["BearerToken"] = current[0].value

    configuration.refresh_api_key_hook = refresh
    return k8s.ApiClient(configuration)


_clients: dict[str, Any] = {}
_lock = threading.Lock()


def api_client(cluster: str) -> Any:
    """A ``kubernetes.client.ApiClient`` for ``cluster`` whose token refreshes itself; one per cluster."""
    with _lock:
        cached = _clients.get(cluster)
        if cached is None:
            access = describe(cluster)
            cached = build_api_client(access.endpoint, access.ca_data, lambda: get_token(cluster))
            _clients[cluster] = cached
        return cached


def reset() -> None:
    """Forget cached clients (tests and the sandbox, when the world changes)."""
    with _lock:
        for api in _clients.values():
            api.close()
        _clients.clear()
