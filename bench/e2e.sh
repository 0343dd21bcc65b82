#!/usr/bin/env bash
# End-to-end figures of issue 5 with `loanflow loadgen`, each on a fresh node and database:
#   1. closed loop, N = 20000, C = 64: the maximum rate, CPU per loan, disagreements;
#   2. open loop at half the rate measured in 1: end-to-end p99;
#   3. bureau latency 50 ms (credit and appraisal), closed loop N = 20000, C = 64.
# The 100,000-loans-in-flight RSS figure is bench/inflight.sh (long, opt-in).
#
#   bench/e2e.sh embedded|postgres|cluster [closed|open|slow ...]
#
# Environment: BENCH_N (20000), BENCH_C (64), BENCH_SEED (1), BENCH_RATE (skip step 1 for the
# open loop and use this rate), BENCH_OPEN_SECONDS (the open loop submits for at most this long:
# N = min(BENCH_N, rate * 60)), BENCH_TIMEOUT (loadgen --timeout-secs, 1800), plus those of
# bench/lib.sh. Reports land in $BENCH_OUT.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read_mode_and_scenarios e2e "closed open slow" "$@"
OPEN_SECONDS="${BENCH_OPEN_SECONDS:-60}"

build_release
machine_info

json_number() { grep -o "\"$1\": [0-9.e+-]*" "$2" | head -1 | awk '{print $2}'; }

FAILED=0
MAX_RATE="${BENCH_RATE:-}"
for scenario in "${SCENARIOS[@]}"; do
    case "$scenario" in
    closed)
        start_server "$MODE"
        run_loadgen "closed-n$N-c$C" --n "$N" --concurrency "$C" || FAILED=1
        MAX_RATE="$(json_number loans_per_second "$LAST_REPORT")"
        stop_server
        ;;
    open)
        [ -n "$MAX_RATE" ] || die "the open loop needs the closed-loop rate first (run 'closed' before it, or set BENCH_RATE)"
        rate="$(awk -v r="$MAX_RATE" 'BEGIN {r = r / 2; printf "%.1f", (r < 1 ? 1 : r)}')"
        n_open="$(awk -v r="$rate" -v s="$OPEN_SECONDS" -v n="$N" 'BEGIN {m = int(r * s); printf "%d", (m < n ? m : n)}')"
        start_server "$MODE"
        run_loadgen "open-n$n_open-r$rate" --n "$n_open" --rate "$rate" || FAILED=1
        stop_server
        ;;
    slow)
        start_server "$MODE" LOANFLOW__BUREAUS__CREDIT_LATENCY_MS=50 LOANFLOW__BUREAUS__APPRAISAL_LATENCY_MS=50
        run_loadgen "bureaus50ms-n$N-c$C" --n "$N" --concurrency "$C" || FAILED=1
        stop_server
        ;;
    *) die "unknown scenario '$scenario' (closed, open, slow)" ;;
    esac
done
exit $FAILED
