"""`radiocore bench e2e`: station-to-ear audio delay and operator-to-rig PTT latency, through the
real console in headless Chromium, the real server and board agent, and Hamlib's dummy rig behind
a real rigctld, all on one machine (one clock) inside a network namespace with only loopback.

It runs `radiocore demo` with the station's audio source set to `clicks:MS:LOG` (silence with a
10 ms burst every MS ms, aligned to the wall clock; the agent appends each click's emit instant
to LOG), signs in to the console in Chromium, joins the station, and hangs an AudioWorklet on
the stream the console plays (`#rx-audio`'s `srcObject`) that finds each click's onset.

- Station-to-ear delay, per click: the page's time of the onset minus the click's emit time.
  Emit time: `time.time()` when the agent's Opus track reads the 20 ms frame holding the click,
  right before encoding and sending it, plus the click's offset inside that frame (so it is the
  click's nominal instant unless the agent's event loop was late). Onset time: `performance.
  timeOrigin + performance.now()` when the worklet's message reaches the page's main thread
  (the render quantum holding the onset has been processed; up to ~3 ms after the sample).
  The output device's own latency (`AudioContext.baseLatency` + `outputLatency`) comes after
  that and is reported beside it, as are the browser's jitter buffer figures from `getStats`
  (`jitterBufferDelay / jitterBufferEmittedCount`: the average time a sample waited in it).
- PTT latency, per press: the space bar pressed in the page (Playwright; the page's `keydown`
  `event.timeStamp` + `performance.timeOrigin`) to rigctld answering `t` with 1, polled every
  2 ms on a connection of the benchmark's own; the release likewise to 0.

Prints one JSON object. The figures are for one machine in one run (these machines are shared):
compare runs, don't quote them as absolute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from bench import demo_process
from bench.console_page import CHROMIUM, CHROMIUM_FLAGS, choose_station, sign_in, wait_js
from bench.demo_process import Demo
from bench.rig_reader import RigReader
from bench.tools import percentile_ms

DEMO_READY_TIMEOUT_S: Final = 60.0
#: A sample louder than this (full scale 1) is a click; the bursts are 0.8, the gaps silence.
ONSET_THRESHOLD: Final = 0.3
#: After the last click is due, time for it to arrive (and for a very late one to count).
ARRIVAL_GRACE_S: Final = 1.0
#: How often the benchmark asks rigctld for the PTT state.
RIG_POLL_S: Final = 0.002
PTT_HOLD_S: Final = 0.3
PTT_GAP_S: Final = 0.3
PTT_WAIT_S: Final = 3.0
#: The emit and onset instants, as the output states them.
EMIT_INSTANT: Final = (
    "agent: time.time() when its Opus track reads the 20 ms frame holding the click (right "
    "before encoding and sending it) + the click's offset in that frame"
)
ONSET_INSTANT: Final = (
    "page: performance.timeOrigin + performance.now() when the AudioWorklet's message about the "
    "onset reaches the main thread (before the output device's baseLatency + outputLatency)"
)
PTT_INSTANTS: Final = (
    "page: keydown/keyup event.timeStamp + performance.timeOrigin -> time.time() when rigctld's "
    "answer to `t` (polled every 2 ms on the benchmark's own connection) first says 1/0"
)

WORKLET_JS: Final = """
class RadiocoreOnsetDetector extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const settings = options.processorOptions || {};
    this.threshold = settings.threshold;
    this.refractory = Math.round(settings.refractoryS * sampleRate);
    this.last = -Infinity;
  }
  process(inputs) {
    const channels = inputs[0] || [];
    if (channels.length === 0) return true;
    const length = channels[0].length;
    for (let i = 0; i < length; i += 1) {
      let peak = 0;
      for (const channel of channels) {
        const value = Math.abs(channel[i]);
        if (value > peak) peak = value;
      }
      const frame = currentFrame + i;
      if (peak > this.threshold && frame - this.last > this.refractory) {
        this.last = frame;
        this.port.postMessage({ frame, peak });
      }
    }
    return true;
  }
}
registerProcessor("radiocore-onset", RadiocoreOnsetDetector);
"""

# Hangs the detector on the stream the console plays; onsets go to window.__rcBench.onsets.
INSTALL_DETECTOR_JS: Final = """
async ({ source, threshold, refractoryS }) => {
  const stream = document.getElementById("rx-audio").srcObject;
  if (!stream) throw new Error("#rx-audio has no stream");
  const ctx = new AudioContext({ latencyHint: "interactive" });
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  await ctx.audioWorklet.addModule(url);
  URL.revokeObjectURL(url);
  const node = new AudioWorkletNode(ctx, "radiocore-onset", {
    processorOptions: { threshold, refractoryS },
  });
  const onsets = [];
  node.port.onmessage = (event) => {
    const detected = performance.timeOrigin + performance.now();
    const stamp = ctx.getOutputTimestamp();
    const at = event.data.frame / ctx.sampleRate;
    // when the output device plays the onset, if the context can say (0: it cannot)
    const played = stamp.performanceTime
      ? performance.timeOrigin + stamp.performanceTime + (at - stamp.contextTime) * 1000
      : null;
    onsets.push({ detected, played, frame: event.data.frame, peak: event.data.peak });
  };
  ctx.createMediaStreamSource(stream).connect(node);
  node.connect(ctx.destination);
  await ctx.resume();
  window.__rcBench = { ctx, node, onsets };
  return {
    state: ctx.state,
    sampleRate: ctx.sampleRate,
    baseLatency: ctx.baseLatency,
    outputLatency: ctx.outputLatency,
  };
}
"""

# Every space-bar press and release, timestamped when the browser created the event.
RECORD_KEYS_JS: Final = """
() => {
  window.__rcBenchKeys = [];
  for (const type of ["keydown", "keyup"]) {
    window.addEventListener(type, (event) => {
      if (event.code !== "Space" || event.repeat) return;
      window.__rcBenchKeys.push({
        type,
        at: performance.timeOrigin + event.timeStamp,
        handled: performance.timeOrigin + performance.now(),
      });
    }, true);
  }
}
"""

# When the console sends each `ptt` message on its control channel (installed before its scripts).
RECORD_PTT_SENDS_JS: Final = """
(() => {
  window.__rcBenchPttSends = [];
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    if (typeof data === "string" && data.includes('"ptt"')) {
      try {
        const message = JSON.parse(data);
        if (message.type === "ptt") {
          window.__rcBenchPttSends.push({
            state: message.state, at: performance.timeOrigin + performance.now(),
          });
        }
      } catch (_) { /* not JSON: not ours to judge */ }
    }
    return send.call(this, data);
  };
})();
"""

INBOUND_STATS_JS: Final = """
async () => {
  const pc = window.radiocore && window.radiocore.pc;
  if (!pc) return null;
  const report = await pc.getStats();
  let found = null;
  let playout = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") found = s;
    if (s.type === "media-playout") playout = s;
  });
  if (!found) return null;
  const pick = (s, keys) => Object.fromEntries(keys.map((k) => [k, s[k] ?? null]));
  return {
    ...pick(found, ["packetsReceived", "packetsLost", "jitter", "jitterBufferDelay",
      "jitterBufferEmittedCount", "jitterBufferTargetDelay", "jitterBufferMinimumDelay",
      "concealedSamples", "totalSamplesReceived", "audioLevel"]),
    playout: playout ? pick(playout, ["totalPlayoutDelay", "totalSamplesCount",
      "synthesizedSamplesDuration"]) : null,
  };
}
"""


class BenchError(Exception):
    """A step did not complete within its bound; the message says which."""


# -- the demo -----------------------------------------------------------------------------------


@contextlib.contextmanager
def running_demo(data_dir: Path, audio_source: str) -> Iterator[Demo]:
    """`radiocore demo` on a free loopback port with `audio_source`, once it says it is ready."""
    with demo_process.running_demo(
        sys.executable,
        "radiocore",
        data_dir,
        DEMO_READY_TIMEOUT_S,
        extra_args=("--audio-source", audio_source),
        error=BenchError,
    ) as demo:
        yield demo


# -- the rig, watched on a connection of our own -----------------------------------------------


class RigWatcher:
    """Polls rigctld's PTT state every `RIG_POLL_S` in a thread; keeps each change's time
    (`time.time()` when the answer saying so arrived)."""

    def __init__(self, port: int) -> None:
        self._reader = RigReader.connect(port)
        self.changes: list[tuple[float, bool]] = []
        self.state = self._reader.ptt()
        self.polls = 0
        self.started = time.monotonic()
        self.stopped: float | None = None
        self.failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rig-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                state = self._reader.ptt()
                now = time.time()
                self.polls += 1
                if state != self.state:
                    self.state = state
                    self.changes.append((now, state))
                time.sleep(RIG_POLL_S)
        except (OSError, ValueError) as exc:
            self.failure = f"{type(exc).__name__}: {exc}"

    def wait_for(self, state: bool, after: int, seconds: float) -> bool:
        """Whether a change to `state` shows up among `changes[after:]` within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(s == state for _, s in self.changes[after:]):
                return True
            time.sleep(RIG_POLL_S)
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.stopped = time.monotonic()
        self._reader.close()


