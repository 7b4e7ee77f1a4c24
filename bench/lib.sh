# Shared by the benchmark scripts: run commands round-robin and take medians.
# The caller sets `runs`, and PREP[name] / CMD[name] for each command; a `sync` settles the
# disk before every run. Sets T[name] (median seconds), R[name] (largest peak RSS of one
# process, KiB) and ALL[name] (every run's seconds).
declare -A T R PREP CMD ALL

run_round_robin() {
    local names=("$@") name i
    declare -A all
    for name in "${names[@]}"; do all[$name]=""; R[$name]=0; done
    for i in $(seq "$runs"); do
        for name in "${names[@]}"; do
            eval "${PREP[$name]}"
            sync
            local start end peak
            start=$(date +%s.%N)
            /usr/bin/time -o rss.txt -f '%M' bash -c "${CMD[$name]}" >/dev/null 2>err.txt \
                || { echo "failed: ${CMD[$name]}" >&2; cat err.txt >&2; exit 1; }
            end=$(date +%s.%N)
            peak=$(tail -1 rss.txt)
            all[$name]+="$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.3f", b - a}') "
            [ "$peak" -gt "${R[$name]}" ] && R[$name]=$peak
        done
    done
    for name in "${names[@]}"; do
        T[$name]=$(printf '%s\n' ${all[$name]} | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
        ALL[$name]=${all[$name]}
    done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'; }
