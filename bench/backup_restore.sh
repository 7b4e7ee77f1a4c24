#!/usr/bin/env bash
# Times `coffer backup` and `coffer restore` against `cp` and against the hand-made pipeline
# `tar -c | zstd -1 -T0 | age -r …` (and its reverse), on the same data in the same run,
# and prints the ratios and peak RSS.
#
# Usage: bench/backup_restore.sh [WORKDIR]
#   BENCH_GIB=2     size of the incompressible file, in GiB
#   BENCH_CHAT_MB=600  size of the compressible chat-like data set, in MB
#   BENCH_RUNS=3    runs per command; the median is reported
# WORKDIR (default /var/tmp/coffer-bench) must be on the disk you want to measure.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/coffer-bench}
gib=${BENCH_GIB:-2}
chat_mb=${BENCH_CHAT_MB:-600}
runs=${BENCH_RUNS:-3}

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
rm -rf out restore-* store profile* age.out cp-dst

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

age-keygen -o age.key 2>/dev/null
recipient=$(age-keygen -y age.key)

# median of the wall-clock seconds of $runs runs of a command; prints "seconds peak_kib"
measure() {
    local before=$1; shift
    local times=() rss=0
    for _ in $(seq "$runs"); do
        eval "$before"
        sync
        local start end peak
        start=$(date +%s.%N)
        peak=$( { /usr/bin/time -f '%M' bash -c "$*" >/dev/null 2>/dev/null; } 2>&1 | tail -1)
        end=$(date +%s.%N)
        times+=("$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.3f", b - a}')")
        [ "$peak" -gt "$rss" ] && rss=$peak
    done
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
    echo "$median $rss"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'; }

report() {
    local name=$1 set=$2
    local src="$work/$set"
    local bytes
    bytes=$(du -sb "$src" | cut -f1)
    echo
    echo "== $name: $(numfmt --to=iec "$bytes") in $(find "$src" -type f | wc -l) files =="

    printf '%s\n' "--- backup"
    read -r t_cp _ < <(measure "rm -rf cp-dst" "cp -r '$src' cp-dst && sync")
    read -r t_cp_nosync _ < <(measure "rm -rf cp-dst" "cp -r '$src' cp-dst")
    read -r t_age r_age < <(measure "rm -f age.out" \
        "tar -cf - -C '$work' '$set' | zstd -1 -T0 -q | age -r '$recipient' > age.out && sync")
    read -r t_cof r_cof < <(measure "rm -rf store profile; '$coffer' --profile profile enable --key --storage store >/dev/null" \
        "'$coffer' --profile profile backup '$src'")
    printf '  cp -r + sync        %7.2f s\n' "$t_cp"
    printf '  cp -r (no sync)     %7.2f s\n' "$t_cp_nosync"
    printf '  tar|zstd -1|age     %7.2f s  peak RSS %6d KiB (largest process)\n' "$t_age" "$r_age"
    printf '  coffer backup       %7.2f s  peak RSS %6d KiB\n' "$t_cof" "$r_cof"
    printf '  ratio coffer/cp+sync %s (bar <= 1.3), coffer/cp %s, coffer/age-pipeline %s (bar <= 0.7)\n' \
        "$(ratio "$t_cof" "$t_cp")" "$(ratio "$t_cof" "$t_cp_nosync")" "$(ratio "$t_cof" "$t_age")"
    echo "  stored: coffer $(numfmt --to=iec "$(du -sb store/backups | cut -f1)"), age pipeline $(numfmt --to=iec "$(stat -c %s age.out)")"

    printf '%s\n' "--- restore"
    read -r t_rcp _ < <(measure "rm -rf cp-dst" "cp -r '$src' cp-dst && sync")
    read -r t_rage r_rage < <(measure "rm -rf restore-age; mkdir restore-age" \
        "age -d -i age.key age.out | zstd -d -q | tar -xf - -C restore-age && sync")
    read -r t_rcof r_rcof < <(measure "rm -rf restore-coffer" \
        "'$coffer' --profile profile restore --into restore-coffer")
    printf '  cp -r + sync        %7.2f s\n' "$t_rcp"
    printf '  age|zstd -d|tar -x  %7.2f s  peak RSS %6d KiB (largest process)\n' "$t_rage" "$r_rage"
    printf '  coffer restore      %7.2f s  peak RSS %6d KiB\n' "$t_rcof" "$r_rcof"
    printf '  ratio coffer/cp+sync %s (bar <= 1.3), coffer/age-pipeline %s (bar <= 0.7)\n' \
        "$(ratio "$t_rcof" "$t_rcp")" "$(ratio "$t_rcof" "$t_rage")"
    cmp -s "$src/$(ls "$src" | head -1)" "restore-coffer/$set/$(ls "$src" | head -1)" 2>/dev/null \
        || diff -rq "$src" "restore-coffer/$set" >/dev/null || { echo "restored data differs!" >&2; exit 1; }
    rm -rf cp-dst restore-age restore-coffer
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(df -h "$work" | awk 'NR==2{print $1}')"
echo "coffer $("$coffer" --version | cut -d' ' -f2), $(age --version 2>&1 | head -1 | sed 's/^/age /'), $(zstd --version | head -1)"
echo "runs per command: $runs (median)"
report "incompressible (one ${gib} GiB file)" random
report "chat-like (SQLite-style text + media)" chat
