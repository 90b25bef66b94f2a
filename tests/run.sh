#!/usr/bin/env bash
# The whole suite as two pytest processes side by side (what `make test` runs): the tests that
# start whole systems — servers, agents, rigctld, coturn, PostgreSQL clusters, browsers, network
# namespaces, benchmarks (tests/benchmarks, tests/e2e, tests/integration) — one after another in
# one process, so they never compete with each other for the cores; everything else in the
# other. Most of the system tests' time is waiting on real timers (ICE, dead-man, time-outs),
# not CPU, so the two together take about as long as the system tests alone.
#
# With arguments (`make test PYTEST_ARGS='-k floor -x'`): one pytest with them, nothing else.
# Environment: PY, the interpreter (default .venv/bin/python).
set -uo pipefail

PY="${PY:-.venv/bin/python}"
SYSTEM_TESTS=(tests/benchmarks tests/e2e tests/integration)

if [[ $# -gt 0 ]]; then
    exec "$PY" -m pytest -q -rs "$@"
fi

log="$(mktemp -t radiocore-system-tests.XXXXXX)"
"$PY" -m pytest -q -rs -p no:cacheprovider "${SYSTEM_TESTS[@]}" >"$log" 2>&1 &
systems=$!
# stopped with this script (Ctrl-C, a CI time-out): the system tests stop too
trap 'kill "$systems" 2>/dev/null; rm -f "$log"' EXIT

echo "== the system tests (${SYSTEM_TESTS[*]}) run beside these; their report follows =="
ignore=()
for folder in "${SYSTEM_TESTS[@]}"; do ignore+=("--ignore=$folder"); done
"$PY" -m pytest -q -rs "${ignore[@]}"
rest=$?

wait "$systems"
system=$?
echo
echo "== the system tests (${SYSTEM_TESTS[*]}) =="
cat "$log"
echo "exit status: the rest $rest, the system tests $system"
if [[ $rest -ne 0 ]]; then exit "$rest"; fi
exit "$system"
