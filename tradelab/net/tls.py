"""TLS for local connections: a self-signed server context and a client that accepts it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_context(directory: str | Path | None = None) -> ssl.SSLContext:
    """A server TLS context with a fresh certificate for localhost / 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tradelab local venue")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # ssl reads a certificate chain only from files: write them, load them, and (unless the
    # caller asked to keep them in ``directory``) remove them, private key included
    keep = directory is not None
    folder = Path(directory or tempfile.mkdtemp(prefix="tradelab-venue-tls-"))
    cert_path, key_path = folder / "venue.crt", folder / "venue.key"
    try:
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        ctx.load_cert_chain(cert_path, key_path)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return ctx


def client_context_without_verification() -> ssl.SSLContext:
    """What a client of the local venue uses: TLS, but no certificate check (self-signed)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
