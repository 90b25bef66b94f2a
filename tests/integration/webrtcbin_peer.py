"""A GStreamer webrtcbin peer driven over stdin/stdout: an operator as a Raspberry Pi runs one.

Run with Debian's own Python (`/usr/bin/python3`: PyGObject and GStreamer's introspection data
are installed for it, not for the project's venv). It imports nothing of the project; the
driver (`webrtcbin_check.py`) speaks Socket.IO to the server and passes SDP and candidates
through. Every line on stdout is one JSON event; every line on stdin one JSON command.

Commands (stdin):
    {"cmd": "offer"}                      make the offer (audio + the `control` data channel)
    {"cmd": "answer", "sdp": "..."}       apply the server's answer
    {"cmd": "send", "text": "..."}        send a text message on the data channel
    {"cmd": "report"}                     report what arrived so far (event "report")
    {"cmd": "quit"}

Events (stdout): started {pid, gstreamer}; offer {sdp}; candidate {sdpMLineIndex, candidate};
state {name, value} (ice-connection-state, connection-state, and each DTLS transport's);
channel_open; message {text}; bus_error {message, debug}; report {rtp_packets, audio_buffers,
samples, rms, tone_share}.

Media: a sine tone (`--tone-hz`) is sent as Opus (a sendrecv audio m-line); what arrives is
counted as RTP packets before depayloading, decoded to 48 kHz mono S16, and its RMS and the share
of its energy at `--expect-hz` (Goertzel, no numpy here) over the last second are reported.
"""

from __future__ import annotations

import argparse
import array
import json
import math
import os
import sys
import threading
from collections import deque
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

SAMPLE_RATE = 48000
KEEP_SAMPLES = SAMPLE_RATE  # the last second of decoded audio
OPUS_CAPS = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"
#: The whole run is bounded: the driver quits much sooner.
RUN_BOUND_S = 120

_print_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


def goertzel_share(samples: list[int], hz: float) -> float:
    """Share of the samples' energy at `hz` (0 … 1): Goertzel power over (N/2 * total energy)."""
    n = len(samples)
    total = sum(s * s for s in samples)
    if n == 0 or total == 0:
        return 0.0
    k = round(n * hz / SAMPLE_RATE)
    coefficient = 2 * math.cos(2 * math.pi * k / n)
    s1 = s2 = 0.0
    for sample in samples:
        s0 = sample + coefficient * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    return min(1.0, power / (n / 2) / total)


