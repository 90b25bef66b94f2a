"""aiortc peers with an RSA certificate, as GStreamer's webrtcbin has (RSA-2048), for tests.

aiortc makes every peer connection an ECDSA P-256 certificate with
`RTCCertificate.generateCertificate()` (public API); `rsa_peer()` makes one whose certificate is
RSA-2048 instead, by replacing that class method while the connection is made.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcdtlstransport import RTCCertificate, generate_certificate
from cryptography.hazmat.primitives.asymmetric import rsa


def rsa_certificate() -> RTCCertificate:
    """A self-signed RSA-2048 certificate and its key, as aiortc signs its own (SHA-256)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return RTCCertificate(key=key, cert=generate_certificate(key))  # type: ignore[arg-type]


def rsa_peer(monkeypatch: pytest.MonkeyPatch) -> tuple[RTCPeerConnection, str]:
    """A peer connection (no ICE servers) whose DTLS certificate is RSA-2048, and the SHA-256
    fingerprint of that certificate (as its SDP's `a=fingerprint:sha-256` must show it)."""
    certificate = rsa_certificate()
    (sha256,) = [f.value for f in certificate.getFingerprints() if f.algorithm == "sha-256"]

    def generate(cls: Any) -> RTCCertificate:
        return certificate

    with monkeypatch.context() as patched:
        patched.setattr(RTCCertificate, "generateCertificate", classmethod(generate))
        return RTCPeerConnection(RTCConfiguration(iceServers=[])), sha256
