#!/usr/bin/env bash
# Builds the libFuzzer targets (ASan + fuzzer coverage) and runs each for SECONDS.
#
#   bash Fuzz/run.sh [SECONDS] [TARGET...]      (default 60 s each; FuzzHeader FuzzImage FuzzWrite)
#
#   FUZZ_JOBS=N     parallel fuzzing processes per target (default 1)
#   FUZZ_ARGS=...   extra libFuzzer flags, e.g. -seed=1, or `-fork=1 -ignore_timeouts=1 -ignore_ooms=1`
#                   to keep going past slow units (-timeout is wall time: on a loaded machine a unit
#                   taking 2 s of CPU can pass 10 s)
#
# Corpus: Fuzz/corpus/<Target>/ (grows, gitignored) plus the seeds from Fuzz/seed.sh (made when
# missing). Crashes, leaks, timeouts and OOMs land in Fuzz/findings/<Target>/ (gitignored);
# replay one with `Fuzz/.build/release/<Target> FILE`. The exit status is 1 if any target
# stopped on a finding.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(FuzzHeader FuzzImage FuzzWrite)

echo "== build (release, -sanitize=fuzzer,address)"
swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library

[[ -d corpus/seeds && -n $(ls corpus/seeds) ]] || bash seed.sh corpus/seeds

jobs=()
[[ ${FUZZ_JOBS:-1} -gt 1 ]] && jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
# Swift's backtracer and ASan both want the crash signal; let ASan and libFuzzer report.
export SWIFT_BACKTRACE=enable=no
status=0
for t in "${targets[@]}"; do
    case $t in
        FuzzHeader) max_len=65536 ;;   # cluster 0 and, for small clusters, the snapshot table
        *) max_len=262144 ;;     # images with small clusters; bigger seeds are cut (tables past EOF)
    esac
    mkdir -p "corpus/$t" "findings/$t"
    echo "== $t: ${seconds}s, -max_len=$max_len, corpus $(ls "corpus/$t" | wc -l) + $(ls corpus/seeds | wc -l) seeds"
    log="findings/$t/last-run.log"
    rc=0
    # -timeout: one input may take 10 s; -rss_limit_mb and -malloc_limit_mb: a 2 GiB allocation
    # is a finding (the engine bounds memory whatever the image claims).
    # CPU time, not only wall time: on a shared machine the fuzzer may get a fraction of a core.
    TIMEFORMAT="$t: wall %R s, CPU user %U s + sys %S s"
    { time ./.build/release/"$t" "corpus/$t" corpus/seeds \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -artifact_prefix="findings/$t/" -print_final_stats=1 "${jobs[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?; } \
        2>"findings/$t/last-run.time"
    cat "findings/$t/last-run.time"
    grep -E "^(#[0-9]+ +DONE|stat::|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)" "$log" || true
    grep -E "^stat::number_of_executed_units|^stat::average_exec_per_sec|DONE" "$log" | tail -3 || true
    if [[ $rc -ne 0 ]]; then
        echo "== $t stopped with status $rc: see $log and findings/$t/"
        status=1
    fi
done
exit $status
