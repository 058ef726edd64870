"""The P1 investigation's probes against real peers on loopback: an HTTP server, a Redis-protocol peer,
a closed port, a real PostgreSQL; and ELB target health on moto, with Stubber for the errors moto cannot make."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from functions.adapters import dependencies, elb, http_probe
from functions.core.clients import reset_clients
from functions.core.config import DependencyProbe, parse_settings
from functions.core.errors import InvalidInput, TransientError


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path.startswith("/ok") else 503
        body = b'{"status": "ok"}' if code == 200 else b'{"status": "down"}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def resp_peer():
    """A peer speaking the Redis protocol's PING: replies +PONG to exactly the bytes redis-cli sends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    received = []

    def serve():
        conn, _ = listener.accept()
        with conn:
            data = conn.recv(64)
            received.append(data)
            conn.sendall(b"+PONG\r\n" if data == b"*1\r\n$4\r\nPING\r\n" else b"-ERR unknown command\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], received
    listener.close()


def test_a_2xx_health_endpoint_is_ok(http_server):
    result = http_probe.http_get(f"{http_server}/ok/health")

    assert (result["ok"], result["status"], result["error"]) == (True, 200, None)
    assert result["body"] == '{"status": "ok"}'


def test_a_503_is_reported_with_its_body_not_raised(http_server):
    result = http_probe.http_get(f"{http_server}/health")

    assert (result["ok"], result["status"], result["error"]) == (False, 503, "HTTP 503")
    assert "down" in result["body"]


def test_a_refused_connection_is_reported(http_server):
    result = http_probe.http_get(f"http://127.0.0.1:{closed_port()}/health", timeout=2)

    assert result["ok"] is False and result["status"] is None
    assert "Connection refused" in result["error"] or "ConnectionRefusedError" in result["error"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.test/x", "gopher://x"])
def test_only_http_urls_are_probed(url):
    with pytest.raises(ValueError, match="only http and https"):
        http_probe.http_get(url)


def test_redis_ping_sends_the_resp_command_and_wants_pong(resp_peer):
    port, received = resp_peer

    result = http_probe.redis_ping("127.0.0.1", port)

    assert result["ok"] is True
    assert received == [b"*1\r\n$4\r\nPING\r\n"]


def test_redis_and_tcp_probes_report_a_closed_port():
    port = closed_port()

    assert http_probe.redis_ping("127.0.0.1", port)["ok"] is False
    assert http_probe.tcp_connect("127.0.0.1", port)["ok"] is False


@pytest.mark.postgres
def test_postgres_dependency_up_and_down(pg_server, monkeypatch):
    monkeypatch.setenv("PGUSER", pg_server.user)
    settings = parse_settings(
        {
            "services": {
                "svc": {"namespace": "production", "cluster": "c", "health": {"primary": "http://x/h"}}
            },
            "databases": {
                "up": {"host": pg_server.host, "port": pg_server.port, "dbname": "postgres"},
                "down": {
                    "host": "127.0.0.1",
                    "port": closed_port(),
                    "dbname": "postgres",
                    "connect_timeout_seconds": 2,
                },
            },
        }
    )

    up = dependencies.probe(DependencyProbe(name="db", kind="postgres", database="up"), settings)
    down = dependencies.probe(DependencyProbe(name="db", kind="postgres", database="down"), settings)

    assert up["ok"] is True and up["server_version"].startswith("15")
    assert down["ok"] is False
    assert str(settings.databases["down"].port) in down["error"]


@pytest.fixture
def aws():
    with mock_aws():
        reset_clients()
        yield
    reset_clients()


def test_target_health_lists_each_target_with_state(aws):
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    client = boto3.client("elbv2")
    arn = client.create_target_group(Name="sales", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    client.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.5", "Port": 8080}])

    targets = elb.target_health(arn)

    assert [(t["id"], t["port"]) for t in targets] == [("10.0.0.5", 8080)]
    assert targets[0]["state"] in ("healthy", "initial", "unavailable")


@pytest.mark.parametrize(
    ("code", "expected"),
    [("Throttling", TransientError), ("TargetGroupNotFound", InvalidInput)],
)
def test_target_health_errors_map_to_named_errors(aws, code, expected):
    from functions.core.clients import client

    elbv2 = client("elbv2")
    with Stubber(elbv2) as stub:
        stub.add_client_error("describe_target_health", service_error_code=code, http_status_code=400)
        with pytest.raises(expected):
            elb.target_health(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/sales/0123456789abcdef"
            )
