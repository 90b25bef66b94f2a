"""The fuzz harness of `radiocore bench fuzz` (bench/fuzz.py), bounded, inside the test run:
every decoder that reads from the network gets `EXAMPLES` generated inputs and must neither
crash nor hang; and the harness itself must be able to fail, or its zeros would mean nothing.

The SFU's decoders open real peer connections (ICE checks to whatever addresses an input
names): they run through the command, which runs them inside `unshare -n`. The full run
(100,000 inputs a decoder) is `radiocore bench fuzz`; its figures are in the README.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import strategies as st

from bench import fuzz
from tests.support.namespaces import namespace_command

EXAMPLES: Final = 2000
SEED: Final = 20_260_101
ROOT: Final = Path(__file__).resolve().parents[2]

DECODERS: Final = fuzz.all_decoders()
IN_PROCESS: Final = [d for d in DECODERS if not d.isolated]
ISOLATED: Final = [d for d in DECODERS if d.isolated]

#: What must be fuzzed, at least (the lists of events and endpoints grow on their own).
EXPECTED: Final = {
    "datachannel/operator", "datachannel/station", "datachannel/server",
    "socketio/agent/connect", "socketio/agent/hello", "socketio/agent/offer",
    "socketio/agent/ice_candidate", "socketio/operator/connect", "socketio/operator/list_boards",
    "socketio/operator/join", "socketio/operator/offer", "socketio/operator/ice_candidate",
    "socketio/operator/leave", "agent/connect_error",
    "agent/connect_error/placed_elsewhere", "agent/ack/hello", "agent/ack/offer",
    "agent/event/error", "agent/event/shutdown", "turn/ice_url", "rest/register", "rest/login",
    "rest/refresh", "rest/logout", "rest/pair_board", "rest/update_board", "rest/add_grant",
    "rest/add_block", "rest/book_station", "rest/delete_me", "rest/field/callsign",
    "rest/field/email", "rest/field/password", "rest/field/locator", "rest/query/grid",
    "rest/query/bands", "rest/field/name", "rest/path/board_id", "rest/field/bands",
    "rest/field/price_eur", "rigctld/reply", "sfu/offer", "sfu/candidate",
}  # fmt: skip


def test_every_network_decoder_is_fuzzed() -> None:
    names = [d.name for d in DECODERS]
    assert len(names) == len(set(names))
    assert set(names) >= EXPECTED, EXPECTED - set(names)


@pytest.mark.parametrize("decoder", IN_PROCESS, ids=lambda d: d.name)
def test_no_input_crashes_or_hangs_a_decoder(decoder: fuzz.Decoder) -> None:
    report = fuzz.fuzz(decoder, EXAMPLES, seed=SEED)
    result = report.as_json()
    assert result["crashes"] == [], json.dumps(result["crashes"], indent=2)
    assert result["hangs"] == [], result["hangs"]
    assert result["inputs"] == EXAMPLES
    # the inputs got past the first refusal to what the decoder accepts, and were refused
    # with its documented error (a decoder that never refuses has none)
    assert report.accepted > 0
    assert report.refused > 0 or not decoder.refused
    assert report.accepted + report.refused == EXAMPLES


def _bench(*args: str, timeout_s: float) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    run = subprocess.run(
        [sys.executable, "-m", "radiocore", "bench", "fuzz", "--seed", str(SEED), "--json",
         *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON (exit {run.returncode}): {run.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return run, result


def _needs_namespace() -> None:
    command, why = namespace_command()
    if command is None:
        pytest.skip(why)


def test_no_offer_or_candidate_crashes_or_hangs_the_sfu() -> None:
    _needs_namespace()
    run, result = _bench("--examples", str(EXAMPLES), "--decoders", "sfu", timeout_s=100)
    assert result["skipped"] == {}
    assert set(result["decoders"]) == {d.name for d in ISOLATED}
    for name, figures in result["decoders"].items():
        assert figures["crashes"] == [], (name, json.dumps(figures["crashes"], indent=2))
        assert figures["hangs"] == [], (name, figures["hangs"])
        assert figures["inputs"] == EXAMPLES
        assert figures["accepted"] > 0 and figures["refused"] > 0, (name, figures)
    assert run.returncode == 0 and result["ok"]


def test_the_command_reports_every_decoder() -> None:
    _needs_namespace()
    run, result = _bench("--examples", "200", timeout_s=100)
    assert run.returncode == 0, run.stderr[-3000:]
    assert result["ok"] is True and result["crashes"] == 0 and result["hangs"] == 0
    assert result["examples"] == 200 and result["skipped"] == {}
    assert list(result["decoders"]) == [d.name for d in DECODERS]
    for figures in result["decoders"].values():
        assert set(figures) >= {
            "inputs", "accepted", "refused", "crashes", "hangs", "max_ms", "p99_ms", "seconds"
        }  # fmt: skip
        assert figures["inputs"] == 200 and figures["crashes"] == []
        assert 0 <= figures["p99_ms"] <= figures["max_ms"]


def test_an_unknown_decoder_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz.main(["--decoders", "rest,morse"]) == 2
    assert "no decoder named morse" in capsys.readouterr().err


# -- the harness can fail -------------------------------------------------------------------------


def _bytes_decoder(name: str, decode: Any, **fields: Any) -> fuzz.Decoder:
    return fuzz.Decoder(
        name=name,
        what="a decoder of the test's",
        refused=(ValueError,),
        inputs=st.one_of(st.binary(max_size=16), st.just(b'{"type": "ptt"}')),
        mutate=fuzz.Mutator(fuzz.Vocabulary(keys=("type",))).data,
        decode=decode,
        **fields,
    )


def test_a_crashing_decoder_is_reported_with_the_input_that_crashed_it() -> None:
    def broken(data: bytes) -> object:
        if b"{" in data:
            fields: dict[str, object] = {}
            return fields["type"]  # the bug: a lookup the decoder forgot to guard (KeyError)
        raise ValueError("refused")  # the decoder's documented error

    report = fuzz.fuzz(_bytes_decoder("broken", broken), 500, seed=1)
    result = report.as_json()
    assert result["inputs"] == 500
    assert result["crash_count"] > 0 and result["refused"] > 0  # refusing is not crashing
    assert result["crash_count"] + result["refused"] == 500
    [crash] = result["crashes"]  # one kind: one exception, one place
    assert crash["error"] == "KeyError: 'type'"
    assert crash["at"].endswith("(broken)") and "test_fuzz.py" in crash["at"]
    assert crash["count"] == result["crash_count"]
    assert "{" in crash["input"]


def test_an_accepted_value_that_breaks_the_contract_is_a_crash() -> None:
    report = fuzz.fuzz(
        _bytes_decoder("lenient", lambda data: data, check=lambda _, v: "kept" if v else None),
        200,
        seed=2,
    )
    result = report.as_json()
    assert result["crash_count"] > 0
    assert result["crashes"][0]["error"] == "ContractError: kept"


def test_a_slow_input_is_reported_as_a_hang() -> None:
    def stuck(data: bytes) -> object:
        if data == b'{"type": "ptt"}':
            time.sleep(0.05)  # "slow": more than the hang threshold of this run
        return data

    result = fuzz.fuzz(_bytes_decoder("stuck", stuck), 300, seed=3, hang_ms=20).as_json()
    assert result["hangs"], result
    assert result["hangs"][0]["input"] == repr(b'{"type": "ptt"}')
    assert result["hangs"][0]["ms"] >= 20 and not result["hangs"][0]["abandoned"]
    assert result["crashes"] == []
