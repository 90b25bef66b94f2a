#!/usr/bin/env bash
# Installs the Debian packages that RadioCore's test suite starts for real (Chromium, Firefox ESR,
# coturn, Redis, Hamlib's rigctld, PostgreSQL 15, nginx, GStreamer's webrtcbin, iproute2/unshare/
# nftables for network namespaces, Node.js for the web console, a C compiler and Python's headers
# for the compiled forwarding lane), and nothing else.
#
# Only packages that are missing are named to apt-get: naming an installed package would
# upgrade it. `apt-get update` runs once, and only when something is missing.
#
# Environment: PYTHON — the interpreter the Makefile will create the venv with (default
# python3); when it is Debian's own Python and lacks `ensurepip`, python3-venv is added.
set -euo pipefail

PYTHON="${PYTHON:-python3}"

# Each package the suite needs, checked by dpkg status.
required=(
    chromium          # Playwright drives the real browser (executable_path=/usr/bin/chromium)
    firefox-esr       # the console's listen/status/PTT flows also run in Firefox (puppeteer-core,
                      # WebDriver BiDi, executablePath=/usr/bin/firefox-esr)
    coturn            # turnserver, started by tests on random ports
    redis-server      # multi-node room state
    libhamlib-utils   # rigctld (Hamlib's dummy rig in tests and the demo)
    iproute2          # ip: loopback inside `unshare -n` network namespaces
    util-linux        # unshare, nsenter, runuser
    nftables          # nft: silent network cuts and the NAT routers of the tests' namespaces
    procps            # sysctl: IP forwarding in the tests' NAT routers
    nginx             # the reverse-proxy example (deploy/nginx), run by its test
    janus             # the bar for the SFU: `bench sfu --compare-janus` runs it side by side
    # a GStreamer webrtcbin operator (Raspberry Pi stations and robots use it), run by
    # Debian's own python3 with its GObject bindings
    gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-good
    gstreamer1.0-plugins-base
    gstreamer1.0-nice
    gir1.2-gst-plugins-bad-1.0
    gir1.2-gst-plugins-base-1.0
    python3-gst-1.0
    libzbar0          # ZBar: the tests read the pairing QR codes back (pyzbar)
)

missing=()

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

for pkg in "${required[@]}"; do
    if ! is_installed "$pkg"; then
        missing+=("$pkg")
    fi
done

# PostgreSQL: tests need the server binaries, not a running cluster.
if [[ ! -x /usr/lib/postgresql/15/bin/initdb ]] && ! is_installed postgresql-15; then
    missing+=(postgresql-15)
fi

# Node.js + npm build the browser console (web/dist/console.js). A NodeSource nodejs ships its
# own npm, so look for the command rather than the Debian package.
if ! command -v npm >/dev/null 2>&1; then
    is_installed nodejs || missing+=(nodejs)
    missing+=(npm)
fi

# A C compiler and Python's headers build the compiled forwarding lane (media/_lane.c); without
# them RadioCore falls back to the pure-Python lane, but `make test` requires the compiled one.
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
python_headers="$(command -v "$PYTHON" >/dev/null 2>&1 && "$PYTHON" -c \
    'import os, sysconfig; print(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
    2>/dev/null || true)"
if [[ -n "$python_headers" && ! -f "$python_headers" ]]; then
    case "$(readlink -f "$(command -v "$PYTHON")")" in
        /usr/bin/*) missing+=("$(basename "$(readlink -f "$(command -v "$PYTHON")")")-dev") ;;
        *) echo "warning: $python_headers is missing; the compiled lane will not build" >&2 ;;
    esac
fi

# Debian's python3 has no ensurepip (so no `python -m venv`) without python3-venv.
python_path="$(command -v "$PYTHON" 2>/dev/null || true)"
if [[ -n "$python_path" ]] && ! "$python_path" -c 'import ensurepip' >/dev/null 2>&1; then
    case "$(readlink -f "$python_path")" in
        /usr/bin/*) is_installed python3-venv || missing+=(python3-venv) ;;
        *) echo "warning: $python_path has no ensurepip; 'python -m venv' may fail" >&2 ;;
    esac
fi

if ((${#missing[@]} == 0)); then
    echo "system packages: all present"
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then
    as_root() { sudo "$@"; }
else
    echo "error: missing packages (${missing[*]}) and neither root nor sudo available" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing packages (${missing[*]}) and no apt-get (Debian 12 expected)" >&2
    exit 1
fi

echo "system packages: installing ${missing[*]}"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update
as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
echo "system packages: installed ${missing[*]}"
