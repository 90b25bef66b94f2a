#!/usr/bin/env bash
# The whole suite as three pytest processes side by side (what `make test` runs): the tests that
# start whole systems — servers, agents, rigctld, coturn, PostgreSQL clusters, browsers, network
# namespaces, benchmarks — in two processes (most of tests/integration in one; tests/benchmarks,
# tests/e2e and the integration modules named in MOVED in the other), each running its tests one
# after another; everything else in a third.
# Most of the system tests' time is waiting on real timers (ICE, dead-man, time-outs, outages),
# not CPU (the whole suite keeps 2 cores about 40 % busy), so side by side they take about as
# long as the longest of them.
#
# With arguments (`make test PYTEST_ARGS='-k floor -x'`): one pytest with them, nothing else.
# Environment: PY, the interpreter (default .venv/bin/python).
set -uo pipefail

PY="${PY:-.venv/bin/python}"
# a few integration modules run with the benchmarks and the browsers: the two groups take about
# as long (each ~10 min on 2 cores in a clean run), where tests/integration alone was the longest
MOVED=(tests/integration/test_nat_matrix.py tests/integration/test_webrtcbin.py
       tests/integration/test_workers.py)
SYSTEM_GROUPS=("tests/integration ${MOVED[*]/#/--ignore=}" "tests/benchmarks tests/e2e ${MOVED[*]}")
SYSTEM_TESTS=(tests/integration tests/benchmarks tests/e2e)

if [[ $# -gt 0 ]]; then
    exec "$PY" -m pytest -q -rs "$@"
fi

logs=()
pids=()
# stopped with this script (Ctrl-C, a CI time-out): the system tests stop too
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -f "${logs[@]}"' EXIT
for group in "${SYSTEM_GROUPS[@]}"; do
    log="$(mktemp -t radiocore-system-tests.XXXXXX)"
    # shellcheck disable=SC2086  # a group is several folders
    "$PY" -m pytest -q -rs -p no:cacheprovider $group >"$log" 2>&1 &
    pids+=("$!")
    logs+=("$log")
done

echo "== the system tests (${SYSTEM_GROUPS[*]}) run beside these; their reports follow =="
ignore=()
for folder in "${SYSTEM_TESTS[@]}"; do ignore+=("--ignore=$folder"); done
"$PY" -m pytest -q -rs "${ignore[@]}"
rest=$?

status=$rest
summary="the rest $rest"
for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    code=$?
    echo
    echo "== the system tests: ${SYSTEM_GROUPS[$i]} =="
    cat "${logs[$i]}"
    summary="$summary, ${SYSTEM_GROUPS[$i]} $code"
    if [[ $status -eq 0 ]]; then status=$code; fi
done
echo "exit status: $summary"
exit "$status"
