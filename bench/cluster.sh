#!/usr/bin/env bash
# Cluster mode end to end: NODES nodes (1 or 2) on one fresh PostgreSQL database and one fresh
# RabbitMQ vhost, with durable queues of QUEUE_TYPE (quorum | classic); `loanflow loadgen`
# submits through the first node, every node processes, CPU is summed over all nodes.
#
#   bench/cluster.sh [NODES] [QUEUE_TYPE]        e.g. bench/cluster.sh 2 quorum
#
# Environment: BENCH_N (5000), BENCH_C (64), BENCH_SEED (1), plus those of bench/lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES="${1:-1}"
QUEUE_TYPE="${2:-quorum}"
N="${BENCH_N:-5000}"
C="${BENCH_C:-64}"
SEED="${BENCH_SEED:-1}"
case "$QUEUE_TYPE" in quorum | classic) ;; *) die "QUEUE_TYPE must be quorum or classic (got $QUEUE_TYPE)" ;; esac

build_release
machine_info
wait_for_quiet_machine
DB_URL="$(fresh_pg_database)"
AMQP_URL="$(fresh_amqp_vhost)"
PIDS=()
URL=""
for i in $(seq 1 "$NODES"); do
    log="$BENCH_OUT/server-cluster$NODES-$QUEUE_TYPE-node$i-$(date +%Y%m%dT%H%M%S).log"
    env -u RUST_LOG LOANFLOW__HTTP__PORT=0 LOANFLOW__HTTP__HOST=127.0.0.1 LOANFLOW__LOG__LEVEL=warn \
        LOANFLOW__DECISION__REVIEW_BELOW_SCORE=0 \
        LOANFLOW__NODE__ID="bench-node-$i" LOANFLOW__DATABASE__URL="$DB_URL" LOANFLOW__BROKER__URL="$AMQP_URL" \
        LOANFLOW__ADMIN__TOKEN="$BENCH_ADMIN_TOKEN" \
        LOANFLOW__BROKER__QUEUE_TYPE="$QUEUE_TYPE" "$BIN" >"$log" 2>&1 &
    PIDS+=($!)
    deadline=$((SECONDS + START_TIMEOUT))
    until node_url="$(grep -o -m1 'listening on http://[0-9.:]*' "$log" 2>/dev/null | sed 's/^listening on //')" && [ -n "$node_url" ]; do
        kill -0 "${PIDS[-1]}" 2>/dev/null || die "node $i exited: $(tail -5 "$log")"
        ((SECONDS < deadline)) || die "node $i did not start within ${START_TIMEOUT}s"
        sleep 0.2
    done
    [ -n "$URL" ] || URL="$node_url"
    say "node $i pid ${PIDS[-1]} at $node_url (log: $log)"
done
# Let every node connect to the broker before the load starts.
sleep 2
report="$BENCH_OUT/cluster$NODES-$QUEUE_TYPE-n$N-c$C-$(date +%Y%m%dT%H%M%S).json"
pids="$(IFS=,; echo "${PIDS[*]}")"
echo "+ loanflow loadgen --url $URL --n $N --concurrency $C --seed $SEED --json --pids $pids"
status=0
"$BIN" loadgen --url "$URL" --n "$N" --concurrency "$C" --seed "$SEED" --json --pids "$pids" >"$report" || status=$?
echo "report: $report (load now: $(cut -d' ' -f1-3 /proc/loadavg))"
kill "${PIDS[@]}" 2>/dev/null || true
wait "${PIDS[@]}" 2>/dev/null || true
exit $status