class Peer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = GLib.MainLoop()
        self.rtp_packets = 0
        self.audio_buffers = 0
        self.samples: deque[int] = deque(maxlen=KEEP_SAMPLES)
        self.samples_total = 0
        self.lock = threading.Lock()
        self.channel: Any = None
        self.pipeline = Gst.parse_launch(
            f"webrtcbin name=webrtc bundle-policy={args.bundle_policy} "
            f"audiotestsrc is-live=true wave=sine freq={args.tone_hz} volume=0.3 "
            "! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 "
            f"! opusenc ! rtpopuspay pt=111 ! {OPUS_CAPS} ! webrtc."
        )
        self.webrtc = self.pipeline.get_by_name("webrtc")
        self.webrtc.connect("on-ice-candidate", self._on_ice_candidate)
        self.webrtc.connect("pad-added", self._on_pad_added)
        for name in ("ice-connection-state", "connection-state"):
            self.webrtc.connect(f"notify::{name}", self._on_state)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._on_bus_error)
        bus.connect("message::warning", self._on_bus_error)

    # -- commands --------------------------------------------------------------------------

    def command(self, line: str) -> bool:
        message = json.loads(line)
        cmd = message.get("cmd")
        if cmd == "offer":
            self.offer()
        elif cmd == "answer":
            self.answer(message["sdp"])
        elif cmd == "send":
            if self.channel is not None:
                self.channel.emit("send-string", message["text"])
        elif cmd == "report":
            self.report()
        elif cmd == "quit":
            self.loop.quit()
        return False  # GLib.idle_add: once

    def offer(self) -> None:
        self.channel = self.webrtc.emit("create-data-channel", "control", None)
        self.channel.connect("on-open", lambda *_: emit("channel_open"))
        self.channel.connect("on-message-string", lambda _c, text: emit("message", text=text))
        self.channel.connect("on-error", lambda _c, error: emit("channel_error", error=str(error)))
        promise = Gst.Promise.new_with_change_func(self._on_offer_created, None)
        self.webrtc.emit("create-offer", None, promise)

    def _on_offer_created(self, promise: Gst.Promise, _: object) -> None:
        promise.wait()
        reply = promise.get_reply()  # held: the offer lives in it
        offer = reply.get_value("offer")
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        emit("offer", sdp=offer.sdp.as_text())

    def answer(self, sdp: str) -> None:
        result, message = GstSdp.SDPMessage.new_from_text(sdp)
        if result != GstSdp.SDPResult.OK:
            emit("bus_error", message=f"the answer does not parse: {result}", debug="")
            return
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
        GLib.timeout_add(100, self._watch_dtls)

    def report(self) -> None:
        with self.lock:
            samples = list(self.samples)
            packets, buffers, total = self.rtp_packets, self.audio_buffers, self.samples_total
        rms = math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0
        emit(
            "report",
            rtp_packets=packets,
            audio_buffers=buffers,
            samples=total,
            rms=round(rms, 1),
            tone_share=round(goertzel_share(samples, self.args.expect_hz), 3),
        )

    # -- webrtcbin -------------------------------------------------------------------------

    def _on_ice_candidate(self, _: Gst.Element, index: int, candidate: str) -> None:
        emit("candidate", sdpMLineIndex=index, candidate=candidate)

    def _on_state(self, element: Gst.Element, spec: Any) -> None:
        value = element.get_property(spec.name)
        emit("state", name=spec.name, value=value.value_nick)

    def _watch_dtls(self) -> bool:
        """Follow the audio transceiver's DTLS transport state (it exists once the answer is
        set; the data channel's, without BUNDLE, shows in connection-state)."""
        transceiver = self.webrtc.emit("get-transceiver", 0)
        transport = transceiver.get_property("receiver").get_property("transport")
        if transport is None:
            return True  # again in 100 ms
        transport.connect("notify::state", self._on_dtls_state, 0)
        self._on_dtls_state(transport, None, 0)
        return False

    def _on_dtls_state(self, transport: Any, _: Any, which: object) -> None:
        state = transport.get_property("state")
        emit("state", name=f"dtls-{which}", value=state.value_nick)

    def _on_pad_added(self, _: Gst.Element, pad: Gst.Pad) -> None:
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        pad.add_probe(Gst.PadProbeType.BUFFER, self._count_rtp)
        decode = Gst.parse_bin_from_description(
            "rtpopusdepay ! opusdec ! audioconvert ! audioresample "
            "! audio/x-raw,format=S16LE,rate=48000,channels=1 ! fakesink name=sink sync=false",
            True,
        )
        self.pipeline.add(decode)
        decode.sync_state_with_parent()
        sink_pad = decode.get_by_name("sink").get_static_pad("sink")
        sink_pad.add_probe(Gst.PadProbeType.BUFFER, self._keep_audio)
        pad.link(decode.get_static_pad("sink"))

    def _count_rtp(self, _: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        with self.lock:
            self.rtp_packets += 1
        return Gst.PadProbeReturn.OK

    def _keep_audio(self, _: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buffer = info.get_buffer()
        ok, mapped = buffer.map(Gst.MapFlags.READ)
        if ok:
            try:
                pcm = array.array("h", bytes(mapped.data))
            finally:
                buffer.unmap(mapped)
            with self.lock:
                self.audio_buffers += 1
                self.samples_total += len(pcm)
                self.samples.extend(pcm)
        return Gst.PadProbeReturn.OK

    def _on_bus_error(self, _: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
        else:
            error, debug = message.parse_warning()
        emit("bus_error", message=error.message, debug=debug or "", source=message.src.get_name())

    # -- running ---------------------------------------------------------------------------

    def run(self) -> None:
        self.pipeline.set_state(Gst.State.PLAYING)
        threading.Thread(target=self._read_commands, daemon=True).start()
        GLib.timeout_add_seconds(RUN_BOUND_S, self.loop.quit)
        emit("started", pid=os.getpid(), gstreamer=Gst.version_string())
        try:
            self.loop.run()
        finally:
            self.pipeline.set_state(Gst.State.NULL)

    def _read_commands(self) -> None:
        for line in sys.stdin:
            if line.strip():
                GLib.idle_add(self.command, line)
        GLib.idle_add(self.loop.quit)  # the driver is gone


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle-policy", choices=("none", "max-bundle"), default="none")
    parser.add_argument("--tone-hz", type=int, default=600)
    parser.add_argument("--expect-hz", type=float, default=1000.0)
    args = parser.parse_args()
    Gst.init(None)
    Peer(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
