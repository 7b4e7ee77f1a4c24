#!/usr/bin/env bash
# Upload and download throughput to local S3 API servers, Coffer against the AWS CLI
# moving the same bytes to the same server in the same run. Two servers: moto (Python,
# the one the tests use) and s3s-fs (Rust, files on disk), which is fast enough that the
# clients' own costs show.
#
#   coffer backup  (tar, zstd -1, encrypt, multipart upload)   vs  aws s3 cp FILE s3://…
#   coffer restore (download, decrypt, unpack, fsync)          vs  aws s3 cp s3://… FILE
#
# Usage: bench/s3_transfer.sh [WORKDIR]
#   BENCH_MB=512    size of the incompressible file, in MiB
#   BENCH_RUNS=3    runs per command, round-robin; the median is reported
#   BENCH_SERVERS="moto s3s-fs"   which servers to run against
# The bar (docs/PERFORMANCE.md): Coffer's encrypted upload is at least as fast as the AWS
# CLI's plaintext upload (ratio of times coffer/aws <= 1.0).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/coffer-bench-s3}
mb=${BENCH_MB:-512}
runs=${BENCH_RUNS:-3}

python3 -c 'import moto, flask' 2>/dev/null || pip install -q --disable-pip-version-check 'moto[server]==5.2.5'
command -v aws >/dev/null 2>&1 || pip install -q --disable-pip-version-check 'awscli==1.45.11'
s3s_fs=/var/tmp/coffer-test-tools/s3s-fs/bin/s3s-fs
if [[ " ${BENCH_SERVERS:-moto s3s-fs} " == *" s3s-fs "* ]] && [ ! -x "$s3s_fs" ]; then
    echo "installing s3s-fs 0.14.1 from crates.io (about 90 s)..." >&2
    cargo install -q --root /var/tmp/coffer-test-tools/s3s-fs s3s-fs@0.14.1 --features binary
fi
[ -x /usr/bin/time ] || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }

(cd "$here" && cargo build --release -q -p coffer-cli)
coffer="$here/target/release/coffer"

mkdir -p "$work"
cd "$work"
rm -rf profile restore-* aws-down.bin err.txt rss.txt
if [ ! -f data/blob.bin ] || [ "$(stat -c %s data/blob.bin)" -ne $((mb << 20)) ]; then
    echo "making ${mb} MiB of incompressible data..." >&2
    mkdir -p data
    head -c $((mb << 20)) /dev/urandom > data/blob.bin
fi

# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
rate() { awk -v s="$1" -v m="$mb" 'BEGIN{printf "%.0f MiB/s", m / s}'; }
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "$(aws --version 2>&1 | cut -d' ' -f1); ${mb} MiB incompressible; ${runs} runs each, round-robin, median"

server_pid=
trap '[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true' EXIT

# Starts server $1 on a free loopback port, runs both comparisons, stops it.
bench_against() {
    local server=$1 port endpoint
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    endpoint="http://127.0.0.1:$port"
    case $server in
        moto) python3 -m moto.server -H 127.0.0.1 -p "$port" > server.log 2>&1 & server_pid=$! ;;
        s3s-fs) rm -rf s3s-root; mkdir s3s-root
                "$s3s_fs" --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" \
                    --secret-key "$AWS_SECRET_ACCESS_KEY" s3s-root > server.log 2>&1 & server_pid=$! ;;
    esac
    for _ in $(seq 100); do curl -s -o /dev/null "$endpoint/" && break; sleep 0.1; done
    aws --endpoint-url "$endpoint" s3 mb s3://bench >/dev/null
    rm -rf profile
    "$coffer" --profile profile enable --key --storage "s3://bench/coffer?endpoint=$endpoint" >/dev/null
    echo
    case $server in
        moto) echo "== server: moto $(python3 -c 'import moto; print(moto.__version__)') (Python, in memory) ==" ;;
        s3s-fs) echo "== server: s3s-fs 0.14.1 (Rust, files in $work/s3s-root) ==" ;;
    esac
    # Each coffer upload makes a new backup; the previous one is pruned first so that the
    # server holds about the same amount of data for every run.
    PREP[aws]="aws --endpoint-url '$endpoint' s3 rm --quiet s3://bench/plain.bin 2>/dev/null || true"
    CMD[aws]="aws --endpoint-url '$endpoint' s3 cp --quiet data/blob.bin s3://bench/plain.bin"
    PREP[coffer]="'$coffer' --profile profile prune --older-than 0s >/dev/null 2>&1 || true"
    CMD[coffer]="'$coffer' --profile profile backup data"
    run_round_robin aws coffer
    echo "--- upload"
    printf '  aws s3 cp (plaintext)     %7.2f s  %s  peak RSS %7d KiB\n' "${T[aws]}" "$(rate "${T[aws]}")" "${R[aws]}"
    printf '  coffer backup (encrypted) %7.2f s  %s  peak RSS %7d KiB\n' "${T[coffer]}" "$(rate "${T[coffer]}")" "${R[coffer]}"
    echo "  all runs (s): aws [${ALL[aws]% }] coffer [${ALL[coffer]% }]"
    printf '  ratio coffer/aws %s (bar <= 1.0)\n' "$(ratio "${T[coffer]}" "${T[aws]}")"

    PREP[raws]="rm -f aws-down.bin"
    CMD[raws]="aws --endpoint-url '$endpoint' s3 cp --quiet s3://bench/plain.bin aws-down.bin && sync"
    PREP[rcoffer]="rm -rf restore-coffer"
    CMD[rcoffer]="'$coffer' --profile profile restore --into restore-coffer"
    run_round_robin raws rcoffer
    echo "--- download"
    printf '  aws s3 cp (plaintext)     %7.2f s  %s  peak RSS %7d KiB\n' "${T[raws]}" "$(rate "${T[raws]}")" "${R[raws]}"
    printf '  coffer restore            %7.2f s  %s  peak RSS %7d KiB\n' "${T[rcoffer]}" "$(rate "${T[rcoffer]}")" "${R[rcoffer]}"
    echo "  all runs (s): aws [${ALL[raws]% }] coffer [${ALL[rcoffer]% }]"
    printf '  ratio coffer/aws %s\n' "$(ratio "${T[rcoffer]}" "${T[raws]}")"
    cmp -s data/blob.bin restore-coffer/data/blob.bin || { echo "restored data differs!" >&2; exit 1; }
    cmp -s data/blob.bin aws-down.bin || { echo "aws download differs!" >&2; exit 1; }
    rm -rf restore-coffer aws-down.bin
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
    server_pid=
    rm -rf s3s-root
}

for server in ${BENCH_SERVERS:-moto s3s-fs}; do
    bench_against "$server"
done
