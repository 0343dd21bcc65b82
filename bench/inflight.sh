#!/usr/bin/env bash
# Peak memory with many loans in flight (opt-in: several minutes): bureau latency 60 s, so
# every loan submitted waits at once; `loanflow loadgen` reports the server's peak RSS (VmHWM).
#
#   bench/inflight.sh embedded|postgres|cluster [N]      (N defaults to 100000)
#
# Environment: BENCH_C (64), BENCH_LATENCY_MS (60000), plus those of bench/lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE="${1:-}"
check_mode "$MODE"
N="${2:-100000}"
C="${BENCH_C:-64}"
LATENCY="${BENCH_LATENCY_MS:-60000}"

build_release
machine_info
start_server "$MODE" "LOANFLOW__BUREAUS__CREDIT_LATENCY_MS=$LATENCY" "LOANFLOW__BUREAUS__APPRAISAL_LATENCY_MS=$LATENCY"

report="$BENCH_OUT/inflight-$MODE-n$N-$(date +%Y%m%dT%H%M%S).json"
echo
echo "### $N loans in flight, bureau latency $LATENCY ms ($MODE)"
echo "+ loanflow loadgen --url $SERVER_URL --n $N --concurrency $C --timeout-secs 1800 --json --pids $SERVER_PID"
status=0
"$BIN" loadgen --url "$SERVER_URL" --n "$N" --concurrency "$C" --timeout-secs 1800 --json --pids "$SERVER_PID" >"$report" ||
    status=$?
echo "report: $report"
grep -o '"server_peak_rss_mib": [0-9.]*' "$report" || true
exit $status
