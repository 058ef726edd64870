"""A throwaway CA-signed-by-itself certificate for 127.0.0.1, so the simulator can serve https like EKS.

kubectl sends bearer tokens only over https, and the EKS adapter's CA handling runs only for https endpoints.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path


def self_signed(directory: Path) -> tuple[Path, Path, str]:
    """Write cert.pem and key.pem for 127.0.0.1/localhost; return their paths and the cert as base64 PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-sim")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, base64.b64encode(pem).decode()


def server_context() -> tuple[ssl.SSLContext, str]:
    """A server-side TLS context with a fresh certificate, and that certificate as base64 PEM (the "CA data")."""
    with tempfile.TemporaryDirectory(prefix="kube-sim-tls-") as tmp:
        cert_path, key_path, ca_data = self_signed(Path(tmp))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
    return context, ca_data