# -- the page -----------------------------------------------------------------------------------


def _wait_js(page: Any, expression: str, seconds: float, what: str) -> Any:
    return wait_js(page, expression, seconds, what, error=BenchError, interval_s=0.02)


def _join_station(page: Any, ready: dict[str, Any]) -> None:
    sign_in(page, ready["url"], ready["email"], ready["password"], error=BenchError)
    choose_station(page, ready["board_name"])
    _wait_js(page, "window.radiocore.state === 'connected'", 15, "joined the station")
    _wait_js(
        page,
        f"(async () => {{ const s = await ({INBOUND_STATS_JS})(); "
        "return s && s.packetsReceived > 25; })()",
        10,
        "inbound audio",
    )


def page_clock_offset(page: Any, rounds: int = 20) -> tuple[float, float]:
    """(page clock - time.time(), half the round trip) in seconds, from the tightest of `rounds`
    reads of `performance.timeOrigin + performance.now()`."""
    best: tuple[float, float] | None = None
    for _ in range(rounds):
        before = time.time()
        page_ms = float(page.evaluate("performance.timeOrigin + performance.now()"))
        after = time.time()
        sample = (page_ms / 1000 - (before + after) / 2, (after - before) / 2)
        if best is None or sample[1] < best[1]:
            best = sample
    assert best is not None
    return best


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _stats_window(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The jitter buffer over the clicks' window, from two getStats snapshots."""

    def delta(key: str) -> float:
        return float(after.get(key) or 0) - float(before.get(key) or 0)

    emitted = delta("jitterBufferEmittedCount")
    window: dict[str, Any] = {
        "jitter_buffer_ms_avg": _ms(delta("jitterBufferDelay") / emitted) if emitted else None,
        "jitter_buffer_target_ms_avg": (
            _ms(delta("jitterBufferTargetDelay") / emitted)
            if emitted and after.get("jitterBufferTargetDelay") is not None
            else None
        ),
        "jitter_buffer_minimum_ms_avg": (
            _ms(delta("jitterBufferMinimumDelay") / emitted)
            if emitted and after.get("jitterBufferMinimumDelay") is not None
            else None
        ),
        "jitter_ms": _ms(after.get("jitter")),
        "packets_received": int(delta("packetsReceived")),
        "packets_lost": int(delta("packetsLost")),
        "concealed_samples": int(delta("concealedSamples")),
    }
    before_playout, after_playout = before.get("playout"), after.get("playout")
    if before_playout and after_playout:
        samples = float(after_playout["totalSamplesCount"] or 0) - float(
            before_playout["totalSamplesCount"] or 0
        )
        playout = float(after_playout["totalPlayoutDelay"] or 0) - float(
            before_playout["totalPlayoutDelay"] or 0
        )
        window["playout_delay_ms_avg"] = _ms(playout / samples) if samples else None
    else:
        window["playout_delay_ms_avg"] = None
    return window


def _stats(page: Any) -> dict[str, Any]:
    stats: dict[str, Any] | None = page.evaluate(INBOUND_STATS_JS)
    if stats is None:
        raise BenchError("no inbound audio stats")
    return stats


def match_clicks(
    emitted: list[tuple[float, float]], onsets: list[float], period_s: float
) -> list[float]:
    """Each click's delay (onset - emitted) in seconds, for the clicks whose onset came within
    the period after it (a click heard later than a period after it is counted as lost)."""
    delays = []
    remaining = sorted(onsets)
    for _, at in sorted(emitted, key=lambda click: click[1]):
        found = next((o for o in remaining if at <= o < at + period_s), None)
        if found is not None:
            delays.append(found - at)
            remaining.remove(found)
    return delays


def _read_clicks(log: Path) -> list[tuple[float, float]]:
    clicks = []
    with contextlib.suppress(OSError):
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                clicks.append((float(parts[0]), float(parts[1])))
    return clicks


def measure_clicks(
    page: Any, log: Path, clicks: int, period_ms: int, result: dict[str, Any]
) -> None:
    """Listens for `clicks` clicks; fills `result` with the delays and the browser's buffers."""
    audio = page.evaluate(
        INSTALL_DETECTOR_JS,
        {"source": WORKLET_JS, "threshold": ONSET_THRESHOLD, "refractoryS": 0.2},
    )
    result["audio_context"] = audio
    result["audio_base_latency_ms"] = _ms(audio["baseLatency"])
    result["audio_output_latency_ms"] = _ms(audio["outputLatency"])
    period_s = period_ms / 1000
    time.sleep(0.3)  # the detector runs: a click due from now on is heard from its start
    stats_before = _stats(page)
    start = time.time()
    time.sleep(clicks * period_s + ARRIVAL_GRACE_S)
    end = time.time()
    stats_after = _stats(page)
    # re-read the output latency: Chromium reports it once the output runs
    result["audio_output_latency_ms"] = _ms(page.evaluate("window.__rcBench.ctx.outputLatency"))
    sent = [c for c in _read_clicks(log) if c[1] >= start][:clicks]
    seen = [o for o in page.evaluate("window.__rcBench.onsets") if start <= o["detected"] / 1000]
    onsets = [o["detected"] / 1000 for o in seen]
    played = [o["played"] / 1000 for o in seen if o["played"]]
    delays = match_clicks(sent, onsets, period_s)
    played_delays = match_clicks(sent, played, period_s)
    result["clicks_sent"] = len(sent)
    result["clicks_detected"] = len(delays)
    result["click_period_ms"] = period_ms
    result["clicks_emitted_late_ms_max"] = (
        _ms(max(0.0, *(emitted - nominal for nominal, emitted in sent))) if sent else None
    )
    for name, values in (("station_to_ear_ms", delays), ("station_to_output_ms", played_delays)):
        result[f"{name}_p50"] = percentile_ms(values, 50)
        result[f"{name}_p99"] = percentile_ms(values, 99)
        result[f"{name}_min"] = _ms(min(values)) if values else None
        result[f"{name}_max"] = _ms(max(values)) if values else None
    result["station_to_output_count"] = len(played_delays)
    # onsets heard in the window that belong to no click sent in it (the last click's own
    # successor may arrive before the window ends: at most one)
    result["onsets_unmatched"] = len([o for o in onsets if o <= end]) - len(delays)
    result.update(_stats_window(stats_before, stats_after))
    # both are means over the window (the jitter buffer's is per sample): the share is fair
    mean = _ms(sum(delays) / len(delays)) if delays else None
    buffered = result["jitter_buffer_ms_avg"]
    result["station_to_ear_ms_mean"] = mean
    result["jitter_buffer_share_of_mean_pct"] = (
        round(100 * buffered / mean, 1) if mean and buffered is not None else None
    )


def measure_ptt(page: Any, rig_port: int, presses: int, result: dict[str, Any]) -> None:
    """Presses and releases the space bar `presses` times; fills `result` with the latencies."""
    page.evaluate(RECORD_KEYS_JS)
    watcher = RigWatcher(rig_port)
    keyed: list[float] = []
    unkeyed: list[float] = []
    try:
        for press in range(presses):
            _wait_js(
                page,
                "!document.getElementById('ptt').disabled && window.radiocore.floor === null"
                " && window.radiocore.ptt === false",
                5,
                f"PTT ready for press {press + 1}",
            )
            if watcher.state:
                raise BenchError("the rig is keyed before the press")
            page.evaluate("document.activeElement && document.activeElement.blur()")
            count = len(watcher.changes)
            page.keyboard.down("Space")
            on = watcher.wait_for(True, count, PTT_WAIT_S)
            time.sleep(PTT_HOLD_S)
            count = len(watcher.changes)
            page.keyboard.up("Space")
            off = watcher.wait_for(False, count, PTT_WAIT_S)
            if not (on and off):
                raise BenchError(
                    f"press {press + 1}: rig keyed {on}, unkeyed {off} "
                    f"(watcher: {watcher.failure or 'polling'})"
                )
            time.sleep(PTT_GAP_S)
    finally:
        watcher.close()
    keys = page.evaluate("window.__rcBenchKeys")
    sends = page.evaluate("window.__rcBenchPttSends || []")
    sent_after: dict[bool, list[float]] = {True: [], False: []}
    for key in keys:
        state = key["type"] == "keydown"
        at = key["at"] / 1000
        change = next((t for t, s in watcher.changes if s == state and t >= at), None)
        if change is not None:
            (keyed if state else unkeyed).append(change - at)
        send = next(
            (x["at"] / 1000 for x in sends if x["state"] is state and x["at"] >= key["at"]), None
        )
        if send is not None:
            sent_after[state].append(send - at)
    result["ptt_presses"] = presses
    result["ptt_keyed"] = len(keyed)
    result["ptt_unkeyed"] = len(unkeyed)
    result["ptt_key_ms_p50"] = percentile_ms(keyed, 50)
    result["ptt_key_ms_p99"] = percentile_ms(keyed, 99)
    result["ptt_key_ms_max"] = _ms(max(keyed)) if keyed else None
    result["ptt_release_ms_p50"] = percentile_ms(unkeyed, 50)
    result["ptt_release_ms_p99"] = percentile_ms(unkeyed, 99)
    result["ptt_release_ms_max"] = _ms(max(unkeyed)) if unkeyed else None
    # where the time goes: the page (key event -> `ptt` message handed to its data channel)
    result["ptt_key_page_ms_p50"] = percentile_ms(sent_after[True], 50)
    result["ptt_release_page_ms_p50"] = percentile_ms(sent_after[False], 50)
    span = (watcher.stopped or time.monotonic()) - watcher.started
    result["rig_polls_per_s"] = round(watcher.polls / span, 1) if span > 0 else None


# -- the run ------------------------------------------------------------------------------------


def _isolated() -> bool:
    """Whether this network namespace has loopback only."""
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if line]
    return names == ["lo"]


