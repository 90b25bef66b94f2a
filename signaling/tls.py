"""HTTPS served by the server itself: the TLS context, its certificate reloaded when it changes,
and the Socket.IO origin check that knows the request came in over TLS.

A browser lends its microphone only to a secure page (HTTPS, or http://127.0.0.1 on the same
machine), so an operator on another device needs HTTPS: either a reverse proxy in front
(deploy/nginx/radiocore.conf) or `tls_cert_file`/`tls_key_file` here.

Certificates are renewed in place (certbot, acme.sh, an internal CA), so the server notices:
`TlsCertificates` polls both files' size, mtime and inode every `RELOAD_POLL_S` seconds (and
reloads at once on SIGHUP, which `signaling.server` wires). A change is loaded once the files
have stayed the same for one more poll (renewal tools write the certificate and the key one
after the other). Each load builds a fresh `ssl.SSLContext` from the files and, only when the
pair is valid, hands it to new handshakes (the listening context's `sni_callback` switches each
connection to the current one; OpenSSL calls it for every ClientHello, with or without SNI).
Loading into the live context instead is not atomic: `load_cert_chain` installs the new
certificate before it finds that the key does not match, and would leave the server with a
broken pair. An invalid pair is logged as an error and the previous certificate stays in use.
Connections already open keep the certificate they started with.

Never logged: the private key. Logged: the files, the certificate's subject, expiry and
SHA-256 fingerprint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes

logger = logging.getLogger(__name__)

#: Seconds between two looks at the certificate and key files.
RELOAD_POLL_S: Final = 2.0
MIN_TLS_VERSION: Final = ssl.TLSVersion.TLSv1_2

_FileStamp = tuple[tuple[int, int, int] | None, ...]


class TlsError(Exception):
    """The certificate and key files cannot serve HTTPS; the message says why (no key data)."""


@dataclass(frozen=True)
class CertificateInfo:
    """What the log says about a certificate (the first of the chain file)."""

    subject: str
    not_after: datetime
    sha256: str

    def describe(self) -> str:
        until = f"{self.not_after:%Y-%m-%d %H:%M} UTC"
        return f"{self.subject}, valid until {until}, SHA-256 {self.sha256}"


def _refuse_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal and a service would hang there.
    raise TlsError("the private key is encrypted: give the server an unencrypted key (mode 0600)")


def load_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server-side context (TLS 1.2 or later, Python's server defaults) serving the chain in
    `cert_file` with the key in `key_file`; `TlsError` when they cannot."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MIN_TLS_VERSION
    try:
        context.load_cert_chain(cert_file, key_file, password=_refuse_password)
    except ssl.SSLError as exc:
        why = (
            "the key does not belong to the certificate"
            if exc.reason == "KEY_VALUES_MISMATCH"
            else "not a PEM certificate chain and a PEM private key"
        )
        raise TlsError(f"{cert_file} and {key_file}: {why} ({exc.library}: {exc.reason})") from None
    except OSError as exc:
        raise TlsError(f"cannot read {exc.filename or cert_file}: {exc.strerror}") from None
    return context


def certificate_info(cert_file: Path) -> CertificateInfo:
    """The first certificate of `cert_file` (the server's own, in a full chain)."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise TlsError(f"{cert_file}: not a PEM certificate ({exc})") from None
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string() or "(no subject)",
        not_after=certificate.not_valid_after_utc,
        sha256=certificate.fingerprint(hashes.SHA256()).hex(":"),
    )


def check_pair(cert_file: Path, key_file: Path) -> None:
    """`TlsError` unless the files make a certificate and key the server can serve."""
    load_context(cert_file, key_file)
    certificate_info(cert_file)


class TlsCertificates:
    """The listening context (`context`, for `web.TCPSite`) and the certificate its new
    handshakes use, replaced when the files change (`watch`) or on request (`reload`)."""

    def __init__(self, cert_file: Path, key_file: Path, *, poll_s: float = RELOAD_POLL_S) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.poll_s = poll_s
        self._stamp = self._file_stamp()
        self._current = load_context(cert_file, key_file)
        self.info = certificate_info(cert_file)
        self.reloads = 0
        self.failed_reloads = 0
        self.context = self._current
        self.context.sni_callback = self._choose_context
        logger.info("TLS certificate %s (key %s): %s", cert_file, key_file, self.info.describe())
        self._warn_if_expired()

    def _choose_context(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        if self._current is not self.context:
            connection.context = self._current

    def _file_stamp(self) -> _FileStamp:
        stamps: list[tuple[int, int, int] | None] = []
        for path in (self.cert_file, self.key_file):
            try:
                found = os.stat(path)  # follows symlinks, as certbot's live/ directory has
            except OSError:
                stamps.append(None)
            else:
                stamps.append((found.st_ino, found.st_size, found.st_mtime_ns))
        return tuple(stamps)

    def reload(self, why: str) -> bool:
        """Load the files again; new handshakes use them if they are valid (True), else the
        error is logged and the current certificate stays (False)."""
        self._stamp = self._file_stamp()
        try:
            context = load_context(self.cert_file, self.key_file)
            info = certificate_info(self.cert_file)
        except TlsError as exc:
            self.failed_reloads += 1
            logger.error(
                "TLS certificate not reloaded (%s): %s; still serving %s",
                why,
                exc,
                self.info.describe(),
            )
            return False
        self._current = context
        self.info = info
        self.reloads += 1
        logger.info("TLS certificate reloaded (%s): %s", why, info.describe())
        self._warn_if_expired()
        return True

    def _warn_if_expired(self) -> None:
        if self.info.not_after <= datetime.now(UTC):
            logger.warning("the TLS certificate %s has expired: browsers refuse it", self.cert_file)

    async def watch(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: reload once the files changed and then stayed the same for one
        more poll (a renewal writes the certificate and the key one after the other)."""
        pending: _FileStamp | None = None
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
            if stop.is_set():
                return
            stamp = self._file_stamp()
            if stamp == self._stamp:
                pending = None
            elif stamp != pending:
                pending = stamp  # changed: load it when it has settled
            else:
                pending = None
                self.reload("the files changed")


def same_origin(origin: str | None, environ: Mapping[str, Any]) -> bool:
    """Engine.IO's own same-origin rule (`cors_allowed_origins` left unset), with the scheme the
    request really came in on: its aiohttp driver takes `http` unless `X-Forwarded-Proto` says
    otherwise, so a page served over the server's own TLS (`https://host`) would be refused.

    Accepted: `<scheme>://<Host>` of the request, and `<X-Forwarded-Proto>://<X-Forwarded-Host>`
    (each defaulting to the request's own) when a reverse proxy sent either."""
    request = environ.get("aiohttp.request")
    scheme = str(getattr(request, "scheme", "http"))
    host = environ.get("HTTP_HOST")
    allowed: set[str] = set()
    if host:
        allowed.add(f"{scheme}://{host}")
    forwarded_proto = environ.get("HTTP_X_FORWARDED_PROTO")
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST")
    if host and (forwarded_proto or forwarded_host):
        proto = str(forwarded_proto or scheme).split(",")[0].strip()
        via = str(forwarded_host or host).split(",")[0].strip()
        allowed.add(f"{proto}://{via}")
    return origin in allowed
