#!/usr/bin/env bash
# The whole test suite: installs what the tests need on a fresh Debian machine, then runs
# formatting and lint checks and every test. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# Tools the tests call: zstd and tar (interop test), a PostgreSQL server (accounts).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
missing=()
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v tar >/dev/null 2>&1 || missing+=(tar)
[ -x "$(pg_bin)/initdb" ] || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "==> installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: ${missing[*]} missing and not root; the tests that need them will skip" >&2
    fi
fi

# The storage API servers the end-to-end tests start (crates/coffer-cli/tests/common/servers.rs,
# whose PIP_PACKAGES must stay the same): moto (S3), wsgidav on cheroot (WebDAV) and
# gcp-storage-emulator (GCS). Installed with pip, pinned, only when one is missing or differs.
py_servers=('moto[server]==5.2.5' 'wsgidav==4.4.0' 'cheroot==11.1.2' 'gcp-storage-emulator==2026.7.19')
py_servers_ok() {
    python3 - "${py_servers[@]}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
for pin in sys.argv[1:] + ["flask==", "flask-cors=="]:
    name, _, want = pin.partition("==")
    have = version(name.split("[")[0])
    assert not want or have == want, (name, have, want)
import moto.server, wsgidav.server.server_cli, cheroot, gcp_storage_emulator.server
EOF
}
pip_install() {
    if ! python3 -m pip --version >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "==> installing python3 python3-pip"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip >/dev/null
    fi
    echo "==> installing $*"
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
        python3 -m pip install -q --disable-pip-version-check "$@"
}
if ! py_servers_ok; then
    pip_install "${py_servers[@]}"
    py_servers_ok || { echo "error: the test servers do not import after pip install" >&2; exit 1; }
fi

# schemathesis, which checks the running front-end against docs/openapi.json
# (crates/coffer-cli/tests/api_contract.rs; common/schemathesis.rs's PIP_PACKAGE must stay the
# same). Installed with pip, pinned, only when missing or another version.
schemathesis_pin='schemathesis==4.32.5'
schemathesis_ok() {
    python3 - "$schemathesis_pin" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
name, _, want = sys.argv[1].partition("==")
assert version(name) == want, (name, version(name), want)
import schemathesis.cli
EOF
}
if ! schemathesis_ok; then
    pip_install "$schemathesis_pin"
    schemathesis_ok || { echo "error: schemathesis does not import after pip install" >&2; exit 1; }
fi

# Azure Blob Storage's emulator, Azurite (servers.rs's AZURITE_PACKAGE and AZURITE_PREFIX must
# stay the same): a Node.js program, installed with npm under a fixed prefix so that nothing
# global changes, only when missing or another version (COFFER_TEST_AZURITE names one installed
# elsewhere). 3.35.0 is the last release that runs on Node.js 20; Debian 12's nodejs 18 runs it.
azurite_version=3.35.0
azurite_prefix=/var/tmp/coffer-test-tools/azurite
azurite_ok() {
    [ -x "$azurite_prefix/node_modules/.bin/azurite-blob" ] &&
        node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
            "$azurite_prefix/node_modules/azurite/package.json" "$azurite_version" 2>/dev/null
}
if [ -z "${COFFER_TEST_AZURITE:-}" ] && ! azurite_ok; then
    node_missing=()
    command -v node >/dev/null 2>&1 || node_missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || node_missing+=(npm)
    if [ ${#node_missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
        echo "==> installing ${node_missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${node_missing[@]}" >/dev/null
    fi
    node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$node_major" -lt 18 ] || ! command -v npm >/dev/null 2>&1; then
        echo "error: the Azure tests need Node.js 18 or later and npm (found node $(node --version 2>/dev/null || echo none))" >&2
        exit 1
    fi
    echo "==> installing azurite@$azurite_version into $azurite_prefix"
    npm install --prefix "$azurite_prefix" --no-audit --no-fund --loglevel=error \
        "azurite@$azurite_version" >/dev/null
    azurite_ok || { echo "error: azurite is not in $azurite_prefix after npm install" >&2; exit 1; }
fi

# A throwaway PostgreSQL server on a free loopback port, stopped when the tests end.
start_postgres() {
    local bin dir port run=()
    bin=$(pg_bin)
    [ -x "$bin/initdb" ] || { echo "warning: no PostgreSQL server; its tests will skip" >&2; return; }
    dir=$(mktemp -d /tmp/coffer-pg.XXXXXX)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$dir"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$dir/data" -A trust -U coffer >/dev/null
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    export COFFER_TEST_POSTGRES_URL="postgres://coffer@127.0.0.1:$port/postgres"
    PG_STOP=("${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop)
    PG_DIR=$dir
    echo "==> PostgreSQL started on 127.0.0.1:$port"
}
stop_postgres() {
    if [ -n "${PG_DIR:-}" ]; then
        "${PG_STOP[@]}" >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
trap 'stop_postgres; rm -f "${log:-}"' EXIT
start_postgres

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
log=$(mktemp)
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole suite (the last cargo line is the doc tests' own count).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