def run_inside(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark, in a namespace with only loopback (brought up here)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    result: dict[str, Any] = {
        "ok": False,
        "failure": None,
        "emit_instant": EMIT_INSTANT,
        "onset_instant": ONSET_INSTANT,
        "ptt_instants": PTT_INSTANTS,
    }
    data_dir = Path(tempfile.mkdtemp(prefix="radiocore-bench-e2e-"))
    log = data_dir / "clicks.txt"
    demo: Demo | None = None
    try:
        with running_demo(data_dir, f"clicks:{args.period_ms}:{log}") as demo:
            ready = demo.ready
            assert ready is not None
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS), headless=True
                )
                try:
                    result["browser_version"] = browser.version
                    # the detector's worklet module comes from a blob: URL, which the
                    # console's policy (script-src 'self') would refuse; Playwright cannot
                    # serve a worklet's request itself (its routes do not see it)
                    page = browser.new_context(bypass_csp=True).new_page()
                    page.set_default_timeout(15_000)
                    page.add_init_script(RECORD_PTT_SENDS_JS)
                    _join_station(page, ready)
                    offset, uncertainty = page_clock_offset(page)
                    result["page_clock_offset_ms"] = _ms(offset)
                    result["page_clock_uncertainty_ms"] = _ms(uncertainty)
                    if args.clicks > 0:
                        measure_clicks(page, log, args.clicks, args.period_ms, result)
                    if args.ptt > 0:
                        rig_port = ready.get("rigctld_port")
                        if rig_port is None:
                            result["ptt_skipped"] = "no Hamlib (rigctld) here: no rig to read"
                        else:
                            measure_ptt(page, int(rig_port), args.ptt, result)
                finally:
                    browser.close()
        result["ok"] = True
    except (BenchError, PlaywrightError, OSError) as exc:
        result["failure"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:2000]
        if demo is not None:
            result["demo_log_tail"] = demo.log_tail()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def _print(result: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(result) if as_json else json.dumps(result, indent=2), flush=True)


