"""A real coturn run with the configuration `radiocore turn config` renders (not the test
harness's command line): loopback only, free ports, a fresh secret; and a certificate for turns:."""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import socket
import subprocess
import time
from pathlib import Path

from bench.tools import free_port, free_ports, stop_process
from signaling.config import TurnConfig
from tests.support.coturn import TURNSERVER
from turn.coturn_config import render_coturn_config, write_coturn_config

#: Peers the rendered configuration must refuse (unless allowed), and some it must not.
INTERNAL = (
    "10.1.2.3",  # private
    "172.20.0.1",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "127.0.0.1",  # loopback
    "127.0.0.53",
    "169.254.169.254",  # the cloud metadata service
    "0.0.0.0",
    "0.1.2.3",
    "192.0.2.1",  # documentation
    "224.0.0.251",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "::1",
    "::",
    "fd00::1",  # unique local
    "fe80::1",  # link-local
    "2001:db8::1",  # documentation
    "3fff::1",
    "2001:0:1::1",  # Teredo
    "100::1",  # discard-only
    "::ffff:10.0.0.1",  # IPv4-mapped, private or not
    "::ffff:127.0.0.1",
    "::ffff:8.8.8.8",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "ff02::1",
)
PUBLIC = ("8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "2a00:1450:4001::1")


class GeneratedCoturn:
    """`turnserver -c <rendered file>` on 127.0.0.1: TURN over UDP and TCP on `port`, and over
    TLS on `tls_port` when given a certificate; `allowed_peer_ips` as the deployment's."""

    def __init__(
        self,
        workdir: Path,
        *,
        allowed_peer_ips: tuple[str, ...] = (),
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.workdir = workdir
        self.port, tls_port = free_ports(2)
        self.tls_port = tls_port if tls else None
        self.secret = secrets.token_urlsafe(32)
        self.log = workdir / "coturn.log"
        self.config_file = workdir / "turnserver.conf"
        relay_low = min(free_port(), 64000)
        urls = [self.url("udp"), self.url("tcp")]
        if tls:
            urls.append(self.url("tls"))
        self.settings = TurnConfig(
            urls=tuple(urls),
            secret=self.secret,
            listening_ips=("127.0.0.1",),
            relay_min_port=relay_low,
            relay_max_port=relay_low + 400,
            allowed_peer_ips=allowed_peer_ips,
            tls_cert_file=tls[0] if tls else None,
            tls_key_file=tls[1] if tls else None,
            log_file=str(self.log),
        )
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, transport: str) -> str:
        if transport == "tls":
            return f"turns:127.0.0.1:{self.tls_port}?transport=tcp"
        return f"turn:127.0.0.1:{self.port}?transport={transport}"

    def start(self) -> None:
        write_coturn_config(self.config_file, render_coturn_config(self.settings))
        with (self.workdir / "coturn.out").open("wb") as output:  # the child keeps its own
            self.process = subprocess.Popen(
                [TURNSERVER, "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        wait_listening(self.port, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s=5)


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until something accepts TCP on 127.0.0.1:`port` (coturn opens UDP and TCP together)."""
    for _ in range(100):  # bounded: 5 s
        if process.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"turnserver exited at start ({process.returncode}): {text[-800:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within 5 s")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM), valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "turn-cert.pem", directory / "turn-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file
