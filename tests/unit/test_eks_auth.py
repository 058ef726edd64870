"""The EKS bearer token: its format, what the simulator (like the EKS authenticator) accepts, and refresh."""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlparse

from functions.adapters import eks_auth
from functions.adapters.eks_auth import Token, build_api_client, get_token
from runbook.sandbox.kube_sim import KubeSimulator, check_token


def _decode(token: str) -> tuple[str, dict[str, str]]:
    encoded = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path}", {
        k: v[0] for k, v in parse_qs(parsed.query).items()
    }


def test_the_token_is_a_presigned_get_caller_identity_url_with_the_cluster_header_signed():
    # Given / When
    before = time.time()
    token = get_token("prod-cluster", "eu-west-1")
    # Then
    assert token.value.startswith("k8s-aws-v1.")
    assert "=" not in token.value  # base64url without padding, as aws eks get-token makes it
    endpoint, query = _decode(token.value)
    assert endpoint == "https://sts.eu-west-1.amazonaws.com/"
    assert (query["Action"], query["Version"]) == ("GetCallerIdentity", "2011-06-15")
    assert query["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].startswith("testing/")
    assert query["X-Amz-Credential"].endswith("/eu-west-1/sts/aws4_request")
    assert len(query["X-Amz-Signature"]) == 64
    # and it is used for 14 minutes, one less than EKS accepts
    assert before + 14 * 60 <= token.expires_at <= time.time() + 14 * 60


def test_the_simulator_accepts_a_fresh_token_and_rejects_an_old_or_forged_one():
    token = get_token("prod-cluster").value
    now = time.time()
    assert check_token(f"Bearer {token}", now) is None
    assert check_token(f"Bearer {token}", now + 14 * 60) is None
    assert check_token(f"Bearer {token}", now + 16 * 60) == "token expired"
    assert check_token("Bearer k8s-aws-v1.aGVsbG8", now) == "token URL is not an STS endpoint"
    assert check_token("", now) == "no bearer token"
    unsigned = (
        "https://sts.amazonaws.com/?Action=GetCallerIdentity&X-Amz-SignedHeaders=host&X-Amz-Signature=x"
    )
    forged = "k8s-aws-v1." + base64.urlsafe_b64encode(unsigned.encode()).decode().rstrip("=")
    assert check_token(f"Bearer {forged}", now) == "x-k8s-aws-id is not a signed header"


def test_a_stale_token_is_replaced_before_the_next_request():
    # Given a token source whose first token is already stale
    issued: list[Token] = []

    def source() -> Token:
        token = get_token("prod-cluster")
        token = Token(token.value, time.time() - 1 if not issued else token.expires_at)
        issued.append(token)
        return token

    with KubeSimulator(require_token=True) as sim:
        sim.load({"namespaces": ["production"]})
        api = build_api_client(sim.url, "", source)
        from kubernetes import client as k8s

        # When two requests are made
        k8s.CoreV1Api(api).list_namespace()
        k8s.CoreV1Api(api).list_namespace()
        api.close()
    # Then the stale token was replaced once, and the fresh one reused
    assert len(issued) == 2
    assert api.configuration.api_key["BearerToken"] == issued[1].value


def test_an_https_endpoint_gets_the_cluster_ca_written_to_a_file(tmp_path):
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    api = build_api_client(
        "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
        base64.b64encode(pem).decode(),
        lambda: Token("k8s-aws-v1.x", time.time() + 600),
    )
    try:
        with open(api.configuration.ssl_ca_cert, "rb") as handle:
            assert handle.read() == pem
        assert api.configuration.verify_ssl is True
    finally:
        api.close()


def test_an_http_endpoint_writes_no_ca_file():
    api = build_api_client("http://127.0.0.1:1", "", lambda: Token("k8s-aws-v1.x", time.time() + 600))
    assert api.configuration.ssl_ca_cert is None
    api.close()
    eks_auth.reset()