def _namespace_command() -> list[str] | None:
    """How to run a command in a new network namespace here: as root, or through a user
    namespace."""
    for command in (["unshare", "-n"], ["unshare", "--map-root-user", "-n"]):
        probe = subprocess.run([*command, "true"], capture_output=True, timeout=10, check=False)
        if probe.returncode == 0:
            return command
    return None


def run_e2e_bench(args: argparse.Namespace) -> int:
    """`radiocore bench e2e`: re-runs itself under `unshare -n` unless already isolated."""
    if not os.access(CHROMIUM, os.X_OK):
        print(f"bench e2e: Chromium is not installed at {CHROMIUM}", file=sys.stderr)
        return 2
    if _isolated():
        result = run_inside(args)
        _print(result, args.json)
        return 0 if result["ok"] else 1
    namespace = _namespace_command()
    if namespace is None:
        print(
            "bench e2e: cannot make a network namespace (`unshare -n` needs root, or "
            "unprivileged user namespaces for `unshare --map-root-user -n`)",
            file=sys.stderr,
        )
        return 2
    command = [
        *namespace, sys.executable, "-m", "bench.e2e", "--clicks", str(args.clicks),
        "--ptt", str(args.ptt), "--period-ms", str(args.period_ms), "--json",
    ]  # fmt: skip
    timeout = 120 + args.clicks * args.period_ms / 1000 + args.ptt * 5
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"bench e2e: no result within {timeout:.0f} s", file=sys.stderr)
        return 1
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        print(
            f"bench e2e: `{' '.join(command[:2])}` gave no result (exit {run.returncode}): "
            f"{run.stderr[-2000:]}",
            file=sys.stderr,
        )
        return 1
    result = json.loads(lines[-1])
    _print(result, args.json)
    return 0 if result.get("ok") else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m bench.e2e` (radiocore/cli.py gives `bench e2e` the same)."""
    parser.add_argument("--clicks", type=int, default=100, help="clicks to time (0: none)")
    parser.add_argument("--ptt", type=int, default=20, help="space-bar presses to time (0: none)")
    parser.add_argument(
        "--period-ms", type=int, default=500, help="time between clicks (100 … 60000 ms)"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON result")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    return run_e2e_bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
