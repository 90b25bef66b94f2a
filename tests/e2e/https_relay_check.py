"""The console over the server's own HTTPS, its media forced through a real coturn, in headless
Chromium inside a private network namespace that has only loopback:

    unshare -n python tests/e2e/https_relay_check.py --screenshot /tmp/relay.png

It brings `lo` up, makes a test CA and a server certificate for 127.0.0.1, starts coturn
(use-auth-secret, a random secret, loopback peers allowed) and `python -m radiocore demo` with
`--tls-cert-file`/`--tls-key-file`, the coturn as `[turn] urls`, its secret in
`RADIOCORE_TURN__SECRET` and `ice.transport_policy = relay` (the demo's station trusts the CA
through `SSL_CERT_FILE`). Chromium trusts exactly that certificate's key
(`--ignore-certificate-errors-spki-list`), so the page is a real secure context, not one whose
certificate errors are ignored. Then, like a person, with the steps of `console_check.py`:
opens https://127.0.0.1:PORT/, reads the TLS details of the page, signs in, joins the simulated
station and listens (inbound audio grows, audioLevel > 0), reads which candidate pair carries
the media and what the page knows about its security (`isSecureContext`, the microphone API,
the ICE servers and policy it was given), holds PTT (the station's status shows it keyed) and
releases it. Afterwards it counts coturn's allocations for the operator's TURN identity.

It prints one JSON line with what it saw (`ok` false and `failure` say why it stopped early);
`test_console_https_relay.py` judges it. coturn and the demo are always stopped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script: the repository's test helpers
    sys.path.insert(0, str(REPO_ROOT))

from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from bench.console_page import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402
from bench.demo_process import Demo  # noqa: E402
from tests.e2e.console_check import (  # noqa: E402
    VIEWPORT,
    CheckFailedError,
    _bring_up_loopback,
    _collect_console,
    _error_list,
    _new_page,
    _wait_for,
    check_listening,
    check_transmitting,
    run_and_report,
    running_demo,
)
from tests.support.coturn import Coturn  # noqa: E402
from tests.support.tls_certs import TestCa  # noqa: E402

# The candidate pair that carries the page's media, and its two ends.
SELECTED_PAIR_JS = """
async () => {
  const pc = window.radiocore && window.radiocore.pc;
  if (!pc) return null;
  const report = await pc.getStats();
  let pairId = null;
  report.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  const pair = pairId ? report.get(pairId) : null;
  if (!pair) return null;
  const local = report.get(pair.localCandidateId);
  const remote = report.get(pair.remoteCandidateId);
  return {
    state: pair.state,
    local_type: local.candidateType,
    local_address: local.address ?? null,
    relay_protocol: local.relayProtocol ?? null,
    local_url: local.url ?? null,
    remote_type: remote.candidateType,
    bytes_received: pair.bytesReceived ?? 0,
  };
}
"""

# What the page knows about its own security and the ICE configuration it was given.
PAGE_SECURITY_JS = """
() => {
  const pc = window.radiocore && window.radiocore.pc;
  const config = pc ? pc.getConfiguration() : null;
  return {
    is_secure_context: window.isSecureContext,
    protocol: location.protocol,
    microphone_api: Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia),
    ice_transport_policy: config ? config.iceTransportPolicy : null,
    ice_urls: config ? config.iceServers.flatMap((s) => [].concat(s.urls)) : [],
    ice_usernames: config ? config.iceServers.filter((s) => s.username).map((s) => s.username) : [],
  };
}
"""


def tls_details(page: Any, url: str) -> dict[str, Any]:
    """The TLS of the console page as the browser negotiated it."""
    response = page.goto(url, wait_until="load")
    if response is None:
        raise CheckFailedError(f"no response for {url}")
    details = response.security_details() or {}
    return {
        "status": response.status,
        "protocol": details.get("protocol"),
        "subject": details.get("subjectName"),
        "issuer": details.get("issuer"),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"ok": False, "failure": None}
    _bring_up_loopback()
    work = Path(tempfile.mkdtemp(prefix="radiocore-https-relay-"))
    coturn = Coturn(work)
    demo: Demo | None = None
    try:
        ca = TestCa(work)
        server_cert = ca.issue("server")
        coturn.start()
        env = dict(os.environ, RADIOCORE_TURN__SECRET=coturn.secret, SSL_CERT_FILE=str(ca.ca_file))
        demo_args = [
            "--tls-cert-file",
            str(server_cert.cert_file),
            "--tls-key-file",
            str(server_cert.key_file),
            "--turn-url",
            coturn.url("udp"),
            "--ice-transport-policy",
            "relay",
        ]
        started = time.monotonic()
        with running_demo(
            args.python, "radiocore", work, args.ready_timeout, extra_args=demo_args, env=env
        ) as demo:
            ready = demo.ready
            assert ready is not None  # running_demo yields only once ready
            result["demo_ready_s"] = round(time.monotonic() - started, 2)
            url = ready["url"]
            result["demo_url"] = url
            flags = [
                *CHROMIUM_FLAGS,
                f"--ignore-certificate-errors-spki-list={server_cert.spki_sha256}",
            ]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=flags, headless=True
                )
                try:
                    result["browser_version"] = browser.version
                    page = _new_page(browser, VIEWPORT)
                    result["console_errors"] = _collect_console(page)
                    result["tls"] = tls_details(page, url)
                    check_listening(page, url, ready, args.screenshot, result)
                    result["security"] = page.evaluate(PAGE_SECURITY_JS)
                    result["selected_pair"] = _wait_for(
                        "a selected candidate pair", 10, lambda: page.evaluate(SELECTED_PAIR_JS)
                    )
                    check_transmitting(page, args.screenshot, result)
                    result["errors"] = _error_list(page)
                finally:
                    browser.close()
            usernames = result["security"]["ice_usernames"]
            identity = usernames[0].split(":", 1)[1] if usernames else ""
            result["operator_identity"] = identity
            result["operator_allocations"] = coturn.allocations_of(identity) if identity else 0
            result["allocations_total"] = coturn.log_text().count("ALLOCATE processed, success")
        result["ok"] = True
    except (CheckFailedError, PlaywrightError, RuntimeError) as exc:
        result["failure"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:2000]
        result["coturn_log_tail"] = coturn.log_text().splitlines()[-15:]
        if demo is not None:
            result["demo_log_tail"] = demo.log_tail()
    finally:
        coturn.stop()
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the demo")
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds")
    args = parser.parse_args()
    return run_and_report(run, args)


if __name__ == "__main__":
    sys.exit(main())
