#!/usr/bin/env bash
# Upload and download throughput to a local S3 API server (moto, in server mode), Coffer
# against the AWS CLI moving the same bytes to the same server in the same run.
#
#   coffer backup  (tar, zstd -1, encrypt, multipart upload)   vs  aws s3 cp FILE s3://…
#   coffer restore (download, decrypt, unpack, fsync)          vs  aws s3 cp s3://… FILE
#
# Usage: bench/s3_transfer.sh [WORKDIR]
#   BENCH_MB=512    size of the incompressible file, in MiB
#   BENCH_RUNS=3    runs per command, round-robin; the median is reported
# The bar (docs/PERFORMANCE.md): Coffer's encrypted upload is at least as fast as the AWS
# CLI's plaintext upload (ratio of times coffer/aws <= 1.0).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/coffer-bench-s3}
mb=${BENCH_MB:-512}
runs=${BENCH_RUNS:-3}

python3 -c 'import moto, flask' 2>/dev/null || pip install -q --disable-pip-version-check 'moto[server]==5.2.5'
command -v aws >/dev/null 2>&1 || pip install -q --disable-pip-version-check 'awscli==1.45.11'
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

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m moto.server -H 127.0.0.1 -p "$port" > moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
endpoint="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1
aws --endpoint-url "$endpoint" s3 mb s3://bench >/dev/null

"$coffer" --profile profile enable --key --storage "s3://bench/coffer?endpoint=$endpoint" >/dev/null

# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
rate() { awk -v s="$1" -v m="$mb" 'BEGIN{printf "%.0f MiB/s", m / s}'; }

# Each coffer upload makes a new backup; the previous one is pruned first so that the
# server holds about the same amount of data for every run.
PREP[aws]="aws --endpoint-url '$endpoint' s3 rm --quiet s3://bench/plain.bin 2>/dev/null || true"
CMD[aws]="aws --endpoint-url '$endpoint' s3 cp --quiet data/blob.bin s3://bench/plain.bin"
PREP[coffer]="'$coffer' --profile profile prune --older-than 0s >/dev/null 2>&1 || true"
CMD[coffer]="'$coffer' --profile profile backup data"
run_round_robin aws coffer
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "server: moto $(python3 -c 'import moto; print(moto.__version__)') on loopback; $(aws --version 2>&1 | cut -d' ' -f1); ${mb} MiB incompressible; ${runs} runs each, median"
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
