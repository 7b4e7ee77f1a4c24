#!/usr/bin/env bash
# Times `coffer backup` and `coffer restore` against `cp` and against the hand-made pipeline
# `tar -c | zstd -1 -T0 | age -r …` (and its reverse), on the same data in the same run,
# and prints the ratios and peak RSS.
#
# Usage: bench/backup_restore.sh [WORKDIR]
#   BENCH_GIB=2     size of the incompressible file, in GiB
#   BENCH_CHAT_MB=600  size of the compressible chat-like data set, in MB
#   BENCH_RUNS=5    runs per command, round-robin; the median is reported
# WORKDIR (default /var/tmp/coffer-bench) must be on the disk you want to measure.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/coffer-bench}
gib=${BENCH_GIB:-2}
chat_mb=${BENCH_CHAT_MB:-600}
runs=${BENCH_RUNS:-5}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need age || ! need zstd || ! [ -x /usr/bin/time ]; then
    echo "installing age, zstd and time from Debian's packages..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq age zstd time >/dev/null
fi

(cd "$here" && cargo build --release -q -p coffer-cli)
coffer="$here/target/release/coffer"

mkdir -p "$work"
cd "$work"
rm -rf out restore-* store profile* age.out cp-dst rss.txt err.txt cpd p r s

# --- data sets --------------------------------------------------------------------------
if [ ! -f "random/blob.bin" ] || [ "$(stat -c %s random/blob.bin)" -ne $((gib << 30)) ]; then
    echo "making ${gib} GiB of incompressible data..." >&2
    mkdir -p random
    head -c $((gib << 30)) /dev/urandom > random/blob.bin
fi
if [ ! -f "chat/.complete-$chat_mb" ]; then
    echo "making a ${chat_mb} MB chat-like data set..." >&2
    rm -rf chat
    python3 "$here/bench/make_chat_data.py" chat "$chat_mb"
    touch "chat/.complete-$chat_mb"
fi

rm -f age.key
age-keygen -o age.key 2>/dev/null
recipient=$(age-keygen -y age.key)

# Each named command runs $runs times, round-robin so that background disk activity hits
# them alike (bench/lib.sh).
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"

report() {
    local name=$1 set=$2
    local src="$work/$set"
    local bytes
    bytes=$(du -sb "$src" | cut -f1)
    echo
    echo "== $name: $(numfmt --to=iec "$bytes") in $(find "$src" -type f | wc -l) files =="

    rm -rf store profile
    "$coffer" --profile profile enable --key --storage store >/dev/null
    PREP[cp]="rm -rf cp-dst";            CMD[cp]="cp -r '$src' cp-dst && sync"
    PREP[age]="rm -f age.out";           CMD[age]="tar -cf - -C '$work' '$set' | zstd -1 -T0 -q | age -r '$recipient' > age.out && sync"
    PREP[coffer]="rm -rf store/backups"; CMD[coffer]="'$coffer' --profile profile backup '$src'"
    run_round_robin cp age coffer
    echo "--- backup (each command ends with its data on disk: cp and age are followed by sync; coffer fsyncs)"
    printf '  cp -r && sync        %7.2f s\n' "${T[cp]}"
    printf '  tar|zstd -1|age      %7.2f s  peak RSS %7d KiB (largest process)\n' "${T[age]}" "${R[age]}"
    printf '  coffer backup        %7.2f s  peak RSS %7d KiB\n' "${T[coffer]}" "${R[coffer]}"
    echo "  all runs (s): cp [${ALL[cp]% }] age [${ALL[age]% }] coffer [${ALL[coffer]% }]"
    printf '  ratio coffer/cp %s (bar <= 1.3); coffer/age-pipeline %s (bar <= 0.7)\n' \
        "$(ratio "${T[coffer]}" "${T[cp]}")" "$(ratio "${T[coffer]}" "${T[age]}")"
    echo "  stored: coffer $(numfmt --to=iec "$(du -sb store/backups | cut -f1)"), age pipeline $(numfmt --to=iec "$(stat -c %s age.out)")"

    PREP[rcp]="rm -rf cp-dst";             CMD[rcp]="cp -r '$src' cp-dst && sync"
    PREP[rage]="rm -rf restore-age; mkdir restore-age"
    CMD[rage]="age -d -i age.key age.out | zstd -d -q | tar -xf - -C restore-age && sync"
    PREP[rcoffer]="rm -rf restore-coffer"; CMD[rcoffer]="'$coffer' --profile profile restore --into restore-coffer"
    run_round_robin rcp rage rcoffer
    echo "--- restore"
    printf '  cp -r && sync        %7.2f s\n' "${T[rcp]}"
    printf '  age -d|zstd -d|tar -x %6.2f s  peak RSS %7d KiB (largest process)\n' "${T[rage]}" "${R[rage]}"
    printf '  coffer restore       %7.2f s  peak RSS %7d KiB\n' "${T[rcoffer]}" "${R[rcoffer]}"
    echo "  all runs (s): cp [${ALL[rcp]% }] age [${ALL[rage]% }] coffer [${ALL[rcoffer]% }]"
    printf '  ratio coffer/cp %s (bar <= 1.3); coffer/age-pipeline %s (bar <= 0.7)\n' \
        "$(ratio "${T[rcoffer]}" "${T[rcp]}")" "$(ratio "${T[rcoffer]}" "${T[rage]}")"
    diff -rq "$src" "restore-coffer/$set" >/dev/null || { echo "restored data differs!" >&2; exit 1; }
    rm -rf cp-dst restore-age restore-coffer
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(df -h "$work" | awk 'NR==2{print $1}')"
echo "coffer $("$coffer" --version | cut -d' ' -f2), $(age --version 2>&1 | head -1 | sed 's/^/age /'), $(zstd --version | head -1)"
echo "runs per command: $runs (median)"
report "incompressible (one ${gib} GiB file)" random
report "chat-like (SQLite-style text + media)" chat
