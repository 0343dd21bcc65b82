#!/usr/bin/env bash
# The human steps' figures of issue 13 with `loanflow loadgen`'s human workload, each on a fresh
# node and database whose band is `decision.review_below_score` = 660:
#   rate       loans/s with 10 % of the loans referred, the load generator playing underwriter
#              and applicant on each (closed loop, N = BENCH_N, C = BENCH_C); the scripts
#              include requests that expire after 1 to 3 s, which end the run's window;
#   rate-no-expiry  the same without the `expire` script, so that the window ends with the last
#              loan the load generator decides or withdraws;
#   awaiting   BENCH_AWAITING_N (100,000) referred loans, each asked for information with the
#              longest deadline (90 days) and left waiting: the server's peak RSS (VmHWM); the
#              histories of the first 1,000 are checked (reading 100,000 would add minutes to
#              the run and nothing to the figure);
#   deadlines  BENCH_DEADLINES_N (30,000) referred loans submitted at BENCH_DEADLINE_RATE (1,000)
#              per second, each asked for information due in BENCH_EXPIRE_IN (40) seconds as soon
#              as it is referred, and let expire: the deadlines come due at that rate, after the
#              submissions are done; how late each takes effect (`InformationRequestExpired.at` -
#              `due_at`). Reminders are off (`decision.reminder_at_percent` = 0) so that only
#              the deadlines fire.
#
#   bench/human.sh embedded|postgres|cluster [rate|awaiting|deadlines ...]
#
# Environment: BENCH_N (20000), BENCH_C (64), BENCH_SEED (1), BENCH_TIMEOUT (1800), the ones
# above, plus those of bench/lib.sh. Reports land in $BENCH_OUT.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read_mode_and_scenarios human "rate awaiting deadlines" "$@"
AWAITING_N="${BENCH_AWAITING_N:-100000}"
DEADLINES_N="${BENCH_DEADLINES_N:-30000}"
DEADLINE_RATE="${BENCH_DEADLINE_RATE:-1000}"
EXPIRE_IN="${BENCH_EXPIRE_IN:-40}"
BAND=660

build_release
machine_info

# The server's memory now and at its peak, from /proc.
memory() {
    grep -E '^(VmHWM|VmRSS)' "/proc/$SERVER_PID/status" | tr -s ' \t' ' ' | paste -sd ';' -
}

# The server's own histogram of timer lateness.
timer_lateness_metric() {
    curl -fsS "$SERVER_URL/metrics" | grep -E '^loanflow_timer_lateness_seconds' || echo "(no loanflow_timer_lateness_seconds)"
}

FAILED=0
for scenario in "${SCENARIOS[@]}"; do
    case "$scenario" in
    rate)
        start_server "$MODE" LOANFLOW__DECISION__REVIEW_BELOW_SCORE=$BAND
        run_loadgen "rate-n$N-c$C-referred10" --review-below-score $BAND --n "$N" --concurrency "$C" --referred-share 0.1 || FAILED=1
        stop_server
        ;;
    rate-no-expiry)
        start_server "$MODE" LOANFLOW__DECISION__REVIEW_BELOW_SCORE=$BAND
        run_loadgen "rate-no-expiry-n$N-c$C-referred10" --review-below-score $BAND --n "$N" --concurrency "$C" \
            --referred-share 0.1 --plays approve,reject,ask-answer,withdraw || FAILED=1
        stop_server
        ;;
    awaiting)
        start_server "$MODE" LOANFLOW__DECISION__REVIEW_BELOW_SCORE=$BAND
        run_loadgen "awaiting-n$AWAITING_N-c$C" --review-below-score $BAND --n "$AWAITING_N" --concurrency "$C" --referred-share 1 \
            --fail-share 0 --plays hold --histories 1000 || FAILED=1
        echo "server memory after the run: $(memory)"
        stop_server
        ;;
    deadlines)
        start_server "$MODE" LOANFLOW__DECISION__REVIEW_BELOW_SCORE=$BAND LOANFLOW__DECISION__REMINDER_AT_PERCENT=0
        run_loadgen "deadlines-n$DEADLINES_N-r$DEADLINE_RATE-in$EXPIRE_IN" --review-below-score $BAND \
            --n "$DEADLINES_N" --rate "$DEADLINE_RATE" \
            --referred-share 1 --fail-share 0 --plays expire --expire-in-secs "$EXPIRE_IN" || FAILED=1
        timer_lateness_metric
        stop_server
        ;;
    *) die "unknown scenario '$scenario' (rate, rate-no-expiry, awaiting, deadlines)" ;;
    esac
done
exit $FAILED
